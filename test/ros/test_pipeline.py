"""The frame pipeline in-process on small real images: what the node and bag-eval both run.

Each test drives :mod:`smmcl_ros.pipeline` the way the node does (decoded images ->
``FrameAssembler`` -> ``FrameProcessor`` -> outputs) with the seeded, untrained robot-sized
model of ``conftest.py``; results are compared with ``Segmenter.predict`` on the same inputs.
Images are the real NYUv2 sample frame, downscaled to 120x160 to keep the model fast.
"""

import time

import cv2
import numpy as np
import pytest

from smmcl_ros import topics
from smmcl_ros.demo.bundled import DEMO_CHECKPOINT, resolve_checkpoint
from smmcl_ros.messages.camera_info import restamped
from smmcl_ros.node.params import DEFAULTS, ParameterError, validate
from smmcl_ros.pipeline.assemble import AUX, AuxWatch, FrameAssembler, RGB
from smmcl_ros.pipeline.aux import AuxPreparer, make_hha_encoder, MissingIntrinsicsError
from smmcl_ros.pipeline.frame import Frame, Stamped
from smmcl_ros.pipeline.intrinsics import IntrinsicsCache
from smmcl_ros.pipeline.process import FrameProcessor
from smmcl_ros.pipeline.relay import StampedStore
from smmcl_ros.pipeline.slot import LatestFrameWorker
from smmcl_ros.pipeline.stats import NodeStats, WARN

H, W = 120, 160
S = 1_000_000_000  # ns per second


@pytest.fixture(scope='module')
def small(frame):
    rgb, depth = frame
    return (cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA),
            cv2.resize(depth, (W, H), interpolation=cv2.INTER_NEAREST))


class Problems:
    """A Report sink that keeps what it was told."""

    def __init__(self):
        self.seen = []

    def __call__(self, source, reason, detail, once=False):
        self.seen.append((source, reason, detail, once))

    def reasons(self):
        return [(source, reason) for source, reason, _, _ in self.seen]


def _pipeline(segmenter, problems, **aux_kwargs):
    stats = NodeStats()
    aux = AuxPreparer(segmenter.aux_modality, problems, **aux_kwargs)
    return FrameProcessor(segmenter, aux, 0.5, stats=stats), stats


def test_outputs_match_segmenter(segmenter, small):
    rgb, depth = small
    processor, _ = _pipeline(segmenter, Problems())
    outputs = processor.run(Frame(rgb, depth, 5 * S, 'hdr'), confidence=True)
    labels, conf = segmenter.predict(rgb, depth, return_confidence=True)
    np.testing.assert_array_equal(outputs.get('mask'), labels)
    palette = np.asarray(segmenter.palette, np.uint8)
    np.testing.assert_array_equal(outputs.get('color'), palette[labels])
    blend = (rgb.astype(int) + palette[labels].astype(int)) / 2
    assert np.abs(outputs.get('overlay').astype(int) - blend).max() <= 1
    np.testing.assert_allclose(outputs.get('confidence'), conf, atol=1e-5)
    assert outputs.get('color') is outputs.get('color')  # computed once
    with pytest.raises(KeyError, match='mask'):
        outputs.get('mesh')  # the message lists the valid outputs


def test_assembler_pairs_by_stamp_and_survives_backwards_stamps():
    frames, problems = [], Problems()
    assembler = FrameAssembler(0.05, 10, frames.append, problems,
                               sources={RGB: topics.RGB, AUX: topics.AUX})
    img = np.zeros((2, 2, 3), np.uint8)
    aux = np.zeros((2, 2), np.uint16)
    for sec in (30, 31):
        assembler.add(RGB, Stamped(img, sec * S, f'rgb{sec}'))
        assembler.add(AUX, Stamped(aux, sec * S + 10_000_000, f'aux{sec}'))
    # A looping recording: the RGB of the new timeline arrives while aux 32 is still queued.
    assembler.add(AUX, Stamped(aux, 32 * S, 'aux32'))
    assembler.add(RGB, Stamped(img, 25 * S, 'rgb25'))
    assembler.add(AUX, Stamped(aux, 25 * S, 'aux25'))
    assert [(f.stamp_ns // S, f.header, f.aux_header) for f in frames] == [
        (30, 'rgb30', 'aux30'), (31, 'rgb31', 'aux31'), (25, 'rgb25', 'aux25')]
    assert problems.reasons() == [(topics.RGB, 'stamp_backwards'), (topics.AUX, 'stamp_backwards')]
    assert 'dropped 1 queued' in problems.seen[0][2]  # aux 32 of the old timeline
    assert 'dropped 0 queued' in problems.seen[1][2]  # rgb 25 is on the new one: kept


def test_bad_and_repaired_aux_inputs(segmenter, small):
    """Small aux (resized, logged once), NaN/inf depth (reported, treated as invalid)."""
    rgb, depth = small
    problems = Problems()
    processor, _ = _pipeline(segmenter, problems)
    half = np.ascontiguousarray(depth[::2, ::2])
    outputs = processor.run(Frame(rgb, half, 1))
    resized = cv2.resize(half, (W, H), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(outputs.get('mask'), segmenter.predict(rgb, resized))
    assert outputs.result.aux.raw.shape == (H, W)
    assert problems.seen[-1][:2] == (topics.AUX, 'size_mismatch') and problems.seen[-1][3]
    metres = depth.astype(np.float32) / np.float32(1000.0)
    metres[:20, :40] = np.nan
    metres[90:, 100:] = np.inf
    outputs = processor.run(Frame(rgb, metres, 2))
    np.testing.assert_array_equal(outputs.get('mask'), segmenter.predict(rgb, metres))
    assert (topics.AUX, 'nonfinite_depth') in problems.reasons()


def test_rgb_only_frames_get_an_invalid_aux(segmenter, small):
    rgb, _ = small
    processor, stats = _pipeline(segmenter, Problems())
    outputs = processor.run(Frame(rgb, None, 1))
    zeros = np.zeros((H, W), np.uint16)
    np.testing.assert_array_equal(outputs.get('mask'), segmenter.predict(rgb, zeros))
    assert outputs.result.aux.raw is None
    assert stats.totals()[0]['rgb_only'] == 1


def test_aux_watch_decides_rgb_only_and_silence():
    now = [100.0]
    watch = AuxWatch(0.5, clock=lambda: now[0])
    assert not watch.stale(100.2) and watch.stale(100.6)  # counted from start-up
    assert not watch.silent(100.6)  # no RGB either: nothing to say
    watch.rgb_arrived(100.6)
    assert watch.became_silent(100.7) and not watch.became_silent(100.8)  # once
    watch.aux_arrived(100.9)
    assert not watch.silent(101.0) and watch.age(101.0) == pytest.approx(0.1)


def test_latest_frame_worker_keeps_only_the_newest():
    drops = []
    worker = LatestFrameWorker(lambda f: None, lambda e: True, lambda: drops.append(1))
    frames = [Frame(np.zeros((1, 1, 3), np.uint8), None, i) for i in range(3)]
    for f in frames:
        worker.offer(f)  # thread not started: nothing takes them
    assert worker.take() is frames[-1] and len(drops) == 2 and worker.take() is None
    done = []
    worker = LatestFrameWorker(done.append, lambda e: True)
    worker.start()
    worker.offer(frames[0])
    for _ in range(100):
        if done:
            break
        time.sleep(0.01)
    worker.stop()
    assert done == [frames[0]] and not worker.running


def test_diagnostics_counters_after_problems():
    stats = NodeStats()
    for reason in ('unknown_encoding', 'short_data', 'size_mismatch'):
        stats.issue(topics.AUX, reason)
    stats.count('pairs', 2)
    stats.frame_done(0.1, 0.05)
    level, message, values = stats.snapshot(None, False, 'cpu')
    values = dict(values)
    assert level == WARN and 'rejecting inputs (2' in message
    assert values['inputs_rejected_total'] == '2'  # size_mismatch repairs, does not reject
    assert values['input.aux/image.size_mismatch'] == '1'
    assert values['pairs_total'] == '2' and values['frames_out_total'] == '1'


def test_camera_info_relay_picks_the_stamp_and_restamps():
    from sensor_msgs.msg import CameraInfo
    from std_msgs.msg import Header

    store = StampedStore(keep=2)
    assert store.for_stamp(1) is None
    infos = {}
    for sec in (1, 2, 3):
        infos[sec] = CameraInfo(height=H, width=W, distortion_model='plumb_bob')
        infos[sec].header.stamp.sec = sec
        store.add(sec * S, infos[sec])
    assert store.for_stamp(2 * S) is infos[2]
    assert store.for_stamp(1 * S) is infos[3]  # dropped (keep=2): the newest serves
    header = Header(frame_id='camera')
    header.stamp.sec = 7
    out = restamped(infos[2], header)
    assert out.header == header and out.distortion_model == 'plumb_bob' and out is not infos[2]
    assert infos[2].header.stamp.sec == 2  # the stored message is untouched


@pytest.fixture(scope='module')
def hha_segmenter(tmp_path_factory):
    from ros_harness import make_checkpoint

    from smmcl_core.segmenter import Segmenter

    path = make_checkpoint(tmp_path_factory.mktemp('hha') / 'hha.pt', modality='hha')
    return Segmenter.from_checkpoint(path, device='cpu', backend='torch')


def test_hha_aux_needs_intrinsics_and_encodes_depth(hha_segmenter, small):
    from sensor_msgs.msg import CameraInfo

    rgb, depth = small
    problems = Problems()
    cache = IntrinsicsCache()
    hha = make_hha_encoder(0.0)
    processor, _ = _pipeline(hha_segmenter, problems, intrinsics=cache, hha=hha)
    assert processor.run(Frame(rgb, depth, 1)) is None  # no camera_info yet: skipped
    assert problems.reasons() == [(topics.AUX_INFO, 'no_camera_info')]
    # camera_info of the full-size camera: K scaled to the depth image, reported once.
    fx, cx, cy = 518.9, 319.5, 239.5
    cache.update(CameraInfo(height=480, width=640, k=[fx, 0., cx, 0., fx, cy, 0., 0., 1.]))
    outputs = processor.run(Frame(rgb, depth, 2))
    K = cache.lookup(H, W)
    expected = hha_segmenter.predict(rgb, make_hha_encoder(0.0).encode(depth, K))
    np.testing.assert_array_equal(outputs.get('mask'), expected)
    assert (topics.AUX_INFO, 'camera_info_size_mismatch') in problems.reasons()
    np.testing.assert_allclose(outputs.result.aux.K, K)
    with pytest.raises(MissingIntrinsicsError, match='intrinsics'):
        _pipeline(hha_segmenter, problems, hha=hha)[0].run(Frame(rgb, depth, 3))
    with pytest.raises(ValueError, match='HHA encoder'):
        AuxPreparer('hha', problems)


def test_registration_seam_runs_before_hha_and_resize(segmenter, small):
    """A registration step gets raw aux + K + frame and returns aux in the RGB camera."""
    rgb, depth = small
    seen = []

    def shift(aux, K, frame):
        seen.append((aux.shape, frame.stamp_ns))
        return np.roll(aux, 3, axis=1), K

    cache = IntrinsicsCache()
    from sensor_msgs.msg import CameraInfo
    cache.update(CameraInfo(height=H, width=W, k=[100., 0., 80., 0., 100., 60., 0., 0., 1.]))
    processor, _ = _pipeline(segmenter, Problems(), intrinsics=cache, registration=shift)
    outputs = processor.run(Frame(rgb, depth, 9))
    assert seen == [((H, W), 9)]
    np.testing.assert_array_equal(outputs.get('mask'),
                                  segmenter.predict(rgb, np.roll(depth, 3, axis=1)))


def test_checkpoint_parameter_demo_only_by_name():
    values = dict(DEFAULTS)
    with pytest.raises(ParameterError, match="'checkpoint'.*demo"):
        validate(values)  # empty: a clear error, never the demo model silently
    values['checkpoint'] = 'demo'
    assert validate(values).checkpoint == str(DEMO_CHECKPOINT)
    assert resolve_checkpoint('/models/x.pth') == '/models/x.pth'
