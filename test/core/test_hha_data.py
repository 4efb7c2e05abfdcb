"""HHA beyond the encoder: NYUDv2 reader on the fly, smmcl-make-hha, bags with camera_info.

Real NYUv2 frames (``../shared/data/nyuv2_samples``), real bags written by ``smmcl-make-bag``,
a real seeded ``smmcl_mit_b0`` checkpoint whose meta says ``aux_modality: hha``.
"""

import json
from pathlib import Path
import shutil
import subprocess
import sys

import numpy as np
import pytest

from smmcl_core.data import build_dataset, hha
from smmcl_core.data.hha import HHAEncoder
from smmcl_core.data.io import read_aux

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def nyu_without_hha(shared_data, tmp_path):
    """The NYUv2 samples without their HHA/ folder (a dataset shipped with Depth/ only)."""
    root = tmp_path / 'nyu'
    shutil.copytree(shared_data / 'nyuv2_samples', root)
    shutil.rmtree(root / 'HHA')
    return root


def _mean_abs(a, b):
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).reshape(-1, 3).mean(0)


def test_nyudv2_reader_computes_hha_from_depth(nyu_without_hha, shared_data):
    dataset = build_dataset('nyudv2', nyu_without_hha, 'test', aux_modality='hha')
    assert dataset.hha_from_depth and dataset.aux_modality == 'hha'
    for i, name in enumerate(dataset.names):
        _, aux, _ = dataset.raw_sample(i)
        depth = read_aux(nyu_without_hha / 'Depth' / f'{name}.png', 'depth')
        np.testing.assert_array_equal(aux, HHAEncoder().encode(depth, hha.NYU_DEPTH_V2_K))
    # Frame 0 against the HHA file the released NYUDv2 models were trained on.
    released = read_aux(shared_data / 'nyuv2_samples' / 'HHA' / '0.png', 'hha')
    first = dataset.raw_sample(dataset.names.index('0'))[1]
    assert np.all(_mean_abs(first, released) <= (0.86, 0.57, 2.61))
    # The network input is the HHA / 255, normalised like any HHA file.
    rgb_t, aux_t, label_t = dataset[0]
    assert aux_t.shape == (3, 480, 640)
    # Intrinsics can be overridden; other intrinsics give another encoding.
    K = hha.NYU_DEPTH_V2_K.copy()
    K[1, 2] -= 100
    other = build_dataset('nyudv2', nyu_without_hha, 'test', aux_modality='hha', intrinsics=K)
    assert not np.array_equal(other.raw_sample(0)[1], dataset.raw_sample(0)[1])
    # With an HHA/ folder the files are read as before.
    shipped = build_dataset('nyudv2', shared_data / 'nyuv2_samples', 'test', aux_modality='hha')
    assert not shipped.hha_from_depth


def test_nyudv2_hha_from_8bit_depth_names_the_file(nyu_without_hha):
    import cv2

    path = nyu_without_hha / 'Depth' / '0.png'
    cv2.imwrite(str(path), np.full((480, 640), 9, np.uint8))
    dataset = build_dataset('nyudv2', nyu_without_hha, 'test', aux_modality='hha')
    index = dataset.names.index('0')
    with pytest.raises(ValueError, match=r'cannot compute HHA from .*0\.png'):
        dataset.raw_sample(index)


def test_make_hha_cli(nyu_without_hha, tmp_path, capsys):
    """``python -m smmcl_core.cli.make_hha``: same images as the reader, parallel, resumable."""
    from smmcl_core.cli import make_hha

    out = tmp_path / 'HHA'
    args = [sys.executable, '-m', 'smmcl_core.cli.make_hha', str(nyu_without_hha / 'Depth'),
            str(out), '--camera', 'nyu', '--workers', '2']
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 'wrote 3' in done.stderr
    names = sorted(p.stem for p in (nyu_without_hha / 'Depth').glob('*.png'))
    assert sorted(p.stem for p in out.glob('*.png')) == names
    for name in names:
        depth = read_aux(nyu_without_hha / 'Depth' / f'{name}.png', 'depth')
        np.testing.assert_array_equal(read_aux(out / f'{name}.png', 'hha'),
                                      HHAEncoder().encode(depth, hha.NYU_DEPTH_V2_K))
    # A dataset using the written folder reads exactly what the on-the-fly reader computes.
    shutil.copytree(out, nyu_without_hha / 'HHA')
    from_files = build_dataset('nyudv2', nyu_without_hha, 'test', aux_modality='hha')
    assert not from_files.hha_from_depth
    # Existing outputs are kept unless --overwrite; explicit intrinsics work as well.
    folders = [str(nyu_without_hha / 'Depth'), str(out)]
    capsys.readouterr()
    assert make_hha.main(folders + ['--intrinsics', '518.86', '519.47', '324.58', '252.74',
                                    '--workers', '1', '--no-progress']) == 0
    assert 'skipped 3' in capsys.readouterr().err
    # Bad arguments name the problem.
    for bad, words in (([], '--intrinsics'), (['--camera', 'nyu', '--workers', '0'], 'workers'),
                       (['--intrinsics', '0', '1', '2', '3'], 'focal')):
        with pytest.raises(SystemExit) as exit_info:
            make_hha.main(folders + bad)
        assert exit_info.value.code == 2 and words in capsys.readouterr().err
    with pytest.raises(SystemExit):
        make_hha.main([str(tmp_path / 'nope'), str(out), '--camera', 'nyu'])
    assert 'nope' in capsys.readouterr().err


def test_make_hha_scales_and_reports_bad_files(tmp_path, shared_data):
    import cv2

    from smmcl_core.cli import make_hha

    src = tmp_path / 'depth'
    src.mkdir()
    depth = read_aux(shared_data / 'nyuv2_samples' / 'Depth' / '0.png', 'depth')
    small = cv2.resize(depth, (320, 240), interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(src / 'small.png'), small)
    np.save(src / 'metres.npy', depth.astype(np.float32) / 1000.0)
    (src / 'broken.png').write_bytes(b'not a png')
    out = tmp_path / 'out'
    code = make_hha.main([str(src), str(out), '--camera', 'nyu', '--workers', '1',
                          '--no-progress'])
    assert code == 1  # one file failed; the others are written
    np.testing.assert_array_equal(read_aux(out / 'small.png', 'hha'),
                                  hha.depth_to_hha(small / np.float32(1000),
                                                   hha.nyu_intrinsics(240, 320)))
    np.testing.assert_array_equal(read_aux(out / 'metres.png', 'hha'),
                                  HHAEncoder().encode(depth, hha.NYU_DEPTH_V2_K))
    assert not (out / 'broken.png').exists()


# --- bags --------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def hha_checkpoint(tmp_path_factory):
    import torch
    from ros_harness import make_checkpoint

    torch.set_num_threads(1)
    return make_checkpoint(tmp_path_factory.mktemp('ckpt') / 'hha.pt', modality='hha')


def test_bag_eval_encodes_depth_with_recorded_camera_info(shared_data, hha_checkpoint,
                                                          tmp_path):
    from smmcl_core.segmenter import Segmenter
    from smmcl_ros import topics
    from smmcl_ros.bags import eval_cli as bag_eval, make_bag
    from smmcl_ros.bags.reader import BagReader
    from smmcl_ros.messages.image_codec import image_to_array

    bag = tmp_path / 'nyu'
    assert make_bag.main(['--dataset', 'nyudv2', '--root', str(shared_data / 'nyuv2_samples'),
                          '--no-progress', str(bag)]) == 0
    with BagReader(bag) as reader:
        infos = [reader.deserialize(m) for m in reader.messages([make_bag.INFO_TOPIC])]
    np.testing.assert_allclose(np.reshape(infos[0].k, (3, 3)), hha.NYU_DEPTH_V2_K)
    report_path = tmp_path / 'report.json'
    code = bag_eval.main([str(bag), '--checkpoint', str(hha_checkpoint), '--device', 'cpu',
                          '--no-progress', '--label-topic', make_bag.LABEL_TOPIC,
                          '--output-bag', str(tmp_path / 'out'), '--report',
                          str(report_path)])
    report = json.loads(report_path.read_text())
    assert code == 0, report
    assert report['frames']['evaluated'] == report['frames']['with_label'] == 3
    segmenter = Segmenter.from_checkpoint(hha_checkpoint, device='cpu')
    dataset = build_dataset('nyudv2', shared_data / 'nyuv2_samples', 'test')
    expected = {}
    for i in range(3):
        rgb, depth, _ = dataset.raw_sample(i)
        expected[i] = segmenter.predict(rgb, HHAEncoder().encode(depth, hha.NYU_DEPTH_V2_K))
    with BagReader(tmp_path / 'out') as reader:
        masks = [image_to_array(reader.deserialize(m))
                 for m in reader.messages([topics.BAG_MASK])]
    assert len(masks) == 3
    for i, mask in enumerate(masks):
        np.testing.assert_array_equal(mask, expected[i])

    # Without camera_info in the bag the HHA checkpoint cannot use depth: a clear error.
    nocam = tmp_path / 'nocam'
    assert make_bag.main(['--dataset', 'nyudv2', '--root', str(shared_data / 'nyuv2_samples'),
                          '--limit', '1', '--info-topic', '', '--no-progress',
                          str(nocam)]) == 0
    code = bag_eval.main([str(nocam), '--checkpoint', str(hha_checkpoint), '--device', 'cpu',
                          '--no-progress', '--report', str(report_path)])
    report = json.loads(report_path.read_text())
    assert code == 2 and '--camera-info-topic' in report['error']


# --- camera_info -------------------------------------------------------------------------
def _camera_info(k, height=480, width=640, binning=(0, 0), roi=None):
    from types import SimpleNamespace

    roi = roi or (0, 0, 0, 0)
    return SimpleNamespace(k=list(np.asarray(k, float).ravel()), height=height, width=width,
                           binning_x=binning[0], binning_y=binning[1],
                           roi=SimpleNamespace(x_offset=roi[0], y_offset=roi[1],
                                               width=roi[2], height=roi[3]))


def test_camera_info_parsing_and_cache():
    from smmcl_ros.pipeline.intrinsics import (CameraInfoError, intrinsics_from_msg,
                                               IntrinsicsCache, IntrinsicsTimeline)

    K = hha.NYU_DEPTH_V2_K
    parsed = intrinsics_from_msg(_camera_info(K))
    np.testing.assert_array_equal(parsed.K, K)
    assert (parsed.height, parsed.width) == (480, 640)
    # Binning 2x2 and a region of interest, as image_geometry computes them.
    binned = intrinsics_from_msg(_camera_info(K, binning=(2, 2)))
    np.testing.assert_allclose(binned.K[:2], K[:2] / 2)
    assert (binned.height, binned.width) == (240, 320)
    cropped = intrinsics_from_msg(_camera_info(K, roi=(100, 50, 320, 240)))
    np.testing.assert_allclose(cropped.K[:2, 2], K[:2, 2] - [100, 50])
    assert (cropped.height, cropped.width) == (240, 320)
    for bad, words in ((np.zeros((3, 3)), 'uncalibrated'), (np.full((3, 3), np.nan), 'NaN'),
                       (np.eye(2), 'expected 9')):
        with pytest.raises(CameraInfoError, match=words) as info:
            intrinsics_from_msg(_camera_info(bad))
        assert info.value.reason == 'malformed_camera_info'
    with pytest.raises(CameraInfoError):
        intrinsics_from_msg(object())

    cache = IntrinsicsCache()
    with pytest.raises(CameraInfoError) as info:
        cache.lookup(480, 640)
    assert info.value.reason == 'no_camera_info'
    assert cache.update(_camera_info(K)) is True
    assert cache.update(_camera_info(K)) is False  # same intrinsics again
    with pytest.raises(CameraInfoError):
        cache.update(_camera_info(np.zeros((3, 3))))
    np.testing.assert_array_equal(cache.lookup(480, 640), K)  # the malformed one was ignored
    assert cache.size_mismatch is None
    np.testing.assert_allclose(cache.lookup(240, 320), hha.nyu_intrinsics(240, 320))
    assert cache.size_mismatch == ((480, 640), (240, 320))
    other = K.copy()
    other[0, 0] += 5
    assert cache.update(_camera_info(other)) is True

    timeline = IntrinsicsTimeline()
    with pytest.raises(CameraInfoError):
        timeline.lookup(0, 480, 640)
    timeline.add(200, _camera_info(other))
    timeline.add(100, _camera_info(K))
    timeline.add(150, _camera_info(np.zeros((3, 3))))
    assert len(timeline) == 2 and timeline.malformed == 1
    np.testing.assert_array_equal(timeline.lookup(90, 480, 640), K)
    np.testing.assert_array_equal(timeline.lookup(140, 480, 640), K)
    np.testing.assert_array_equal(timeline.lookup(160, 480, 640), other)
    np.testing.assert_array_equal(timeline.lookup(10**12, 480, 640), other)


def test_gravity_smoothing_parameter_is_validated():
    from smmcl_ros.node.params import DEFAULTS, ParameterError, validate

    smoothed = validate(dict(DEFAULTS, checkpoint='demo', hha_gravity_smoothing=0.9))
    assert smoothed.hha_gravity_smoothing == 0.9
    assert validate(dict(DEFAULTS, checkpoint='demo', aux_modality='hha')).aux_modality == 'hha'
    for bad in (1.0, -0.1):
        with pytest.raises(ParameterError, match='hha_gravity_smoothing'):
            validate(dict(DEFAULTS, checkpoint='demo', hha_gravity_smoothing=bad))
