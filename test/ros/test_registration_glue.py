"""smmcl_ros.pipeline.registration: parameters -> registration of real MSRS / NYUv2 frames."""

from types import SimpleNamespace

import cv2
from geometry_msgs.msg import TransformStamped
import numpy as np
import pytest

from smmcl_core.data.registration import RegistrationError
from smmcl_ros.pipeline.registration import AuxRefused, AuxRegistration, scale_K
from smmcl_ros.pipeline.tf_static import StaticTransforms

K = np.array([[518.86, 0.0, 324.58], [0.0, 519.47, 252.74], [0.0, 0.0, 1.0]])


class _Intrinsics:
    def __init__(self, K):
        self.K = K

    def at(self, stamp_ns, height, width):
        return self.K


def _frame(rgb, aux, rgb_frame='color_optical', aux_frame='depth_optical'):
    return SimpleNamespace(rgb=rgb, aux=aux, stamp_ns=1, header=SimpleNamespace(
        frame_id=rgb_frame), aux_header=SimpleNamespace(frame_id=aux_frame), aux_stamp_ns=1)


def test_parameters_are_checked_and_named():
    with pytest.raises(ValueError, match="unknown aux_registration 'affine'; valid: auto"):
        AuxRegistration('affine')
    with pytest.raises(ValueError, match='aux_homography is empty; estimate it with '
                                         'smmcl-calibrate-aux'):
        AuxRegistration('homography', 'thermal')
    with pytest.raises(ValueError, match='aux_to_rgb must be'):
        AuxRegistration('depth', 'depth', aux_to_rgb=[0.0, 0.1])
    with pytest.raises(ValueError, match="'depth' needs a depth checkpoint"):
        AuxRegistration('depth', 'thermal')
    assert AuxRefused is RegistrationError
    assert AuxRegistration('depth', 'hha').needs_tf_static
    assert not AuxRegistration('depth', 'depth', aux_to_rgb=[0, 0, 0, 0, 0, 0, 1]).needs_tf_static


def test_auto_refuses_other_aspect_and_resizes_same_aspect(frame):
    rgb, depth = frame
    auto = AuxRegistration('auto', 'depth')
    with pytest.raises(AuxRefused, match='aux_registration') as err:
        auto(depth[:256, :320], K, _frame(rgb, depth))
    assert err.value.reason == 'aspect_mismatch'
    image, K2 = auto(depth[::2, ::2], scale_K(K, (480, 640), (240, 320)), _frame(rgb, depth))
    assert image.shape == (480, 640)
    np.testing.assert_allclose(K2, K, atol=1e-9)  # the resized depth has the RGB K again
    same, K3 = auto(depth, K, _frame(rgb, depth))
    assert same is depth and K3 is K


def test_depth_mode_takes_extrinsic_from_tf_static(frame):
    """A 3 cm baseline published on /tf_static: registration with and without aux_to_rgb agree."""
    rgb, depth = frame
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = 'color_optical', 'depth_optical'
    msg.transform.translation.x = -0.03
    msg.transform.rotation.w = 1.0
    tf = StaticTransforms()
    tf.add([msg])
    from_tf = AuxRegistration('depth', 'depth', tf=tf, rgb_intrinsics=_Intrinsics(K))
    given = AuxRegistration('depth', 'depth', aux_to_rgb=[-0.03, 0, 0, 0, 0, 0, 1],
                            rgb_intrinsics=_Intrinsics(K))
    a, Ka = from_tf(depth, K, _frame(rgb, depth))
    b, _ = given(depth, K, _frame(rgb, depth))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(Ka, K)
    assert not np.array_equal(a, depth)  # moved 3 cm: the depth image changed
    with pytest.raises(AuxRefused, match="'thermal_optical' not in /tf_static") as err:
        from_tf(depth, K, _frame(rgb, depth, aux_frame='thermal_optical'))
    assert err.value.reason == 'no_extrinsics'
    with pytest.raises(AuxRefused, match='no rgb/camera_info source'):
        AuxRegistration('depth', 'depth', tf=tf)(depth, K, _frame(rgb, depth))


def test_homography_hook_on_msrs(shared_data):
    thermal = cv2.imread(str(shared_data / 'msrs_night/thermal/00004N.png'), -1)
    rgb = cv2.imread(str(shared_data / 'msrs_night/visible/00004N.png'))[:, :, ::-1]
    to_aux = np.array([[0.5, 0.0, -4.0], [0.0, 0.5, 8.0], [0.0, 0.0, 1.0]])
    aux = cv2.warpPerspective(thermal, to_aux, (320, 256))
    hook = AuxRegistration('homography', 'thermal',
                           homography=np.linalg.inv(to_aux).ravel().tolist())
    image, K_out = hook(aux, None, _frame(rgb, aux))
    assert image.shape == (480, 640) and K_out is None
    inner = (slice(30, 450), slice(30, 610))
    assert np.abs(image[inner].astype(float) - thermal[inner]).mean() < 6.0


def _camera_info(K, height, width):
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo()
    msg.height, msg.width = height, width
    msg.k = [float(v) for v in np.asarray(K).ravel()]
    return msg


@pytest.mark.slow
def test_depth_registration_in_the_aux_step(frame, segmenter):
    """The pipeline's aux step registers a depth camera with camera_info of both cameras.

    A virtual 800x600 depth camera's image is registered back to the NYUv2 colour camera, and
    the masks follow (random depth model: 97.8% agree; the merely resized depth gives 95.4%).
    """
    from scipy.spatial.transform import Rotation

    from smmcl_ros.pipeline.aux import AuxPreparer
    from smmcl_ros.pipeline.frame import Frame
    from smmcl_ros.pipeline.intrinsics import IntrinsicsCache
    from virtual_cameras import NYU_K, virtual_depth  # the ray-cast virtual camera

    rgb, depth = frame
    Kv = np.array([[580.0, 0.0, 399.5], [0.0, 580.0, 299.5], [0.0, 0.0, 1.0]])
    rotation = Rotation.from_euler('xyz', [0.8, -1.2, 0.5], degrees=True)
    translation = [0.025, -0.004, 0.003]
    virtual = virtual_depth(depth, NYU_K, Kv, (600, 800), rotation, translation)
    aux_info, rgb_info = IntrinsicsCache(), IntrinsicsCache()
    aux_info.update(_camera_info(Kv, 600, 800))
    rgb_info.update(_camera_info(NYU_K, 480, 640))
    registration = AuxRegistration('depth', 'depth', aux_to_rgb=translation + list(
        rotation.as_quat()), rgb_intrinsics=rgb_info)
    problems = []
    step = AuxPreparer('depth', lambda *a: problems.append(a), aux_info, None, registration)
    prepared = step.prepare(Frame(rgb, virtual, 1, None, 0.0, None, 1))
    assert problems == [] and prepared.image.shape == (480, 640)
    np.testing.assert_array_equal(prepared.K, NYU_K)  # the registered depth is in the RGB camera
    valid = depth > 0
    assert (np.abs(prepared.image.astype(np.int64) - depth)[valid] <= 10).mean() >= 0.95
    same = segmenter.predict(rgb, prepared.image) == segmenter.predict(rgb, depth)
    assert same.mean() >= 0.97, same.mean()
    # Without aux/camera_info yet the frame is skipped and reported, not guessed.
    problems.clear()
    empty = AuxPreparer('depth', lambda *a: problems.append(a), IntrinsicsCache(), None,
                        registration)
    assert empty.prepare(Frame(rgb, virtual, 1, None, 0.0, None, 1)) is None
    assert problems[0][1] == 'no_camera_info'
