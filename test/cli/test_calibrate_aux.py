"""smmcl-calibrate-aux as a process: correspondences from a real MSRS pair, checkerboards."""

import os
from pathlib import Path
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from smmcl_core.data.homography_fit import corner_error

AUX_SIZE = (256, 320)  # (height, width) of the virtual thermal camera


def _rgb_to_aux() -> np.ndarray:
    a = np.deg2rad(1.5)
    return np.array([[0.5 * np.cos(a), -0.5 * np.sin(a), -6.0],
                     [0.5 * np.sin(a), 0.5 * np.cos(a), 9.0], [0.0, 0.0, 1.0]])


def _cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.run([sys.executable, '-m', 'smmcl_core.cli.calibrate_aux', *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _written(path: Path) -> np.ndarray:
    params = yaml.safe_load(path.read_text())
    assert params['aux_registration'] == 'homography'
    assert len(params['aux_homography']) == 9
    return np.reshape(params['aux_homography'], (3, 3))


def test_points_recover_known_homography(shared_data, tmp_path):
    rgb = cv2.imread(str(shared_data / 'msrs_night/visible/00004N.png'))
    thermal = cv2.imread(str(shared_data / 'msrs_night/thermal/00004N.png'), -1)
    to_aux = _rgb_to_aux()
    aux = cv2.warpPerspective(cv2.GaussianBlur(thermal, (0, 0), 1.0), to_aux, AUX_SIZE[::-1])
    aux_path, rgb_path = tmp_path / 'aux.png', tmp_path / 'rgb.png'
    cv2.imwrite(str(aux_path), aux)
    cv2.imwrite(str(rgb_path), rgb)
    # 32 points over the whole view, picked to 0.15 aux px (0.3 RGB px; a zoomed viewer), and
    # 2 mistakes RANSAC must reject.
    rng = np.random.default_rng(7)
    rgb_pts = rng.uniform([20, 25], [620, 455], size=(34, 2))
    mapped = np.c_[rgb_pts, np.ones(34)] @ to_aux.T
    aux_pts = mapped[:, :2] / mapped[:, 2:] + rng.normal(0, 0.15, (34, 2))
    aux_pts[:2] += [[25.0, -12.0], [-30.0, 18.0]]
    lines = ['aux_u,aux_v,rgb_u,rgb_v', '# picked in the viewer'] + [
        ','.join(f'{v:.3f}' for v in (*a, *r)) for a, r in zip(aux_pts, rgb_pts)]
    (tmp_path / 'points.csv').write_text('\n'.join(lines) + '\n')
    done = _cli('points', 'points.csv', '--aux', aux_path, '--rgb', rgb_path, '--out',
                'params.yaml', '--overlay', 'overlay.png', cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '32/34 inliers' in done.stdout and 'outlier 0' in done.stdout
    rms = float(done.stdout.split('rms ')[1].split(' px')[0])
    assert 0.1 < rms < 0.6
    H = _written(tmp_path / 'params.yaml')
    assert corner_error(H, np.linalg.inv(to_aux), AUX_SIZE) < 1.0
    picture = cv2.imread(str(tmp_path / 'overlay.png'))
    assert picture.shape == (480, 640, 3)
    green = (picture[:, :, 1] == 255) & (picture[:, :, 0] == 0) & (picture[:, :, 2] == 0)
    assert 0.002 < green.mean() < 0.2  # thermal edges drawn, not everything


def _board(squares=(10, 7), size=40) -> np.ndarray:
    """A printed checkerboard with a white margin: 9x6 inner corners."""
    cols, rows = squares
    board = np.full(((rows + 2) * size, (cols + 2) * size), 255, np.uint8)
    for r in range(rows):
        for c in range(cols):
            if (r + c) % 2 == 0:
                board[(r + 1) * size:(r + 2) * size, (c + 1) * size:(c + 2) * size] = 0
    return board


def _board_views(index: int, to_aux: np.ndarray, rng) -> tuple:
    """RGB view of the board at one pose, and the thermal view (dark board: inverted)."""
    board = _board()
    h, w = board.shape
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    poses = [[[140, 110], [460, 130], [450, 370], [150, 350]],
             [[80, 60], [330, 80], [320, 260], [90, 250]],
             [[300, 200], [580, 190], [590, 420], [310, 430]]]
    to_rgb = cv2.getPerspectiveTransform(src, np.float32(poses[index]))
    rgb = cv2.warpPerspective(board, to_rgb, (640, 480), flags=cv2.INTER_AREA, borderValue=150)
    rgb = np.clip(rgb + rng.normal(0, 3, rgb.shape), 0, 255).astype(np.uint8)
    thermal = cv2.warpPerspective(cv2.GaussianBlur(rgb, (0, 0), 1.2), to_aux, AUX_SIZE[::-1],
                                  borderValue=150)
    return 255 - thermal, np.repeat(rgb[:, :, None], 3, axis=2)


def test_checkerboard_pairs_recover_known_homography(tmp_path):
    to_aux = _rgb_to_aux()
    rng = np.random.default_rng(3)
    args = ['checkerboard', '--pattern', '9x6', '--invert', '--out', 'params.yaml',
            '--overlay', 'overlay.png']
    for i in range(3):
        aux, rgb = _board_views(i, to_aux, rng)
        cv2.imwrite(str(tmp_path / f'aux{i}.png'), aux)
        cv2.imwrite(str(tmp_path / f'rgb{i}.png'), rgb)
        args += ['--pair', f'aux{i}.png', f'rgb{i}.png']
    done = _cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '3 pair(s), 162 corners' in done.stdout
    H = _written(tmp_path / 'params.yaml')
    assert corner_error(H, np.linalg.inv(to_aux), AUX_SIZE) < 1.0
    assert (tmp_path / 'overlay.png').is_file()


@pytest.mark.parametrize('content, message', [
    ('1,2,3,4\n5,6,7,8\n1,1,2,2\n', 'points.csv: 3 correspondences; a homography needs at '
                                    'least 4'),
    ('aux_u,aux_v,rgb_u,rgb_v\n1,2,3,4\n1,2,x,4\n', 'points.csv:3: expected aux_u,aux_v,rgb_u,'
                                                    'rgb_v numbers'),
    ('1,2,3\n', 'points.csv:1: expected 4 values'),
    ('0,0,0,0\n1,1,1,1\n2,2,2,2\n3,3,3,3\n', 'no homography fits these 4 correspondences'),
])
def test_bad_points_are_named(tmp_path, content, message):
    (tmp_path / 'points.csv').write_text(content)
    done = _cli('points', 'points.csv', '--out', 'p.yaml', cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / 'p.yaml').exists()


def test_missing_board_is_named(shared_data, tmp_path):
    thermal = shared_data / 'msrs_night/thermal/00004N.png'
    visible = shared_data / 'msrs_night/visible/00004N.png'
    done = _cli('checkerboard', '--pattern', '9x6', '--pair', thermal, visible, '--out',
                'p.yaml', cwd=tmp_path)
    assert done.returncode == 2
    assert 'no 9x6 checkerboard found in rgb image of pair' in done.stderr
    assert '00004N.png' in done.stderr
