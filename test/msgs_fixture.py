"""Session fixture ``vision_msgs``: the test-only vision_msgs package, built once and importable.

Use it from a test module with ``from msgs_fixture import vision_msgs  # noqa: F401`` and a
``vision_msgs`` argument; it yields the :class:`build_msgs.Install` (``.env(base)`` for node
processes). Skips, with the reason, where the build tools are not installed.
"""

from pathlib import Path
import sys

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / 'msgs'))
import build_msgs  # noqa: E402  (test/msgs is not a package)


@pytest.fixture(scope='session')
def vision_msgs():
    """The built package, activated in this process."""
    try:
        install = build_msgs.build()
    except build_msgs.MsgsUnavailable as err:
        pytest.skip(str(err))
    install.activate()
    return install
