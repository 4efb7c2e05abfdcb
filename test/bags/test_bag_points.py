"""``smmcl-bag-eval --output-bag --points``: the semantic clouds of a real NYUv2 bag."""

import json
from pathlib import Path

import numpy as np
import pytest
from ros_harness import make_checkpoint

from smmcl_core.data import build_dataset
from smmcl_core.data.hha import nyu_intrinsics
from smmcl_ros import topics
from smmcl_ros.bags import eval_cli, make_bag
from smmcl_ros.bags.reader import BagReader
from smmcl_ros.messages.image_codec import image_to_array
from smmcl_ros.messages.pointcloud import read_pointcloud

FRAMES = 2


@pytest.fixture(scope='module')
def nyu_bag(tmp_path_factory):
    root = Path(__file__).resolve().parents[3] / 'shared' / 'data' / 'nyuv2_samples'
    if not root.is_dir():
        pytest.skip(f'real sample data not found at {root}')
    bag = tmp_path_factory.mktemp('bag') / 'nyu'
    assert make_bag.main(['--dataset', 'nyudv2', '--root', str(root), '--limit', str(FRAMES),
                          '--no-progress', str(bag)]) == 0
    return bag, build_dataset('nyudv2', root, 'test')


def _eval(bag, checkpoint, tmp_path, *extra):
    report = tmp_path / 'report.json'
    code = eval_cli.main([str(bag), '--checkpoint', str(checkpoint), '--report', str(report),
                          '--device', 'cpu', '--no-progress', *extra])
    return code, json.loads(report.read_text())


def test_output_bag_holds_the_cloud_of_every_mask(nyu_bag, checkpoint, tmp_path):
    bag, dataset = nyu_bag
    out = tmp_path / 'out'
    code, report = _eval(bag, checkpoint, tmp_path, '--output-bag', str(out), '--points')
    assert code == 0, report
    assert report['output_bag']['topics'][topics.BAG_POINTS] == FRAMES
    masks, clouds = {}, {}
    with BagReader(out) as reader:
        for message in reader.messages([topics.BAG_MASK, topics.BAG_POINTS]):
            msg = reader.deserialize(message)
            stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            (masks if message.topic == topics.BAG_MASK else clouds)[stamp] = msg
    assert sorted(masks) == sorted(clouds) and len(clouds) == FRAMES
    K = nyu_intrinsics(480, 640)  # what make_bag records as camera_info for nyudv2
    for i, stamp in enumerate(sorted(clouds)):
        cloud, mask_msg = clouds[stamp], masks[stamp]
        assert cloud.header == mask_msg.header
        points = read_pointcloud(cloud)
        np.testing.assert_array_equal(points['label'], image_to_array(mask_msg))
        depth = dataset.raw_sample(i)[1].astype(np.float64) / 1000.0  # (480, 640) metres
        v, u = np.mgrid[0:480, 0:640]
        z = np.where(depth > 0, depth, np.nan)
        want = np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z], -1)
        got = np.stack([points[n] for n in ('x', 'y', 'z')], -1).astype(np.float64)
        np.testing.assert_array_equal(np.isnan(got[..., 2]), ~(depth > 0))
        assert np.nanmax(np.abs(got - want)) < 1e-4


def test_points_needs_an_output_bag_and_depth(nyu_bag, checkpoint, tmp_path, capsys):
    bag, _ = nyu_bag
    code, report = _eval(bag, checkpoint, tmp_path, '--points')
    assert code == 2 and '--points writes the clouds to --output-bag' in report['error']
    thermal = make_checkpoint(tmp_path / 'thermal.pt', 'thermal')
    code, report = _eval(bag, thermal, tmp_path, '--points', '--output-bag',
                         str(tmp_path / 'o'))
    assert code == 2 and '--points needs a depth or HHA checkpoint' in report['error']
