"""smmcl_core.data.registration on real frames: MSRS night thermal, NYUv2 depth."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from virtual_cameras import NYU_K, rgb_to_aux, virtual_depth

from smmcl_core.data import registration as reg


@pytest.fixture(scope='module')
def thermal() -> np.ndarray:
    path = Path(__file__).resolve().parents[2].parent / 'shared/data/msrs_night/thermal/00004N.png'
    if not path.is_file():
        pytest.skip(f'real sample data not found at {path}')
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # uint8 (480,640), registered to RGB


def test_mode_table_errors_list_valid_names():
    with pytest.raises(ValueError, match=r"aux_registration 'warp'.*auto, none, resize, "
                                         r'homography, depth'):
        reg.check_mode('warp')
    with pytest.raises(ValueError, match='aux_homography must be 9 numbers'):
        reg.check_homography([1, 0, 0, 0, 1, 0])
    with pytest.raises(ValueError, match='aux_homography is singular'):
        reg.check_homography([1, 0, 0, 2, 0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match=r'aux_to_rgb must be \[x, y, z, qx, qy, qz, qw\]'):
        reg.pose_matrix([0.1, 0, 0])
    with pytest.raises(ValueError, match='zero quaternion'):
        reg.pose_matrix([0, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="modality 'hha' cannot be registered; valid: depth"):
        reg.resize_aux(np.zeros((2, 2), np.uint8), (4, 4), 'hha')
    assert reg.check_homography([]) is None and reg.pose_matrix(()) is None
    values = [2.0, 0.1, 3.0, -0.1, 2.0, 4.0, 0.0, 0.0, 2.0]
    np.testing.assert_allclose(reg.check_homography(values),
                               np.reshape(values, (3, 3)) / 2.0)  # row-major, H[2,2] = 1


def test_auto_rule(thermal):
    assert reg.register(thermal, (480, 640), 'thermal', 'auto') is thermal
    assert reg.resolve_auto((240, 320), (480, 640)) == 'resize'
    assert reg.resolve_auto((239, 320), (480, 640)) == 'resize'  # 0.4 % aspect difference
    with pytest.raises(reg.RegistrationError, match='aux 320x256, rgb 640x480.*aux_registration'
                       ) as err:
        reg.register(thermal[:256, :320], (480, 640), 'thermal', 'auto')
    assert err.value.reason == 'aspect_mismatch'
    with pytest.raises(reg.RegistrationError, match='aux_registration is none') as err:
        reg.register(thermal[:240, :320], (480, 640), 'thermal', 'none')
    assert err.value.reason == 'unregistered_size'
    with pytest.raises(reg.RegistrationError, match='aux_homography is empty') as err:
        reg.register(thermal, (480, 640), 'thermal', 'homography')
    assert err.value.reason == 'no_homography'


def test_resize_nearest_for_depth_area_for_thermal(thermal, frame):
    _, depth = frame
    half = depth[::2, ::2]
    up = reg.register(half, (480, 640), 'depth', 'auto')
    assert up.dtype == np.uint16 and up.shape == (480, 640)
    assert set(np.unique(up)) <= set(np.unique(half))  # nearest: no invented depths
    np.testing.assert_array_equal(up[::2, ::2], half)
    small = reg.resize_aux(thermal, (240, 320), 'thermal')
    block = thermal.reshape(240, 2, 320, 2).mean(axis=(1, 3))  # area = block mean
    assert np.abs(small.astype(float) - block).max() <= 1.0


def test_homography_maps_aux_pixel_to_rgb_pixel():
    aux = np.zeros((256, 320), np.uint16)
    aux[100, 50] = 4000  # one depth reading
    H = np.linalg.inv(rgb_to_aux(0.5, 1.5, -6.0, 9.0))  # aux -> RGB
    out = reg.register(aux, (480, 640), 'depth', 'homography', homography=H)
    x, y, w = H @ [50, 100, 1]
    v, u = np.nonzero(out)
    assert out.max() == 4000 and set(np.unique(out)) <= {0, 4000}  # nearest, no blending
    assert abs(u.mean() - x / w) <= 1.0 and abs(v.mean() - y / w) <= 1.0


def test_homography_recovers_registered_msrs_thermal(thermal):
    """A registered MSRS thermal re-imaged by a 320x256 camera is warped back onto the RGB."""
    optics = cv2.GaussianBlur(thermal, (0, 0), 1.0)  # the virtual lens, so 0.5x does not alias
    to_aux = rgb_to_aux(0.5, 1.5, -6.0, 9.0)
    aux = cv2.warpPerspective(optics, to_aux, (320, 256), flags=cv2.INTER_LINEAR)
    aux_to_rgb = np.linalg.inv(to_aux)
    back = reg.register(aux, (480, 640), 'thermal', 'homography', homography=aux_to_rgb)
    assert back.shape == (480, 640) and back.dtype == np.uint8
    covered = reg.coverage(aux.shape, aux_to_rgb, (480, 640))
    assert 0.9 < covered.mean() < 1.0  # rotated and offset: the RGB corners are not seen
    inner = cv2.erode(covered.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    diff = np.abs(back.astype(float) - optics.astype(float))[inner]
    assert diff.mean() < 1.0 and (diff <= 8).mean() > 0.99
    outer = cv2.dilate(covered.astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
    assert outer.any() and (back[outer] == 0).all()  # not seen: coldest
    # The stretch the node did before: the same pair merely resized is far off.
    stretched = cv2.resize(aux, (640, 480), interpolation=cv2.INTER_LINEAR)
    assert np.abs(stretched.astype(float) - optics.astype(float))[inner].mean() > 4 * diff.mean()


def test_depth_registration_recovers_nyu_depth(frame):
    """NYUv2 depth seen by a virtual depth camera and registered back: the original returns.

    The virtual camera: 800x600, 2.5 cm to the side, slightly rotated.
    """
    _, depth = frame
    Kv = np.array([[580.0, 0.0, 399.5], [0.0, 580.0, 299.5], [0.0, 0.0, 1.0]])
    rotation = Rotation.from_euler('xyz', [0.8, -1.2, 0.5], degrees=True)
    translation = [0.025, -0.004, 0.003]
    virtual = virtual_depth(depth, NYU_K, Kv, (600, 800), rotation, translation)
    assert (virtual > 0).mean() > 0.7
    pose = reg.pose_matrix(translation + list(rotation.as_quat()))  # scipy: x, y, z, w
    back = reg.register(virtual, (480, 640), 'depth', 'depth', aux_K=Kv, rgb_K=NYU_K,
                        aux_to_rgb=pose)
    assert back.dtype == np.uint16 and back.shape == (480, 640)
    valid = depth > 0
    error = np.abs(back.astype(np.int64) - depth.astype(np.int64))[valid]
    assert (error <= 10).mean() >= 0.95  # within 1 cm
    # The same depth taken as registered (the old assumption) is not.
    resized = cv2.resize(virtual, (640, 480), interpolation=cv2.INTER_NEAREST)
    assert (np.abs(resized.astype(np.int64) - depth)[valid] <= 10).mean() < 0.5
    # Float metres: the same registration, float out.
    back_m = reg.register_depth(virtual.astype(np.float32) / 1000, Kv, NYU_K, pose, (480, 640))
    assert back_m.dtype == np.float32
    close = np.abs(back_m * 1000 - back)[back > 0] <= 0.6  # mm rounding of the uint16 path
    assert close.mean() > 0.999  # (float ties at pixel borders may pick another point)


def test_depth_z_buffer_keeps_nearest(frame):
    """Halving the focal length lands each 2x2 block on one RGB pixel: the nearest one wins."""
    _, depth = frame
    K = np.array([[500.0, 0.0, 0.0], [0.0, 500.0, 0.0], [0.0, 0.0, 1.0]])
    half = np.array([[250.0, 0.0, -0.25], [0.0, 250.0, -0.25], [0.0, 0.0, 1.0]])
    out = reg.register_depth(depth, K, half, np.eye(4), (240, 320))
    blocks = np.where(depth > 0, depth, 65535).reshape(240, 2, 320, 2).min(axis=(1, 3))
    np.testing.assert_array_equal(out, np.where(blocks == 65535, 0, blocks))
    same = reg.register_depth(depth, NYU_K, NYU_K, np.eye(4), (480, 640))
    np.testing.assert_array_equal(same, depth)  # identity rig: unchanged


def test_depth_registration_refusals(frame):
    _, depth = frame
    with pytest.raises(reg.RegistrationError, match='aux/camera_info') as err:
        reg.register(depth, (480, 640), 'depth', 'depth', rgb_K=NYU_K, aux_to_rgb=np.eye(4))
    assert err.value.reason == 'no_intrinsics'
    with pytest.raises(reg.RegistrationError, match='aux_to_rgb or a /tf_static') as err:
        reg.register(depth, (480, 640), 'depth', 'depth', aux_K=NYU_K, rgb_K=NYU_K)
    assert err.value.reason == 'no_extrinsics'
    with pytest.raises(reg.RegistrationError, match='needs a depth camera'):
        reg.register(depth[..., None].repeat(3, 2), (480, 640), 'thermal', 'depth')
