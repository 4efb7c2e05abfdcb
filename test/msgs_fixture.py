"""Session fixtures ``vision_msgs``, ``tf2_msgs``: the test-only packages, built once, importable.

Use one from a test module with ``from msgs_fixture import tf2_msgs  # noqa: F401`` and a
``tf2_msgs`` argument; it yields the :class:`build_msgs.Install` (``.env(base)`` for node
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


def _activated(package: str):
    try:
        install = build_msgs.build(package=package)
    except build_msgs.MsgsUnavailable as err:
        pytest.skip(str(err))
    install.activate()
    return install


@pytest.fixture(scope='session')
def vision_msgs():
    """The built vision_msgs package (LabelInfo), activated in this process."""
    return _activated('vision_msgs')


@pytest.fixture(scope='session')
def tf2_msgs():
    """The built tf2_msgs package (TFMessage, for /tf_static), activated in this process."""
    return _activated('tf2_msgs')
