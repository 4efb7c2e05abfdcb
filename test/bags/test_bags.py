"""Bag tools: make_bag -> bag_eval (known mIoU, output bag) -> replay, in sqlite3 and MCAP.

Checkpoints are real ``smmcl_mit_b0`` networks saved with the checkpoint module: one with its
classifier set to always predict class ``c`` (so the mIoU follows from the labels alone) and
one randomly initialised (so the output bag can be compared with ``Segmenter.predict``).
"""

import json
import os
from pathlib import Path
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import torch

from smmcl_core.checkpoint import build_checkpoint, build_meta, save_checkpoint
from smmcl_core.data import build_dataset
from smmcl_core.data.synthetic import SYNTHETIC_CLASSES, SYNTHETIC_PALETTE
from smmcl_core.segmenter import Segmenter
from smmcl_ros import topics
from smmcl_ros.bags import eval_cli, evaluator, make_bag
from smmcl_ros.bags.errors import BagReadError
from smmcl_ros.bags.messages import image_message, make_header
from smmcl_ros.bags.reader import BagReader
from smmcl_ros.bags.writer import BagWriter
from smmcl_ros.messages.image_codec import decode_aux, decode_rgb, image_to_array

REPO = Path(__file__).resolve().parents[2]
STORAGES = ('sqlite3', 'mcap')
PRESET = 'smmcl_mit_b0'
CONSTANT_CLASS = 1
N_SYNTH = 6
START_NS = int(make_bag.START_TIME_S * 1e9)


def _checkpoint(path, class_names, palette, modality, constant=None, seed=0):
    torch.manual_seed(seed)
    from smmcl_core.models import create_model
    model = create_model(PRESET, len(class_names))
    if constant is not None:
        # The 1x1 classifier is the last conv with K outputs: zero weights and a bias that
        # favours `constant` make every pixel of every image that class.
        head = [m for m in model.modules()
                if isinstance(m, torch.nn.Conv2d) and m.out_channels == len(class_names)][-1]
        with torch.no_grad():
            head.weight.zero_()
            head.bias.fill_(-10.0)
            head.bias[constant] = 10.0
    meta = build_meta(PRESET, len(class_names), class_names, palette, modality)
    save_checkpoint(path, build_checkpoint(model, {}, meta))
    return path


def _constant_miou(labels, cls, ignore_index=255):
    """The mIoU of predicting ``cls`` everywhere: only ``cls`` has a non-zero IoU."""
    values = np.concatenate([lab.ravel() for lab in labels])
    values = values[values != ignore_index]
    present = set(np.unique(values).tolist()) | {cls}
    return float((values == cls).sum() / values.size) / len(present)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """Constant-class and random smmcl_mit_b0 checkpoints."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp('ckpt')
    return {
        'synthetic_const': _checkpoint(root / 'const.pt', SYNTHETIC_CLASSES, SYNTHETIC_PALETTE,
                                       'depth', constant=CONSTANT_CLASS),
        'synthetic_random': _checkpoint(root / 'random.pt', SYNTHETIC_CLASSES,
                                        SYNTHETIC_PALETTE, 'depth', seed=3),
        'thermal_random': _checkpoint(root / 'thermal.pt', SYNTHETIC_CLASSES,
                                      SYNTHETIC_PALETTE, 'thermal', seed=4),
    }


@pytest.fixture(scope='module')
def synthetic_bags(tmp_path_factory):
    """A small SYNTHETIC depth bag per storage, written by the make_bag CLI."""
    root = tmp_path_factory.mktemp('bags')
    bags = {}
    for storage in STORAGES:
        out = root / f'synthetic_{storage}'
        code = make_bag.main(['--synthetic', str(N_SYNTH), '--modality', 'depth', '--size',
                              '48', '64', '--seed', '5', '--rate', '20', '--storage', storage,
                              '--no-progress', str(out)])
        assert code == 0
        bags[storage] = out
    return bags


def _synthetic_dataset():
    return build_dataset('synthetic', None, 'test', aux_modality='depth', length=N_SYNTH,
                         height=48, width=64, seed=5)


def _read_all(bag):
    with BagReader(bag) as reader:
        return [(m, reader.deserialize(m)) for m in reader.messages()]


def _stamp(msg):
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


# --- make_bag -------------------------------------------------------------------------------
@pytest.mark.parametrize('storage', STORAGES)
def test_make_bag_synthetic_content(synthetic_bags, storage):
    """Topics, encodings, stamps, frame ids, K and pixels equal the generator."""
    bag = synthetic_bags[storage]
    assert (bag / 'metadata.yaml').is_file()
    with BagReader(bag) as reader:
        assert reader.storage == storage and reader.damage is None
        assert reader.topics == {make_bag.RGB_TOPIC: 'sensor_msgs/msg/Image',
                                 make_bag.AUX_TOPIC: 'sensor_msgs/msg/Image',
                                 make_bag.LABEL_TOPIC: 'sensor_msgs/msg/Image',
                                 make_bag.INFO_TOPIC: 'sensor_msgs/msg/CameraInfo'}
        assert set(reader.counts.values()) == {N_SYNTH}
    dataset = _synthetic_dataset()
    by_topic = {}
    for message, msg in _read_all(bag):
        by_topic.setdefault(message.topic, []).append((message, msg))
    for i in range(N_SYNTH):
        rgb, aux, label = dataset.raw_sample(i)
        stamp = START_NS + i * 50_000_000  # 20 Hz
        for topic in (make_bag.RGB_TOPIC, make_bag.AUX_TOPIC, make_bag.LABEL_TOPIC,
                      make_bag.INFO_TOPIC):
            message, msg = by_topic[topic][i]
            assert message.timestamp == stamp and _stamp(msg) == stamp
            assert msg.header.frame_id == make_bag.FRAME_ID
        rgb_msg = by_topic[make_bag.RGB_TOPIC][i][1]
        aux_msg = by_topic[make_bag.AUX_TOPIC][i][1]
        label_msg = by_topic[make_bag.LABEL_TOPIC][i][1]
        info = by_topic[make_bag.INFO_TOPIC][i][1]
        assert (rgb_msg.encoding, aux_msg.encoding, label_msg.encoding) == \
            ('rgb8', '16UC1', 'mono8')
        np.testing.assert_array_equal(decode_rgb(rgb_msg), rgb)
        np.testing.assert_array_equal(decode_aux(aux_msg, 'depth'), aux)
        np.testing.assert_array_equal(image_to_array(label_msg), label)
        assert (info.height, info.width) == (48, 64)
        np.testing.assert_allclose(info.k, [0.81 * 64, 0, 31.5, 0, 0.81 * 64, 23.5, 0, 0, 1])


def test_make_bag_nyuv2_32fc1(shared_data, tmp_path):
    """Real NYUv2 frames: depth converted to 32FC1 metres, labels as train ids."""
    out = tmp_path / 'nyu'
    assert make_bag.main(['--dataset', 'nyudv2', '--root', str(shared_data / 'nyuv2_samples'),
                          '--split', 'test', '--depth-encoding', '32FC1', '--storage', 'mcap',
                          '--no-progress', str(out)]) == 0
    dataset = build_dataset('nyudv2', shared_data / 'nyuv2_samples', 'test')
    msgs = [(m.topic, msg) for m, msg in _read_all(out)]
    auxes = [msg for topic, msg in msgs if topic == make_bag.AUX_TOPIC]
    labels = [msg for topic, msg in msgs if topic == make_bag.LABEL_TOPIC]
    assert len(auxes) == len(labels) == len(dataset) == 3
    for i, (aux_msg, label_msg) in enumerate(zip(auxes, labels)):
        _, depth_mm, label = dataset.raw_sample(i)
        assert aux_msg.encoding == '32FC1' and (aux_msg.height, aux_msg.width) == (480, 640)
        np.testing.assert_allclose(decode_aux(aux_msg, 'depth'), depth_mm / 1000.0, rtol=1e-6)
        np.testing.assert_array_equal(image_to_array(label_msg), label)


# --- bag_eval --------------------------------------------------------------------------------
def _eval(bag, checkpoint, tmp_path, *extra, label=True):
    report = tmp_path / 'report.json'
    args = [str(bag), '--checkpoint', str(checkpoint), '--report', str(report), '--device',
            'cpu', '--no-progress', *extra]
    if label:
        args += ['--label-topic', make_bag.LABEL_TOPIC]
    code = eval_cli.main(args)
    return code, json.loads(report.read_text())


@pytest.mark.parametrize('storage', STORAGES)
def test_bag_eval_known_miou_and_output_bag(synthetic_bags, checkpoints, tmp_path, storage):
    """Constant predictor: mIoU from labels alone; output bag holds its masks."""
    out_storage = 'mcap' if storage == 'sqlite3' else 'sqlite3'
    code, report = _eval(synthetic_bags[storage], checkpoints['synthetic_const'], tmp_path,
                         '--output-bag', str(tmp_path / 'out'), '--storage', out_storage)
    assert code == 0, report
    labels = [_synthetic_dataset().raw_sample(i)[2] for i in range(N_SYNTH)]
    frames = report['frames']
    assert frames['paired'] == frames['evaluated'] == frames['with_label'] == N_SYNTH
    assert frames['rejected'] == 0 and frames['unpaired'] == {'rgb': 0, 'aux': 0}
    assert report['truncated'] is False and report['error'] is None
    assert report['miou'] == pytest.approx(_constant_miou(labels, CONSTANT_CLASS), abs=1e-9)
    wall = report['metrics']['per_class'][SYNTHETIC_CLASSES[CONSTANT_CLASS]]
    valid = np.concatenate([lab.ravel() for lab in labels])
    assert wall['iou'] == pytest.approx(float((valid == CONSTANT_CLASS).mean()), abs=1e-9)
    latency = report['latency_ms']
    assert latency['count'] == N_SYNTH and 0 < latency['p50'] <= latency['p95']
    # Output bag: constant masks with the input RGB headers, readable by rosbags.
    inputs = {_stamp(msg): msg for m, msg in _read_all(synthetic_bags[storage])
              if m.topic == make_bag.RGB_TOPIC}
    with BagReader(tmp_path / 'out') as reader:
        assert reader.storage == out_storage
        assert reader.counts == {topics.BAG_MASK: N_SYNTH, topics.BAG_COLOR: N_SYNTH}
        for message in reader.messages():
            msg = reader.deserialize(message)
            assert msg.header == inputs[_stamp(msg)].header
            image = image_to_array(msg)
            if message.topic == topics.BAG_MASK:
                assert msg.encoding == 'mono8'
                assert image.shape == (48, 64) and (image == CONSTANT_CLASS).all()
            else:
                assert msg.encoding == 'rgb8'
                assert (image == SYNTHETIC_PALETTE[CONSTANT_CLASS]).all()


def test_bag_eval_nyuv2_known_miou(shared_data, checkpoints, tmp_path):
    """Real NYUv2 labels: 40-class mIoU of an always-wall model."""
    bag = tmp_path / 'nyu'
    assert make_bag.main(['--dataset', 'nyudv2', '--root', str(shared_data / 'nyuv2_samples'),
                          '--limit', '2', '--no-progress', str(bag)]) == 0
    dataset = build_dataset('nyudv2', shared_data / 'nyuv2_samples', 'test')
    ckpt = _checkpoint(tmp_path / 'nyu.pt', dataset.class_names, dataset.palette, 'depth',
                       constant=0)  # always "wall"
    code, report = _eval(bag, ckpt, tmp_path)
    assert code == 0, report
    labels = [dataset.raw_sample(i)[2] for i in range(2)]
    assert report['frames']['with_label'] == 2
    assert report['miou'] == pytest.approx(_constant_miou(labels, 0), abs=1e-9)
    assert 0 < report['miou'] < 0.2


def _msrs_samples(shared_data, count=4, size=(96, 128)):
    names = sorted(p.name for p in (shared_data / 'msrs_night' / 'visible').iterdir())[:count]
    for name in names:
        rgb = cv2.imread(str(shared_data / 'msrs_night' / 'visible' / name))[:, :, ::-1]
        thermal = cv2.imread(str(shared_data / 'msrs_night' / 'thermal' / name),
                             cv2.IMREAD_GRAYSCALE)
        yield (cv2.resize(np.ascontiguousarray(rgb), size[::-1]),
               cv2.resize(thermal, size[::-1]), None)


def test_output_bag_matches_segmenter_msrs(shared_data, checkpoints, tmp_path):
    """Real MSRS night RGB-T: output masks equal Segmenter.predict frame by frame."""
    bag = make_bag.write_bag(tmp_path / 'msrs', _msrs_samples(shared_data), 4, 'thermal',
                             storage='mcap', progress=False)
    code, report = _eval(bag, checkpoints['thermal_random'], tmp_path, '--output-bag',
                         str(tmp_path / 'out'), label=False)
    assert code == 0 and report['frames']['evaluated'] == 4 and report['metrics'] is None
    segmenter = Segmenter.from_checkpoint(checkpoints['thermal_random'], device='cpu')
    inputs = {}
    for message, msg in _read_all(bag):
        inputs.setdefault(_stamp(msg), {})[message.topic] = msg
    masks = [msg for m, msg in _read_all(tmp_path / 'out') if m.topic == topics.BAG_MASK]
    assert len(masks) == 4
    distinct = set()
    for mask_msg in masks:
        frame = inputs[_stamp(mask_msg)]
        expected = segmenter.predict(np.ascontiguousarray(decode_rgb(frame[make_bag.RGB_TOPIC])),
                                     decode_aux(frame[make_bag.AUX_TOPIC], 'thermal'))
        np.testing.assert_array_equal(image_to_array(mask_msg), expected)
        distinct |= set(np.unique(expected).tolist())
    assert len(distinct) > 1  # a real, non-constant prediction was compared


def test_slop_decides_pairing(checkpoints, tmp_path):
    """The node synchroniser pairs 30 ms-offset aux with slop 0.05, not 0.01."""
    bag = tmp_path / 'offset'
    assert make_bag.main(['--synthetic', '3', '--size', '32', '48', '--aux-offset-ms', '30',
                          '--rate', '5', '--no-progress', str(bag)]) == 0
    code, report = _eval(bag, checkpoints['synthetic_const'], tmp_path, '--slop', '0.05')
    assert code == 0 and report['frames']['paired'] == 3 and report['frames']['with_label'] == 3
    code, report = _eval(bag, checkpoints['synthetic_const'], tmp_path, '--slop', '0.01')
    assert code == 1 and report['frames']['paired'] == 0
    assert report['frames']['unpaired'] == {'rgb': 3, 'aux': 3}


# --- damaged and bad input -----------------------------------------------------------------------
@pytest.mark.parametrize('storage', STORAGES)
def test_truncated_bag_evaluates_frames_before_damage(checkpoints, tmp_path, storage):
    """A truncated storage file: frames before the damage evaluated, exit 1."""
    bag = tmp_path / 'long'
    # ~115 kB per frame: the MCAP file spans several 1 MiB chunks.
    assert make_bag.main(['--synthetic', '20', '--size', '120', '160', '--storage', storage,
                          '--label-topic', '', '--info-topic', '', '--no-progress',
                          str(bag)]) == 0
    files = [p for p in bag.iterdir() if p.suffix in ('.db3', '.mcap')]
    assert len(files) == 1
    os.truncate(files[0], int(files[0].stat().st_size * 0.6))
    readable = {make_bag.RGB_TOPIC: set(), make_bag.AUX_TOPIC: set()}
    with BagReader(bag) as reader:
        assert reader.damage is not None
        with pytest.raises(BagReadError):
            for message in reader.messages():
                readable[message.topic].add(message.timestamp)
    expected = len(readable[make_bag.RGB_TOPIC] & readable[make_bag.AUX_TOPIC])
    assert 3 <= expected < 20
    code, report = _eval(bag, checkpoints['synthetic_random'], tmp_path, label=False)
    assert code == 1
    assert report['truncated'] is True and 'damaged' in report['error']
    assert report['frames']['evaluated'] == expected
    assert report['latency_ms']['count'] == expected


def test_unknown_topic_lists_bag_topics(synthetic_bags, checkpoints, tmp_path, capsys):
    """An unknown topic fails with exit 2 and lists the bag topics."""
    code, report = _eval(synthetic_bags['mcap'], checkpoints['synthetic_const'], tmp_path,
                         '--rgb-topic', '/nope/image')
    assert code == 2
    err = capsys.readouterr().err
    assert "'/nope/image' not found" in err and make_bag.RGB_TOPIC in err
    assert make_bag.INFO_TOPIC in report['error'] and report['error_kind'] == 'unknown_topic'


def _custom_bag(path, storage, rgb_encoding='rgb8', short_frame=None, frames=3):
    with BagWriter(path, storage) as writer:
        store = writer.typestore
        dataset = _synthetic_dataset()
        for i in range(frames):
            rgb, aux, _ = dataset.raw_sample(i)
            stamp = START_NS + i * 100_000_000
            header = make_header(store, stamp, 'cam')
            rgb_msg = image_message(store, rgb, 'rgb8', header)
            rgb_msg.encoding = rgb_encoding
            if i == short_frame:
                rgb_msg.data = rgb_msg.data[:-10]
            writer.write(make_bag.RGB_TOPIC, rgb_msg, stamp)
            writer.write(make_bag.AUX_TOPIC, image_message(store, aux, '16UC1', header), stamp)
    return path


def test_looping_recording_keeps_the_first_looped_frame(checkpoints, tmp_path):
    """Header stamps jump back (a looped driver): the looped frames all pair again."""
    bag = tmp_path / 'loop'
    dataset = _synthetic_dataset()
    with BagWriter(bag, 'sqlite3') as writer:
        store = writer.typestore
        for i, frame in enumerate((0, 1, 0, 1)):  # bag time grows, header stamps loop
            rgb, aux, _ = dataset.raw_sample(frame)
            header = make_header(store, START_NS + frame * 100_000_000, 'cam')
            bag_time = START_NS + i * 100_000_000
            writer.write(make_bag.RGB_TOPIC, image_message(store, rgb, 'rgb8', header), bag_time)
            writer.write(make_bag.AUX_TOPIC, image_message(store, aux, '16UC1', header),
                         bag_time)
    code, report = _eval(bag, checkpoints['synthetic_const'], tmp_path, label=False)
    assert code == 0, report
    assert report['warnings'] == {'stamp_backwards': 2}
    assert report['frames']['evaluated'] == 4
    assert report['frames']['unpaired'] == {'rgb': 0, 'aux': 0}


def test_failed_run_still_closes_the_output_bag(synthetic_bags, checkpoints, tmp_path):
    """An error after the output bag was opened leaves it complete (metadata written)."""
    segmenter = Segmenter.from_checkpoint(checkpoints['synthetic_const'], device='cpu')
    out = tmp_path / 'out'
    with pytest.raises(ValueError, match='label_match'):
        evaluator.evaluate_bag(synthetic_bags['sqlite3'], segmenter, make_bag.RGB_TOPIC,
                               make_bag.AUX_TOPIC, output_bag=out, label_match='nearest',
                               progress=False)
    assert (out / 'metadata.yaml').is_file()
    with BagReader(out) as reader:
        assert reader.damage is None and reader.counts == {}  # a valid, empty bag


def test_unsupported_encoding_is_a_clear_error(checkpoints, tmp_path, capsys):
    """An RGB encoding the codec cannot read stops with exit 2 naming it."""
    bag = _custom_bag(tmp_path / 'bayer', 'sqlite3', rgb_encoding='bayer_rggb8')
    code, report = _eval(bag, checkpoints['synthetic_const'], tmp_path, label=False)
    assert code == 2
    assert 'bayer_rggb8' in report['error'] and make_bag.RGB_TOPIC in report['error']
    assert 'bayer_rggb8' in capsys.readouterr().err


def test_bad_frame_rejected_with_reason(checkpoints, tmp_path):
    """A short frame is rejected with its reason, the others evaluated."""
    bag = _custom_bag(tmp_path / 'short', 'mcap', short_frame=1)
    code, report = _eval(bag, checkpoints['synthetic_const'], tmp_path, label=False)
    assert code == 0
    frames = report['frames']
    assert frames['evaluated'] == 2 and frames['rejected'] == 1
    assert frames['rejected_reasons'] == {make_bag.RGB_TOPIC: {'short_data': 1}}
    assert frames['unpaired'] == {'rgb': 0, 'aux': 1}


# --- replay ------------------------------------------------------------------------------------
_SUBSCRIBER = textwrap.dedent("""
    import json, sys, time
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    topics, expected = sys.argv[1].split(','), int(sys.argv[2])
    rclpy.init()
    node = rclpy.create_node('bag_test_subscriber')
    got = []
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    for topic in topics:
        node.create_subscription(Image, topic, lambda m, t=topic: got.append(
            [t, m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id, m.encoding,
             m.width, m.height, len(m.data)]), qos)
    deadline = time.monotonic() + 40
    while len(got) < expected and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps(got), flush=True)
    rclpy.shutdown()
""")


@pytest.mark.ros
def test_replay_publishes_bag_to_other_process(synthetic_bags, ros_env):
    """Replay publishes every frame with recorded headers to another process."""
    bag = synthetic_bags['mcap']
    topics = [make_bag.RGB_TOPIC, '/remapped/aux']
    subscriber = subprocess.Popen(
        [sys.executable, '-c', _SUBSCRIBER, ','.join(topics), str(2 * N_SYNTH)],
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        replay = subprocess.run(
            [sys.executable, '-m', 'smmcl_ros.bags.replay', str(bag), '--topics',
             make_bag.RGB_TOPIC,
             f'{make_bag.AUX_TOPIC}:=/remapped/aux', '--wait-subscribers', '1',
             '--rate-scale', '4', '--qos', 'reliable'],
            env=ros_env, cwd=REPO, capture_output=True, text=True, timeout=60)
        out, err = subscriber.communicate(timeout=60)
    finally:
        subscriber.kill()
    assert replay.returncode == 0, replay.stderr
    got = json.loads(out.strip().splitlines()[-1])
    assert len(got) == 2 * N_SYNTH, err
    expected = {(t, i) for t in topics for i in range(N_SYNTH)}
    seen = set()
    for topic, sec, nanosec, frame_id, encoding, width, height, size in got:
        offset = sec * 1_000_000_000 + nanosec - START_NS
        assert offset % 50_000_000 == 0 and frame_id == make_bag.FRAME_ID
        seen.add((topic, offset // 50_000_000))
        assert (width, height) == (64, 48)
        assert (encoding, size) == (('rgb8', 64 * 48 * 3) if topic == make_bag.RGB_TOPIC
                                    else ('16UC1', 64 * 48 * 2))
    assert seen == expected
