"""Session fixture ``vision_msgs``: the test-only vision_msgs package, built once and importable.

Use it from a test module with ``from msgs_fixture import vision_msgs  # noqa: F401`` and a
``vision_msgs`` argument; it yields the :class:`build_msgs.Install` (``.env(base)`` for node
processes). Skips, with the reason, where the build tools are not installed.
"""

import importlib.util
from pathlib import Path

import pytest

# test/msgs is not a package: load its build helper by path.
_SPEC = importlib.util.spec_from_file_location(
    'build_msgs', Path(__file__).resolve().parent / 'msgs' / 'build_msgs.py')
build_msgs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(build_msgs)


@pytest.fixture(scope='session')
def vision_msgs():
    """The built package, activated in this process."""
    try:
        install = build_msgs.build()
    except build_msgs.MsgsUnavailable as err:
        pytest.skip(str(err))
    install.activate()
    return install
