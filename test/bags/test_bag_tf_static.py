"""smmcl-bag-eval --aux-registration depth with the extrinsic from the bag's /tf_static.

Real NYUv2 frames; their registered depth re-imaged by a virtual 800x600 depth camera 2.5 cm
aside (the ray-cast camera of ``test/core/test_registration.py``). The bag holds what a depth
camera driver records: both images with their own ``frame_id``, both ``camera_info``s and a
``/tf_static`` tree (``camera_link -> color optical``, ``camera_link -> depth link -> depth
optical``), no ``--aux-to-rgb``.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from virtual_cameras import NYU_K, virtual_depth

from smmcl_core.data.registration import pose_matrix
from smmcl_ros import topics
from smmcl_ros.bags import eval_cli
from smmcl_ros.bags.messages import camera_info_message, image_message, make_header, tf_message
from smmcl_ros.bags.reader import BagReader
from smmcl_ros.bags.writer import BagWriter
from smmcl_ros.messages.image_codec import image_to_array
from smmcl_ros.pipeline.tf_static import matrix_to_pose

RGB_TOPIC, AUX_TOPIC = '/camera/color/image_raw', '/camera/depth/image_raw'
RGB_INFO, AUX_INFO = '/camera/color/camera_info', '/camera/depth/camera_info'
RGB_FRAME, AUX_FRAME = 'camera_color_optical_frame', 'camera_depth_optical_frame'
KV = np.array([[580.0, 0.0, 399.5], [0.0, 580.0, 299.5], [0.0, 0.0, 1.0]])
ROTATION = Rotation.from_euler('xyz', [0.8, -1.2, 0.5], degrees=True)
AUX_TO_RGB = [0.025, -0.004, 0.003] + list(ROTATION.as_quat())  # depth optical in RGB optical


def static_tree() -> list:
    """``(parent, child, pose)``: camera_link -> color optical; camera_link -> depth -> optical.

    Composed along the tree, the depth optical frame sits at :data:`AUX_TO_RGB` in the colour
    optical frame.
    """
    link_color = pose_matrix([0.0, 0.015, 0.0, -0.5, 0.5, -0.5, 0.5])  # x forward -> optical
    link_depth = pose_matrix([0.0, -0.01, 0.001, 0.0, 0.0, 0.0087, 0.99996])
    depth_optical = np.linalg.inv(link_depth) @ link_color @ pose_matrix(AUX_TO_RGB)
    return [('camera_link', RGB_FRAME, matrix_to_pose(link_color)),
            ('camera_link', 'camera_depth_frame', matrix_to_pose(link_depth)),
            ('camera_depth_frame', AUX_FRAME, matrix_to_pose(depth_optical))]


@pytest.fixture(scope='module')
def frames():
    """``(rgb, registered depth, virtual-camera depth)`` of two real NYUv2 frames."""
    from conftest import SHARED_DATA

    from smmcl_core.data.io import read_aux, read_rgb

    folder = SHARED_DATA / 'nyuv2_samples'
    if not folder.is_dir():
        pytest.skip(f'real sample data not found at {folder}')
    out = []
    for name in ('0', '464'):  # 464: raw Kinect depth, 37% holes
        rgb, depth = read_rgb(folder / 'RGB' / f'{name}.png'), read_aux(
            folder / 'Depth' / f'{name}.png', 'depth')
        out.append((rgb, depth, virtual_depth(depth, NYU_K, KV, (600, 800), ROTATION,
                                              AUX_TO_RGB[:3])))
    return out


def write_rig_bag(path: Path, frames, tree, aux_frame: str = AUX_FRAME) -> Path:
    """The driver's recording: images, both camera_infos, /tf_static (``tree``; None: none)."""
    with BagWriter(path, 'mcap') as writer:
        store = writer.typestore
        start = 1_700_000_000_000_000_000
        if tree is not None:
            writer.write('/tf_static', tf_message(store, make_header(store, start, ''), tree),
                         start)
        for i, (rgb, _, aux) in enumerate(frames):
            stamp = start + (i + 1) * 100_000_000
            rgb_header, aux_header = (make_header(store, stamp, RGB_FRAME),
                                      make_header(store, stamp, aux_frame))
            writer.write(RGB_TOPIC, image_message(store, rgb, 'rgb8', rgb_header), stamp)
            writer.write(AUX_TOPIC, image_message(store, aux, '16UC1', aux_header), stamp)
            writer.write(RGB_INFO, camera_info_message(store, rgb_header, 480, 640, NYU_K[0, 0],
                                                       NYU_K[1, 1], NYU_K[0, 2], NYU_K[1, 2]),
                         stamp)
            writer.write(AUX_INFO, camera_info_message(store, aux_header, 600, 800, KV[0, 0],
                                                       KV[1, 1], KV[0, 2], KV[1, 2]), stamp)
    return path


def _eval(bag: Path, checkpoint: Path, tmp_path: Path, *extra: str):
    report = tmp_path / 'report.json'
    code = eval_cli.main([str(bag), '--checkpoint', str(checkpoint), '--rgb-topic', RGB_TOPIC,
                          '--aux-topic', AUX_TOPIC, '--camera-info-topic', RGB_INFO,
                          '--aux-camera-info-topic', AUX_INFO, '--aux-registration', 'depth',
                          '--report', str(report), '--device', 'cpu', '--backend', 'torch',
                          '--no-progress', *extra])
    return code, json.loads(report.read_text())


def test_depth_registration_takes_the_extrinsic_from_the_bags_tf_static(frames, checkpoint,
                                                                        tmp_path):
    from smmcl_core.segmenter import Segmenter

    bag = write_rig_bag(tmp_path / 'rig', frames, static_tree())
    code, report = _eval(bag, checkpoint, tmp_path, '--output-bag', str(tmp_path / 'out'))
    assert code == 0, report
    assert report['frames']['evaluated'] == 2 and not report['warnings'], report
    with BagReader(tmp_path / 'out') as reader:
        masks = [image_to_array(reader.deserialize(m)) for m in reader.messages()
                 if m.topic == topics.BAG_MASK]
    given = Segmenter.from_checkpoint(checkpoint, device='cpu', aux_registration='depth',
                                      aux_K=KV, rgb_K=NYU_K, aux_to_rgb=AUX_TO_RGB)
    plain = Segmenter.from_checkpoint(checkpoint, device='cpu')
    agreement = []
    for (rgb, depth, virtual), mask in zip(frames, masks):
        # The composed /tf_static chain is the extrinsic given directly ...
        assert (mask == given.predict(rgb, virtual)).mean() >= 0.999
        # ... and the masks follow the registered pair (resized depth: -2.3, -6.9 points).
        registered = plain.predict(rgb, depth)
        agreement.append((mask == registered).mean())
        assert agreement[-1] > (plain.predict(rgb, virtual) == registered).mean() + 0.02
    assert agreement[0] >= 0.97, agreement  # frame 0 (hole-filled depth): 97.8%


def test_missing_tf_static_or_frames_are_named(frames, checkpoint, tmp_path, capsys):
    bag = write_rig_bag(tmp_path / 'no_tf', frames[:1], None)
    code, report = _eval(bag, checkpoint, tmp_path)
    assert code == 2 and 'the bag has no /tf_static topic' in report['error']
    assert '--aux-to-rgb' in capsys.readouterr().err
    bag = write_rig_bag(tmp_path / 'other_frame', frames[:1], static_tree(), 'thermal_optical')
    code, report = _eval(bag, checkpoint, tmp_path)
    assert code == 2
    assert ("no /tf_static transform from the aux frame 'thermal_optical' "
            f"({AUX_TOPIC}) to the RGB frame '{RGB_FRAME}'") in report['error']
    assert "'thermal_optical' not in /tf_static; known frames: camera_color_optical_frame" \
        in report['error']
    # Given explicitly, --aux-to-rgb wins and /tf_static is not needed.
    code, report = _eval(write_rig_bag(tmp_path / 'given', frames[:1], None), checkpoint,
                         tmp_path, '--aux-to-rgb', *[repr(float(v)) for v in AUX_TO_RGB])
    assert code == 0 and report['frames']['evaluated'] == 1
