"""Shared pytest fixtures: paths to real sample data and an isolated ROS 2 environment."""

import fcntl
import itertools
import os
from pathlib import Path
import shutil
import tempfile

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'

# Each ROS test gets its own DDS domain so concurrent tests never see each other's topics, even
# from other pytest processes on the same machine: a domain is taken by holding an exclusive lock
# on a file named after it for the length of the test (Fast DDS allows ids 0..232).
_DOMAIN_IDS = itertools.count(start=120 + (os.getpid() % 50) * 2)
_LOCK_DIR = Path(tempfile.gettempdir()) / 'smmcl_ros_domains'


@pytest.fixture(scope='session', autouse=True)
def _engine_cache(tmp_path_factory):
    """The suite's engine cache: a session folder, never the user's ``~/.cache/smmcl``.

    Set in the environment, so node and CLI processes started by tests use it too; bounded
    (``SMMCL_CACHE_MAX_MB``) so that the exports and compiled blobs of the many test
    checkpoints (45 MB each) do not fill a small CI disk.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('SMMCL_CACHE_DIR', str(tmp_path_factory.mktemp('engine_cache')))
        patch.setenv('SMMCL_CACHE_MAX_MB', '500')
        yield


@pytest.fixture(scope='module', autouse=True)
def _module_tmp_dirs(request, tmp_path_factory):
    """Folders a module's fixtures made with ``tmp_path_factory`` go when the module ends.

    Only when all of the module's tests passed: a failure keeps everything for a look (as
    ``tmp_path_retention_policy = failed`` does for a test's own ``tmp_path``).
    """
    base = tmp_path_factory.getbasetemp()
    before = set(base.iterdir())
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed == failed:
        for path in set(base.iterdir()) - before:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def shared_data() -> Path:
    """The real sample frames in ../shared/data (present for developers and CI)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f'real sample data not found at {SHARED_DATA}')
    return SHARED_DATA


def msrs_night_pairs(first: int, count: int) -> list:
    """Real 640x480 MSRS night pairs ``[first, first + count)`` in name order (skip if absent).

    Returns:
        ``[(rgb uint8 (H,W,3), thermal uint8 (H,W)), ...]``.
    """
    from smmcl_core.data.io import read_aux, read_rgb

    folder = SHARED_DATA / 'msrs_night'
    if not folder.is_dir():
        pytest.skip(f'real sample data not found at {folder}')
    names = sorted(os.listdir(folder / 'visible'))[first:first + count]
    return [(read_rgb(folder / 'visible' / n), read_aux(folder / 'thermal' / n, 'thermal'))
            for n in names]


@pytest.fixture
def ros_env(monkeypatch) -> dict:
    """Environment for rclpy processes: loopback-only discovery and a per-test domain id.

    The variables are also set in this process, so rclpy used in the test itself joins the
    same domain as the node processes it starts with ``env=ros_env``.
    """
    lock = _take_domain()
    domain = lock.name.rsplit('_', 1)[-1]
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    monkeypatch.setenv('ROS_DOMAIN_ID', domain)
    monkeypatch.setenv('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    env = dict(os.environ)
    try:
        yield env
    finally:
        lock.close()  # releases the domain


def _take_domain():
    """An open, exclusively locked ``domain_<id>`` file: the id is ours until it is closed."""
    _LOCK_DIR.mkdir(exist_ok=True)
    for _ in range(232):
        domain = next(_DOMAIN_IDS) % 232 + 1
        handle = open(_LOCK_DIR / f'domain_{domain}', 'w')
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()  # another test process holds it
            continue
        return handle
    raise RuntimeError(f'no free ROS domain id: all 232 are locked under {_LOCK_DIR}')


# Fixtures of the node tests (a module may override ``checkpoint``, e.g. with an HHA model).
@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> Path:
    """A seeded, randomly initialised robot-sized depth model, saved by ros_harness."""
    from ros_harness import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp('ckpt') / 'mit_b0_depth.pt')


@pytest.fixture(scope='module')
def segmenter(checkpoint):
    """The Segmenter of ``checkpoint`` on the CPU (torch's thread count left as it is)."""
    from smmcl_core.segmenter import Segmenter

    return Segmenter.from_checkpoint(checkpoint, device='cpu')


@pytest.fixture(scope='session')
def frame():
    """Real 640x480 NYUv2 RGB-D sample: RGB uint8 and depth uint16 millimetres."""
    from smmcl_core.data.io import read_aux, read_rgb

    folder = SHARED_DATA / 'nyuv2_samples'
    if not folder.is_dir():
        pytest.skip(f'real sample data not found at {folder}')
    return read_rgb(folder / 'RGB' / '0.png'), read_aux(folder / 'Depth' / '0.png', 'depth')
