"""smmcl_ros.pipeline.tf_static with real geometry_msgs/TransformStamped messages."""

from types import SimpleNamespace

from geometry_msgs.msg import TransformStamped
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from smmcl_ros.pipeline.tf_static import (matrix_to_pose, StaticTransforms,
                                          TransformLookupError)


def _stamped(parent: str, child: str, xyz, rotation: Rotation) -> TransformStamped:
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent, child
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = xyz
    q = rotation.as_quat()  # x, y, z, w
    r = msg.transform.rotation
    r.x, r.y, r.z, r.w = (float(v) for v in q)
    return msg


def _matrix(xyz, rotation: Rotation) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rotation.as_matrix(), xyz
    return m


# A RealSense-like tree: base_link -> camera_link -> {depth, color} frames -> optical frames.
OPTICAL = Rotation.from_euler('zyx', [-90, 0, -90], degrees=True)
LINKS = [
    ('base_link', 'camera_link', (0.20, 0.0, 0.45), Rotation.from_euler('y', 5, degrees=True)),
    ('camera_link', 'camera_depth_frame', (0.0, 0.0, 0.0), Rotation.identity()),
    ('camera_depth_frame', 'camera_depth_optical_frame', (0.0, 0.0, 0.0), OPTICAL),
    ('camera_link', 'camera_color_frame', (0.0, 0.015, 0.0002),
     Rotation.from_quat([0.001, -0.002, 0.0015, 1.0])),
    ('camera_color_frame', 'camera_color_optical_frame', (0.0, 0.0, 0.0), OPTICAL),
]


@pytest.fixture
def tree() -> StaticTransforms:
    tf = StaticTransforms()
    # Two /tf_static messages, as two drivers (robot description, camera) publish them.
    assert tf.add_message(SimpleNamespace(transforms=[_stamped(*LINKS[0])])) == 1
    assert tf.add_message(SimpleNamespace(transforms=[_stamped(*x) for x in LINKS[1:]])) == 4
    return tf


def test_chain_through_common_ancestor(tree):
    depth_in_link = _matrix(*LINKS[1][2:]) @ _matrix(*LINKS[2][2:])
    color_in_link = _matrix(*LINKS[3][2:]) @ _matrix(*LINKS[4][2:])
    expected = np.linalg.inv(color_in_link) @ depth_in_link
    found = tree.lookup('camera_color_optical_frame', 'camera_depth_optical_frame')
    np.testing.assert_allclose(found, expected, atol=1e-12)
    # The optical frames differ by the small colour offset only (z forward in both).
    np.testing.assert_allclose(np.linalg.norm(found[:3, 3]), np.hypot(0.015, 0.0002), atol=1e-9)
    np.testing.assert_allclose(tree.lookup('camera_depth_optical_frame',
                                           '/camera_color_optical_frame'),
                               np.linalg.inv(expected), atol=1e-12)  # leading '/' ignored
    assert tree.path('camera_color_optical_frame', 'camera_depth_optical_frame') == [
        'camera_depth_optical_frame', 'camera_depth_frame', 'camera_link', 'camera_color_frame',
        'camera_color_optical_frame']
    base = tree.lookup('base_link', 'camera_depth_optical_frame')
    np.testing.assert_allclose(base, _matrix(*LINKS[0][2:]) @ depth_in_link, atol=1e-12)


def test_pose_round_trip(tree):
    m = tree.lookup('camera_color_optical_frame', 'camera_depth_optical_frame')
    pose = matrix_to_pose(m)
    assert len(pose) == 7 and pose[6] >= 0
    np.testing.assert_allclose(Rotation.from_quat(pose[3:]).as_matrix(), m[:3, :3], atol=1e-12)
    for angles in ([179, 0, 0], [0, 179.5, 0], [0, 0, -179], [120, -60, 30]):
        r = Rotation.from_euler('xyz', angles, degrees=True)
        back = matrix_to_pose(_matrix((1, 2, 3), r))
        np.testing.assert_allclose(Rotation.from_quat(back[3:]).as_matrix(), r.as_matrix(),
                                   atol=1e-12)


def test_errors_name_frames(tree):
    with pytest.raises(TransformLookupError, match=r"'thermal_optical' not in /tf_static; "
                                                   r'known frames: base_link, camera_color'):
        tree.lookup('camera_color_optical_frame', 'thermal_optical')
    tree.add([_stamped('flir_link', 'flir_optical', (0, 0, 0), OPTICAL)])
    with pytest.raises(TransformLookupError, match='different /tf_static trees'):
        tree.lookup('camera_color_optical_frame', 'flir_optical')
    with pytest.raises(TransformLookupError, match='no /tf_static message yet'):
        StaticTransforms().lookup('a', 'b')
    with pytest.raises(ValueError, match="'a' -> 'a'"):
        StaticTransforms().add([_stamped('a', 'a', (0, 0, 0), OPTICAL)])


def test_later_transform_replaces(tree):
    tree.add([_stamped('camera_link', 'camera_color_frame', (0.0, 0.05, 0.0),
                       Rotation.identity())])
    found = tree.lookup('camera_color_optical_frame', 'camera_depth_optical_frame')
    np.testing.assert_allclose(np.linalg.norm(found[:3, 3]), 0.05, atol=1e-12)
    assert len(tree) == 5
