"""HHA encoding: fidelity to the original MATLAB output, edge cases, torch path, live encoder.

The fidelity reference (``../shared/data/hha_reference``) is NYUv2 frame 0 with the HHA image
Gupta's MATLAB code wrote for it. That image was made with the filled depth also passed as
the "raw" depth (the Depth2HHA ``main.m`` does ``RD = D``), i.e. with no missing-data mask;
the raw-depth mask is tested separately.
"""

import cv2
import numpy as np
import pytest

from smmcl_core.data import hha
from smmcl_core.data.hha import (depth_to_metres, GravitySmoother, HHAEncoder,
                                 MISSING_DEPTH_HHA, missing_depth_hha)
from smmcl_core.data.io import read_aux

# Mean absolute difference to the MATLAB HHA per channel (disparity, height, angle) reached
# by this implementation; README.md states the same figures.
FIDELITY_MEAN_ABS = (0.0, 0.0001, 0.0005)


@pytest.fixture(scope='module')
def reference():
    from conftest import SHARED_DATA

    folder = SHARED_DATA / 'hha_reference'
    if not folder.is_dir():
        pytest.skip(f'HHA reference not found at {folder}')
    depth = cv2.imread(str(folder / 'depth.png'), cv2.IMREAD_UNCHANGED).astype(np.float32)
    raw = cv2.imread(str(folder / 'depth_raw.png'), cv2.IMREAD_UNCHANGED).astype(np.float32)
    matlab = read_aux(folder / 'hha_matlab.png', 'hha')  # the package's own HHA reader
    return depth / 10000.0, raw / 10000.0, matlab  # files are in 0.1 mm


def _mean_abs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).reshape(-1, 3).mean(0)


def test_matches_matlab_reference(reference):
    depth, _, matlab = reference
    ours = hha.depth_to_hha(depth, hha.NYU_DEPTH_V2_K)
    assert ours.dtype == np.uint8 and ours.shape == (480, 640, 3)
    per_channel = _mean_abs(ours, matlab)
    assert np.all(per_channel <= FIDELITY_MEAN_ABS), per_channel
    diff = np.abs(ours.astype(np.int16) - matlab.astype(np.int16))
    assert diff.max() <= 1 and np.mean(diff == 0) > 0.9999
    # Passing the filled depth as raw depth is what the reference run did: same result.
    np.testing.assert_array_equal(hha.depth_to_hha(depth, hha.NYU_DEPTH_V2_K, depth), ours)


def test_matches_the_nyudv2_hha_file_models_trained_on(shared_data):
    """The CMX/SMMCL NYUDv2 ``HHA/0.png`` (16-bit mm ``Depth/0.png`` as the robot sends)."""
    folder = shared_data / 'nyuv2_samples'
    depth = read_aux(folder / 'Depth' / '0.png', 'depth')  # uint16 mm
    released = read_aux(folder / 'HHA' / '0.png', 'hha')
    ours = HHAEncoder().encode(depth, hha.NYU_DEPTH_V2_K)
    per_channel = _mean_abs(ours, released)
    # The released file itself differs from the MATLAB reference by (0.86, 0.56, 2.59).
    assert np.all(per_channel <= (0.86, 0.57, 2.61)), per_channel


def test_raw_depth_mask_changes_only_what_it_should(reference):
    depth, raw, matlab = reference
    ours, gravity = hha.encode_hha(depth, hha.NYU_DEPTH_V2_K, raw)
    _, gravity_filled = hha.encode_hha(depth, hha.NYU_DEPTH_V2_K)
    # Disparity and height come from the filled depth; the gravity barely moves.
    np.testing.assert_array_equal(ours[:, :, 0], matlab[:, :, 0])
    assert np.degrees(np.arccos(min(1.0, gravity @ gravity_filled))) < 0.5
    # Normals away from the holes (no missing pixel in their 7x7 window) are unchanged.
    missing = (raw == 0).astype(np.uint8)
    near_hole = cv2.dilate(missing, np.ones((7, 7), np.uint8)).astype(bool)
    far = np.abs(ours[:, :, 2].astype(int) - matlab[:, :, 2].astype(int))[~near_hole]
    assert far.mean() < 0.3
    # Deep inside a hole no plane can be fitted: the "no normal" angle, as MATLAB.
    deep = cv2.erode(missing, np.ones((7, 7), np.uint8)).astype(bool)
    assert deep.sum() > 1000
    assert np.all(ours[:, :, 2][deep] == MISSING_DEPTH_HHA[2])


def test_channel_order_roundtrips_through_the_reader(tmp_path, reference):
    depth, _, _ = reference
    ours = hha.depth_to_hha(depth[:48, :64], hha.NYU_DEPTH_V2_K)
    hha.write_hha(tmp_path / 'x.png', ours)
    np.testing.assert_array_equal(read_aux(tmp_path / 'x.png', 'hha'), ours)
    # File channel R is the disparity (31000 / depth in cm), as the MATLAB files.
    bgr = cv2.imread(str(tmp_path / 'x.png'), cv2.IMREAD_UNCHANGED)
    expected = np.clip(np.floor(31000.0 / np.maximum(depth[:48, :64] * 100, 100) + 0.5), 0, 255)
    np.testing.assert_array_equal(bgr[:, :, 2], expected.astype(np.uint8))


def test_nan_and_zero_are_missing_alike(reference):
    depth, _, _ = reference
    holes = np.zeros(depth.shape, bool)
    holes[100:160, 200:320] = True
    holes[::7, ::5] = True
    with_zero = np.where(holes, 0.0, depth).astype(np.float32)
    with_nan = np.where(holes, np.nan, depth).astype(np.float32)
    with_inf = np.where(holes, np.inf, depth).astype(np.float32)
    with_neg = np.where(holes, -1.0, depth).astype(np.float32)
    expected = hha.depth_to_hha(with_zero, hha.NYU_DEPTH_V2_K)
    for variant in (with_nan, with_inf, with_neg):
        np.testing.assert_array_equal(hha.depth_to_hha(variant, hha.NYU_DEPTH_V2_K), expected)
    assert np.all(expected[holes][:, 0] == 255)  # MATLAB's max(z, 100) clamp
    # uint16 millimetres with 0 holes encode like float metres with NaN holes.
    mm = np.where(holes, 0, np.rint(depth * 1000)).astype(np.uint16)
    np.testing.assert_array_equal(HHAEncoder().encode(mm, hha.NYU_DEPTH_V2_K),
                                  hha.depth_to_hha(mm.astype(np.float32) / 1000,
                                                   hha.NYU_DEPTH_V2_K))


@pytest.mark.parametrize('fill', [0.0, np.nan])
def test_all_missing(fill):
    depth = np.full((48, 64), fill, np.float32)
    out = hha.depth_to_hha(depth, hha.nyu_intrinsics(48, 64))
    np.testing.assert_array_equal(out, missing_depth_hha(48, 64))
    assert tuple(out[0, 0]) == MISSING_DEPTH_HHA


@pytest.mark.parametrize('shape', [(1, 1), (1, 7), (7, 1), (2, 2), (3, 5), (11, 13)])
def test_tiny_images(shape):
    K = hha.camera_matrix(20.0, 20.0, (shape[1] - 1) / 2, (shape[0] - 1) / 2)
    wall = np.full(shape, 2.0, np.float32)  # a wall 2 m away, facing the camera
    out = hha.depth_to_hha(wall, K)
    assert out.shape == shape + (3,) and out.dtype == np.uint8
    assert np.all(out[:, :, 0] == 155)  # 31000 / 200 cm
    if min(shape) >= 2:  # enough pixels for a plane: normal along z, 90 deg to gravity
        assert np.all(np.abs(out[:, :, 2].astype(int) - 128) <= 1)
    else:  # a single row or column spans no plane
        assert np.all(out[:, :, 2] == 218)


def _render_room(pitch_deg: float, roll_deg: float, K: np.ndarray, shape=(240, 320)):
    """Ray-cast depth (m) of a floor 1.3 m below the camera and walls, plus the true gravity."""
    pitch, roll = np.deg2rad(pitch_deg), np.deg2rad(roll_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)],
                   [0, np.sin(pitch), np.cos(pitch)]])
    rz = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0],
                   [0, 0, 1]])
    cam_to_world = rz @ rx  # world: y down (gravity), z forward
    v, u = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    world = rays @ cam_to_world.T  # (H,W,3) direction per unit camera depth
    t = np.full(shape, np.inf)
    surface = np.full(shape, -1)
    for index, (axis, distance) in enumerate(((1, 1.3), (2, 4.0), (0, -2.0), (0, 2.5))):
        with np.errstate(divide='ignore', invalid='ignore'):
            hit = distance / world[:, :, axis]
        closer = (hit > 0) & (hit < t)
        t = np.where(closer, hit, t)
        surface[closer] = index
    gravity = cam_to_world.T @ np.array([0.0, 1.0, 0.0])
    return t.astype(np.float32), gravity, surface  # surface 0 = floor


@pytest.mark.parametrize('pitch,roll', [(0.0, 0.0), (-25.0, 0.0), (-15.0, 8.0)])
def test_gravity_and_height_of_a_rendered_room(pitch, roll):
    K = hha.camera_matrix(260.0, 260.0, 159.5, 119.5)
    depth, true_gravity, surface = _render_room(pitch, roll, K)
    out, gravity = hha.encode_hha(depth, K)
    error = np.degrees(np.arccos(np.clip(gravity @ true_gravity, -1, 1)))
    assert error < 0.5, (gravity, true_gravity)
    # Away from the corners: the floor is the lowest surface (height 0) and its normal is
    # along gravity (0 + 38 degrees); walls stand at 90 + 38 degrees.
    inner = cv2.erode((surface == 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert inner.sum() > 1000
    assert np.all(out[:, :, 1][inner] <= 1)
    assert np.all(np.abs(out[:, :, 2][inner].astype(int) - 38) <= 1)
    for wall in (1, 2, 3):
        inner = cv2.erode((surface == wall).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        assert np.all(np.abs(out[:, :, 2][inner].astype(int) - 128) <= 1)
    # 4 m straight ahead at the optical centre (when level): 31000 / 400 = 77.5 -> 78.
    if pitch == 0 and roll == 0:
        assert out[120, 160, 0] == 78


def test_other_resolutions_need_scaled_intrinsics(reference):
    """Half-resolution NYU depth with scaled intrinsics: the same geometry.

    Disparity and height are per-pixel geometry and must agree with the full-resolution
    encoding; the angle channel legitimately differs near edges (a 7x7 window covers four
    times the scene) but the gravity it is measured against must not move.
    """
    depth, _, _ = reference
    full, gravity_full = hha.encode_hha(depth, hha.NYU_DEPTH_V2_K)
    small_depth = cv2.resize(depth, (320, 240), interpolation=cv2.INTER_NEAREST)
    small_full = cv2.resize(full, (320, 240), interpolation=cv2.INTER_NEAREST)
    scaled, gravity_scaled = hha.encode_hha(small_depth, hha.nyu_intrinsics(240, 320))
    unscaled, gravity_unscaled = hha.encode_hha(small_depth, hha.NYU_DEPTH_V2_K)
    good, bad = _mean_abs(scaled, small_full), _mean_abs(unscaled, small_full)
    assert good[0] == 0 and good[1] <= 1.0, good
    assert np.degrees(np.arccos(min(1.0, gravity_full @ gravity_scaled))) < 1.0
    # The 640x480 intrinsics on a 320x240 image put the principal point in a corner.
    assert bad[1] > 20 * good[1] and bad[2] > good[2], (good, bad)
    assert np.degrees(np.arccos(min(1.0, gravity_full @ gravity_unscaled))) > 1.5
    np.testing.assert_allclose(hha.nyu_intrinsics(480, 640), hha.NYU_DEPTH_V2_K)
    back = hha.scale_intrinsics(hha.nyu_intrinsics(240, 320), (240, 320), (480, 640))
    np.testing.assert_allclose(back, hha.NYU_DEPTH_V2_K)


def test_bad_inputs_name_the_problem():
    depth = np.ones((8, 8), np.float32)
    with pytest.raises(ValueError, match='3x3'):
        hha.depth_to_hha(depth, np.eye(2))
    with pytest.raises(ValueError, match='focal'):
        hha.depth_to_hha(depth, np.zeros((3, 3)))
    with pytest.raises(ValueError, match='NaN'):
        hha.depth_to_hha(depth, [[np.nan, 0, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match='raw_depth size'):
        hha.depth_to_hha(depth, np.eye(3), np.ones((4, 4), np.float32))
    with pytest.raises(ValueError, match='depth must be a non-empty'):
        hha.depth_to_hha(np.ones((0, 4), np.float32), np.eye(3))
    with pytest.raises(ValueError, match='uint16 millimetres or float metres'):
        depth_to_metres(np.ones((4, 4), np.uint8))
    np.testing.assert_array_equal(hha.check_intrinsics(list(range(1, 10))),
                                  np.arange(1, 10).reshape(3, 3))


def test_torch_path_matches_numpy(reference):
    torch = pytest.importorskip('torch')
    from smmcl_core.data.hha.torch_encode import encode_hha_torch

    depth, raw, _ = reference
    for raw_depth in (None, raw):
        expected, gravity = hha.encode_hha(depth, hha.NYU_DEPTH_V2_K, raw_depth)
        out = hha.depth_to_hha(torch.from_numpy(depth), hha.NYU_DEPTH_V2_K,
                               None if raw_depth is None else torch.from_numpy(raw_depth))
        assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8
        diff = np.abs(out.numpy().astype(int) - expected.astype(int))
        assert diff.max() <= 1 and np.mean(diff > 0) < 5e-4
        _, gravity_t = encode_hha_torch(depth, hha.NYU_DEPTH_V2_K, raw_depth)
        assert np.degrees(np.arccos(min(1.0, gravity @ gravity_t))) < 0.01
    for fill in (0.0, float('nan')):
        out = hha.depth_to_hha(torch.full((9, 12), fill), hha.nyu_intrinsics(9, 12))
        np.testing.assert_array_equal(out.numpy(), missing_depth_hha(9, 12))
    tiny = torch.full((1, 1), 2.0)
    np.testing.assert_array_equal(hha.depth_to_hha(tiny, np.eye(3)).numpy(),
                                  hha.depth_to_hha(tiny.numpy(), np.eye(3)))


def test_gravity_smoothing():
    smoother = GravitySmoother(0.5)
    a = np.array([0.0, 1.0, 0.0])
    b = np.array([0.0, np.cos(0.2), np.sin(0.2)])
    np.testing.assert_allclose(smoother.update(a), a)
    mid = smoother.update(b)
    np.testing.assert_allclose(mid, (a + b) / np.linalg.norm(a + b))
    assert GravitySmoother(0.0).update(b) @ b == pytest.approx(1.0)
    with pytest.raises(ValueError, match='gravity smoothing'):
        GravitySmoother(1.0)

    K = hha.camera_matrix(260.0, 260.0, 159.5, 119.5)
    level, _, _ = _render_room(-20.0, 0.0, K)
    tilted, tilted_gravity, _ = _render_room(-20.0, 6.0, K)
    encoder = HHAEncoder(gravity_smoothing=0.9)
    first = encoder.encode(level, K)
    level_gravity = encoder.gravity.copy()
    encoder.encode(tilted, K)  # one odd frame moves the smoothed estimate only a little
    moved = np.degrees(np.arccos(min(1.0, encoder.gravity @ level_gravity)))
    assert 0.1 < moved < 1.0
    np.testing.assert_array_equal(HHAEncoder().encode(level, K), first)
    # New intrinsics (another camera mode) forget the history.
    other_K = K.copy()
    other_K[0, 0] += 1.0
    encoder.encode(tilted, other_K)
    fresh = HHAEncoder()
    fresh.encode(tilted, other_K)
    np.testing.assert_allclose(encoder.gravity, fresh.gravity)
    assert np.degrees(np.arccos(min(1.0, fresh.gravity @ tilted_gravity))) < 0.5
