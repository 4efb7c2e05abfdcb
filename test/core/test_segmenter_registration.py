"""Segmenter(aux_registration=...) on real frames: MSRS night thermal, NYUv2 depth."""

from conftest import SHARED_DATA
import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from virtual_cameras import NYU_K, rgb_to_aux, virtual_depth

from smmcl_core.data.registration import coverage, RegistrationError, warp_homography
from smmcl_core.segmenter import Segmenter

NAME = '00004N'


@pytest.fixture(scope='module')
def pair():
    """Real registered MSRS night frames, 640x480: RGB uint8 (H,W,3), thermal uint8."""
    folder = SHARED_DATA / 'msrs_night'
    if not folder.is_dir():
        pytest.skip(f'real sample data not found at {folder}')
    rgb = np.ascontiguousarray(cv2.imread(str(folder / 'visible' / f'{NAME}.png'))[:, :, ::-1])
    return rgb, cv2.imread(str(folder / 'thermal' / f'{NAME}.png'), cv2.IMREAD_UNCHANGED)


@pytest.fixture(scope='module')
def demo_path():
    """The bundled demo checkpoint (RGB-thermal)."""
    import torch

    from smmcl_ros.demo.bundled import DEMO_CHECKPOINT

    torch.set_num_threads(1)
    return DEMO_CHECKPOINT


def test_homography_option_registers_unregistered_thermal(pair, demo_path):
    """A 320x256 thermal camera (0.5x, 1.5 degrees, offset) registered by the Segmenter."""
    rgb, thermal = pair
    to_aux = rgb_to_aux(0.5, 1.5, -6.0, 9.0)
    aux = cv2.warpPerspective(thermal, to_aux, (320, 256), flags=cv2.INTER_LINEAR)
    H = np.linalg.inv(to_aux)  # aux pixel -> RGB pixel
    plain = Segmenter.from_checkpoint(demo_path, device='cpu', backend='torch')
    warped = Segmenter.from_checkpoint(demo_path, device='cpu', backend='torch',
                                       aux_registration='homography',
                                       aux_homography=H.ravel().tolist())
    labels, confidence = warped.predict(rgb, aux, return_confidence=True)
    assert labels.shape == confidence.shape == (480, 640)
    # Exactly what the registered-by-hand aux gives: the option is one call before preprocess.
    np.testing.assert_array_equal(labels, plain.predict(rgb, warp_homography(
        aux, H, (480, 640), 'thermal')))
    registered = plain.predict(rgb, thermal)
    seen = coverage(aux.shape, H, (480, 640))
    agree = labels == registered
    either = seen & ((labels != 0) | (registered != 0))
    assert agree[seen].mean() >= 0.99, agree[seen].mean()
    assert agree[either].mean() >= 0.90, agree[either].mean()
    # The default refuses the pair instead of stretching it, naming the option.
    with pytest.raises(RegistrationError, match='aux 320x256, rgb 640x480.*aux_registration'):
        plain.predict(rgb, aux)


def test_auto_resizes_same_aspect_and_none_refuses(pair, demo_path):
    rgb, thermal = pair
    half = cv2.resize(thermal, (320, 240), interpolation=cv2.INTER_AREA)
    plain = Segmenter.from_checkpoint(demo_path, device='cpu', backend='torch')
    up = cv2.resize(half, (640, 480), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(plain.predict(rgb, half), plain.predict(rgb, up))
    strict = Segmenter.from_checkpoint(demo_path, device='cpu', backend='torch',
                                       aux_registration='none')
    with pytest.raises(RegistrationError, match='aux_registration is none') as err:
        strict.predict(rgb, half)
    assert err.value.reason == 'unregistered_size'


def test_options_are_checked_and_named(demo_path):
    with pytest.raises(ValueError, match="unknown aux_registration 'warp'"):
        Segmenter.from_checkpoint(demo_path, device='cpu', aux_registration='warp')
    with pytest.raises(ValueError, match='aux_homography is empty'):
        Segmenter.from_checkpoint(demo_path, device='cpu', aux_registration='homography')
    with pytest.raises(ValueError, match='aux_homography must be 9 numbers'):
        Segmenter.from_checkpoint(demo_path, device='cpu', aux_registration='homography',
                                  aux_homography=[1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="'depth' needs raw depth images; the aux modality is "
                                         "'thermal'"):
        Segmenter.from_checkpoint(demo_path, device='cpu', aux_registration='depth')


def test_depth_option_registers_a_virtual_depth_camera(frame, checkpoint):
    """NYUv2 depth seen by a virtual 800x600 depth camera 2.5 cm aside, registered back."""
    rgb, depth = frame
    Kv = np.array([[580.0, 0.0, 399.5], [0.0, 580.0, 299.5], [0.0, 0.0, 1.0]])
    rotation = Rotation.from_euler('xyz', [0.8, -1.2, 0.5], degrees=True)
    translation = [0.025, -0.004, 0.003]
    virtual = virtual_depth(depth, NYU_K, Kv, (600, 800), rotation, translation)
    with pytest.raises(ValueError, match="'depth' needs aux_K, aux_to_rgb"):
        Segmenter.from_checkpoint(checkpoint, device='cpu', aux_registration='depth',
                                  rgb_K=NYU_K)
    with pytest.raises(ValueError, match='aux_K is not a camera matrix'):
        Segmenter.from_checkpoint(checkpoint, device='cpu', aux_registration='depth',
                                  aux_K=np.zeros((3, 3)), rgb_K=NYU_K,
                                  aux_to_rgb=np.eye(4))
    plain = Segmenter.from_checkpoint(checkpoint, device='cpu')
    for pose in (translation + list(rotation.as_quat()),  # [x, y, z, qx, qy, qz, qw]
                 np.block([[rotation.as_matrix(), np.c_[translation]], [np.eye(4)[3]]])):
        seg = Segmenter.from_checkpoint(checkpoint, device='cpu', aux_registration='depth',
                                        aux_K=Kv, rgb_K=NYU_K, aux_to_rgb=pose)
        same = seg.predict(rgb, virtual) == plain.predict(rgb, depth)
        assert same.mean() >= 0.97, same.mean()
    # The virtual depth merely resized (same 4:3 aspect, so auto resizes it) agrees less.
    resized = plain.predict(rgb, virtual) == plain.predict(rgb, depth)
    assert resized.mean() < same.mean()
