"""``smmcl-check-data FOLDER`` and overrides without ``--config`` (issue 19).

On a folder shaped like the issue's (``test/own_data_files.py``: 400x400 JPEG frames from the
real MSRS pairs, a camera palette in no table, blended RGB labels).
"""

import json
import os
from pathlib import Path
import shutil
import subprocess
import sys

import cv2
import numpy as np
from own_data_files import (blended_label, make_camera_folder, msrs_names, msrs_thermal,
                            write_jpeg)
import pytest

from smmcl_core.checkpoint import load_checkpoint
from smmcl_core.cli import check_data, evaluate as evaluate_cli, train as train_cli
from smmcl_core.data.thermal import colormap_lut

REPO = Path(__file__).resolve().parents[2]
FOLDER_CPU = REPO / 'training' / 'configs' / 'folder_cpu.yaml'
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


@pytest.fixture(scope='module')
def mine(tmp_path_factory) -> Path:
    return make_camera_folder(tmp_path_factory.mktemp('own') / 'mine')


def _check(*argv: str):
    return subprocess.run([sys.executable, '-m', 'smmcl_core.cli.check_data', *argv,
                           '--no-progress'], env=ENV, capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def test_a_folder_alone_is_checked(mine):
    result = _check(str(mine))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f'folder dataset at {mine}' in out
    # train.txt (6) less its carved validation, the carve, and test.txt.
    assert 'train (5 samples), val (1 samples), test (2 samples)' in out
    assert 'data check: no problems' in out
    assert 'note: thermal_colormap auto: no colour map fits 8 colour file(s)' in out
    assert "using 'luminance'" in out


def test_a_damaged_copy_reports_every_damaged_file(mine, tmp_path):
    copy = Path(shutil.copytree(mine, tmp_path / 'copy'))
    names = msrs_names(8)
    damaged = {}
    rgb = copy / 'rgb' / f'{names[0]}.jpg'  # an interrupted copy: half the bytes
    rgb.write_bytes(rgb.read_bytes()[:rgb.stat().st_size // 2])
    damaged[names[0]] = rgb
    aux = copy / 'aux' / f'{names[1]}.jpg'
    aux.unlink()
    damaged[names[1]] = aux
    label = copy / 'label' / f'{names[2]}.png'
    label.write_bytes(b'\x89PNG\r\n\x1a\n' + b'\x00' * 40)  # a header and nothing
    damaged[names[2]] = label
    far = blended_label(names[3])
    far[0, 0] = (0, 255, 0)  # beyond label_color_tolerance
    far_path = copy / 'label' / f'{names[3]}.png'
    cv2.imwrite(str(far_path), far[:, :, ::-1])
    damaged[names[3]] = far_path
    small = copy / 'aux' / f'{names[6]}.jpg'  # test split: a resized copy
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(small)), (320, 320)))
    damaged[names[6]] = small
    report = tmp_path / 'report.json'
    result = _check(str(copy), '--report', str(report))
    assert result.returncode == 1, result.stdout + result.stderr
    problems = json.loads(report.read_text())['problems']
    by_sample = {}
    for p in problems:
        by_sample.setdefault(p['sample'], []).append(p['reason'])
    assert set(by_sample) == set(damaged), by_sample
    for name, path in damaged.items():
        assert any(str(path) in reason for reason in by_sample[name]), (name, by_sample[name])
        assert str(path) in result.stdout
    assert 'truncated JPEG' in by_sample[names[0]][0]
    assert any('(0, 255, 0)' in r for r in by_sample[names[3]])
    assert any('aux image 320x320' in r and 'aux_registration' in r for r in by_sample[names[6]])


@pytest.mark.parametrize('argv, words', [
    ([], 'name the data to check'),
    (['data.root=MINE'], '--config'),
    (['--dataset', 'folder', 'data.root=MINE'], '--config'),
    (['EMPTY'], 'holds none of classes.yaml'),
    (['MISSING'], 'neither a key.sub=value override nor a dataset folder'),
    (['MINE', 'MINE'], 'give one dataset folder'),
    (['MINE', '--root', 'MINE'], 'give the dataset folder once'),
])
def test_positional_arguments_are_never_dropped(mine, tmp_path, capsys, argv, words):
    (tmp_path / 'empty').mkdir()
    paths = {'MINE': str(mine), 'EMPTY': str(tmp_path / 'empty'),
             'MISSING': str(tmp_path / 'missing')}
    for key, value in paths.items():
        argv = [a.replace(key, value) for a in argv]
    assert check_data.main([*argv, '--no-progress']) == 2
    err = capsys.readouterr().err
    assert err.startswith('smmcl-check-data: error: ') and words in err, err


def test_train_refuses_overrides_without_config(mine, capsys):
    assert train_cli.main([f'data.root={mine}', 'train.epochs=1']) == 2
    err = capsys.readouterr().err
    assert '--config' in err and f'data.root={mine}' in err
    assert train_cli.main([str(mine)]) == 2  # a folder where an override belongs
    assert 'is a folder' in capsys.readouterr().err
    cfg_synthetic = REPO / 'training' / 'configs' / 'synthetic_cpu.yaml'
    assert train_cli.main(['--config', str(cfg_synthetic), f'data.root={mine}']) == 2
    assert 'synthetic takes no root' in capsys.readouterr().err


def test_folder_with_config_and_the_aspect_note(mine, capsys):
    assert check_data.main(['--config', str(FOLDER_CPU), str(mine), '--no-progress']) == 0
    out = capsys.readouterr().out
    assert 'no problems' in out and 'stretched' not in out  # resize: 240 keeps the aspect
    assert check_data.main(['--config', str(FOLDER_CPU), str(mine), 'data.resize=[240,320]',
                            '--no-progress']) == 0
    out = capsys.readouterr().out
    assert 'stretched' in out and '400x400' in out and 'data.resize: 240' in out


def test_training_on_the_folder_stores_the_chosen_map(mine, tmp_path, capsys):
    out = tmp_path / 'run'
    result = subprocess.run(
        [sys.executable, '-m', 'smmcl_core.cli.train', '--config', str(FOLDER_CPU),
         f'data.root={mine}', f'train.out_dir={out}', 'data.resize=64', 'data.crop_size=[64,64]',
         'data.workers=0', 'train.epochs=1', 'train.batch_size=2', 'train.progress=false',
         'train.max_iters_per_epoch=2', 'loss.min_pixels=1'],
        env=ENV, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'note: thermal_colormap auto: no colour map fits' in result.stdout
    meta = load_checkpoint(out / 'last.pth')['meta']
    assert meta['aux_ranges']['thermal_colormap'] == 'luminance'
    assert meta['resize'] == [64]
    assert np.array(meta['palette']).shape == (2, 3)

    report = tmp_path / 'eval'
    args = ['--checkpoint', str(out / 'last.pth'), '--out', str(report), '--max-images', '0',
            '--workers', '0', '--no-progress', '--device', 'cpu']
    assert evaluate_cli.main(args) == 0  # auto fits the same map again
    # Files re-rendered with another palette: auto now picks ironbow, not what was trained.
    copy = Path(shutil.copytree(mine, tmp_path / 'copy'))
    for path in sorted((copy / 'aux').iterdir()):
        write_jpeg(path, colormap_lut('ironbow')[msrs_thermal(path.stem)])
    assert evaluate_cli.main([*args, '--root', str(copy)]) == 2
    assert "trained with thermal_colormap 'luminance'" in capsys.readouterr().err
