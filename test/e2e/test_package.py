"""The ROS 2 package builds with colcon and its installed executables start."""

import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def colcon_install(tmp_path_factory) -> Path:
    if shutil.which('colcon') is None:
        pytest.skip('colcon is not installed')
    work = tmp_path_factory.mktemp('colcon_ws')
    result = subprocess.run(
        ['colcon', 'build', '--base-paths', str(REPO), '--build-base', str(work / 'build'),
         '--install-base', str(work / 'install')],
        cwd=work, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return work / 'install'


def test_colcon_build_installs_package_files(colcon_install):
    share = colcon_install / 'smmcl_ros' / 'share' / 'smmcl_ros'
    assert (share / 'package.xml').is_file()
    assert (share / 'launch' / 'segmentation.launch.py').is_file()
    assert (share / 'config' / 'segmentation.yaml').is_file()
    assert (share / 'config' / 'fastdds_large_images.xml').is_file()
    marker = (colcon_install / 'smmcl_ros' / 'share' / 'ament_index' / 'resource_index'
              / 'packages' / 'smmcl_ros')
    assert marker.is_file()
    lib = colcon_install / 'smmcl_ros' / 'lib' / 'smmcl_ros'
    for exe in ('segmentation_node', 'segmentation_lifecycle_node', 'bag_eval', 'make_bag',
                'bag_replay', 'import_release'):
        assert os.access(lib / exe, os.X_OK), f'{exe} not installed in {lib}'


def _installed_env(install: Path, ros_env: dict) -> dict:
    env = dict(ros_env)
    site = list((install / 'smmcl_ros' / 'lib').glob('python3*/site-packages'))
    assert site, f'no site-packages under {install}'
    env['PYTHONPATH'] = os.pathsep.join([str(site[0]), env.get('PYTHONPATH', '')])
    env['AMENT_PREFIX_PATH'] = os.pathsep.join(
        [str(install / 'smmcl_ros'), env.get('AMENT_PREFIX_PATH', '')])
    return env


def test_installed_node_starts_and_stops_on_sigint(colcon_install, ros_env, tmp_path):
    exe = colcon_install / 'smmcl_ros' / 'lib' / 'smmcl_ros' / 'segmentation_node'
    env = _installed_env(colcon_install, ros_env)
    # The installed script runs from outside the source tree with the bundled checkpoint
    # (asked for by name: an empty checkpoint is a configuration error).
    proc = subprocess.Popen([sys.executable, str(exe), '--ros-args', '-p', 'device:=cpu',
                             '-p', 'checkpoint:=demo'],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if 'ready' in line.lower():
                break
        assert any('ready' in ln.lower() for ln in lines), ''.join(lines)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        lines.append(out)
        assert proc.returncode == 0, ''.join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_installed_import_release_runs(colcon_install, ros_env, tmp_path):
    """``ros2 run smmcl_ros import_release``: the installed script answers and names errors."""
    exe = colcon_install / 'smmcl_ros' / 'lib' / 'smmcl_ros' / 'import_release'
    env = _installed_env(colcon_install, ros_env)
    missing = tmp_path / 'epoch-500.pth'
    done = subprocess.run([sys.executable, str(exe), str(missing), '--dataset', 'llrgbd',
                           '--out', str(tmp_path / 'out.pth')], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f'released checkpoint not found: {missing}' in done.stderr
