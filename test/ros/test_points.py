"""Semantic point cloud, confidence encodings and PointCloud2 on a real NYUv2 frame.

Frame 433 of ``nyuv2_samples``: real Kinect depth (16UC1 millimetres, with ~105k holes), its
NYU-40 label image as the mask (id 0 = unlabeled, 1..40 the NYU-40 classes) and the NYU colour
camera intrinsics it is registered to. The reference back-projection is an independent float64
computation over the pixel grid written from the pinhole model, not from the module's tables.
"""

from pathlib import Path

import numpy as np
import pytest

from smmcl_core.data.classes import NYU40_CLASSES, voc_palette
from smmcl_core.data.hha import nyu_intrinsics
from smmcl_core.data.io import read_aux, read_label, read_rgb
from smmcl_ros.pipeline.confidence import check_confidence_encoding, encode_confidence
from smmcl_ros.pipeline.points import (CloudBuilder, FIELDS, pack_rgb, POINT_STEP,
                                       points_config, PointsConfig, semantic_cloud, unpack_rgb)

FRAME = '433'
CLASS_NAMES = ('unlabeled',) + tuple(NYU40_CLASSES)
MAX_ERROR_M = 1e-4
SHARED_DATA = Path(__file__).resolve().parents[3] / 'shared' / 'data'


@pytest.fixture(scope='module')
def nyu(shared_data_dir):
    """``(rgb, depth uint16 mm, mask uint8, K, palette)`` of the real frame."""
    folder = shared_data_dir / 'nyuv2_samples'
    depth = read_aux(folder / 'Depth' / f'{FRAME}.png', 'depth')
    assert depth.dtype == np.uint16 and (depth == 0).sum() > 10_000  # real holes
    mask = read_label(folder / 'Label' / f'{FRAME}.png')
    return (read_rgb(folder / 'RGB' / f'{FRAME}.png'), depth, mask,
            nyu_intrinsics(*depth.shape), voc_palette(len(CLASS_NAMES)))


@pytest.fixture(scope='module')
def shared_data_dir() -> Path:
    if not (SHARED_DATA / 'nyuv2_samples').is_dir():
        pytest.skip(f'real sample data not found at {SHARED_DATA}')
    return SHARED_DATA


@pytest.fixture(scope='module')
def confidence(nyu, segmenter):
    """The model's max softmax probability on this frame (what the node publishes)."""
    rgb, depth = nyu[0], nyu[1]
    return segmenter.predict(rgb, depth, return_confidence=True)[1]


def reference_xyz(depth_m: np.ndarray, K: np.ndarray, stride: int = 1) -> np.ndarray:
    """``(h, w, 3)`` float64 pinhole back-projection of the kept pixels, NaN without depth."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    v, u = np.mgrid[0:depth_m.shape[0]:stride, 0:depth_m.shape[1]:stride].astype(np.float64)
    z = depth_m[::stride, ::stride].astype(np.float64)
    z = np.where((z > 0) & np.isfinite(z), z, np.nan)
    return np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], -1)


def xyz_of(cloud) -> np.ndarray:
    points = cloud.points
    return np.stack([points[n] for n in ('x', 'y', 'z')], -1).astype(np.float64)


def test_cloud_is_the_pinhole_back_projection_nan_exactly_without_depth(nyu, confidence):
    _, depth, mask, K, palette = nyu
    cloud = semantic_cloud(depth, K, mask, confidence, palette)
    assert (cloud.height, cloud.width) == mask.shape
    got = xyz_of(cloud)
    want = reference_xyz(depth.astype(np.float64) / 1000.0, K)
    np.testing.assert_array_equal(np.isnan(got).any(-1), depth == 0)
    np.testing.assert_array_equal(np.isnan(got).all(-1), depth == 0)
    assert np.nanmax(np.abs(got - want)) < MAX_ERROR_M
    points = cloud.points
    np.testing.assert_array_equal(points['label'], mask)
    np.testing.assert_array_equal(unpack_rgb(points['rgb']), palette[mask])
    np.testing.assert_array_equal(points['confidence'], confidence)


def test_float_metres_depth_gives_the_same_cloud(nyu, confidence):
    _, depth, mask, K, palette = nyu
    metres = depth.astype(np.float32) / np.float32(1000.0)
    metres[depth == 0] = np.nan  # a 32FC1 driver marks holes NaN
    metres[:5, :5] = 0.0  # ... or 0
    metres[5, :5] = np.inf
    got = xyz_of(semantic_cloud(metres, K, mask, confidence, palette))
    want = reference_xyz(metres.astype(np.float64), K)
    np.testing.assert_array_equal(np.isnan(got[..., 2]), np.isnan(want[..., 2]))
    assert np.isnan(got[5, :5]).all() and np.isnan(got[:5, :5]).all()
    assert np.nanmax(np.abs(got - want)) < MAX_ERROR_M


def test_stride_keeps_every_nth_pixel_at_its_full_image_coordinates(nyu, confidence):
    _, depth, mask, K, palette = nyu
    stride = 3
    cloud = semantic_cloud(depth, K, mask, confidence, palette, PointsConfig(stride=stride))
    assert (cloud.height, cloud.width) == (-(-480 // stride), -(-640 // stride))  # 160 x 214
    got = xyz_of(cloud)
    want = reference_xyz(depth.astype(np.float64) / 1000.0, K, stride)
    np.testing.assert_array_equal(np.isnan(got[..., 2]), depth[::stride, ::stride] == 0)
    assert np.nanmax(np.abs(got - want)) < MAX_ERROR_M
    np.testing.assert_array_equal(cloud.points['label'], mask[::stride, ::stride])
    np.testing.assert_array_equal(cloud.points['confidence'], confidence[::stride, ::stride])


def test_max_range_removes_exactly_the_far_points(nyu, confidence):
    _, depth, mask, K, palette = nyu
    full = xyz_of(semantic_cloud(depth, K, mask, confidence, palette))
    limit = 2.5
    cut = semantic_cloud(depth, K, mask, confidence, palette, PointsConfig(max_range=limit))
    got = xyz_of(cut)
    far = depth.astype(np.float64) / 1000.0 > limit
    assert 10_000 < far.sum() < (depth > 0).sum() - 10_000  # the limit cuts this room
    np.testing.assert_array_equal(np.isnan(got[..., 2]), (depth == 0) | far)
    near = ~np.isnan(got[..., 2])
    np.testing.assert_array_equal(got[near], full[near])
    np.testing.assert_array_equal(cut.points['label'], mask)  # still pixel-aligned


def test_classes_keep_only_the_named_classes(nyu, confidence):
    _, depth, mask, K, palette = nyu
    config = points_config(1, 0.0, ['floor', 'chair'], CLASS_NAMES)
    floor, chair = CLASS_NAMES.index('floor'), CLASS_NAMES.index('chair')
    assert config.classes == (floor, chair)
    kept = np.isin(mask, [floor, chair])
    assert (kept & (depth > 0)).sum() > 1000 and (~kept & (depth > 0)).sum() > 1000
    got = xyz_of(semantic_cloud(depth, K, mask, confidence, palette, config))
    full = xyz_of(semantic_cloud(depth, K, mask, confidence, palette))
    np.testing.assert_array_equal(np.isnan(got[..., 2]), (depth == 0) | ~kept)
    np.testing.assert_array_equal(got[kept], full[kept])


def test_builder_reuses_tables_across_frames_and_sizes(nyu, confidence):
    """One builder per node: a new K or a smaller frame gives the new frame's cloud."""
    _, depth, mask, K, palette = nyu
    builder = CloudBuilder(palette)
    builder.build(depth, K, mask, confidence)
    half_k = nyu_intrinsics(240, 320)
    small = (depth[::2, ::2], mask[::2, ::2], confidence[::2, ::2])
    got = xyz_of(builder.build(small[0], half_k, small[1], small[2]))
    want = reference_xyz(small[0].astype(np.float64) / 1000.0, half_k)
    assert np.nanmax(np.abs(got - want)) < MAX_ERROR_M


def test_point_layout_and_rgb_packing():
    assert POINT_STEP == 24
    assert [(f.name, f.offset, f.datatype) for f in FIELDS] == [
        ('x', 0, 7), ('y', 4, 7), ('z', 8, 7), ('rgb', 12, 7), ('confidence', 16, 7),
        ('label', 20, 2)]
    palette = np.array([[255, 0, 0], [0, 128, 255], [1, 2, 3]], np.uint8)
    bits = pack_rgb(palette).view(np.uint32)
    assert bits.tolist() == [0xFF0000, 0x0080FF, 0x010203]
    np.testing.assert_array_equal(unpack_rgb(pack_rgb(palette)), palette)
    assert not np.isnan(pack_rgb(np.full((1, 3), 255, np.uint8))).any()


@pytest.mark.parametrize('kwargs, message', [
    (dict(stride=0), "'points_stride' must be an integer >= 1, got 0"),
    (dict(stride=1.5), "'points_stride' must be an integer >= 1, got 1.5"),
    (dict(max_range=-1.0), "'points_max_range' must be a number of metres >= 0"),
    (dict(max_range=float('nan')), "'points_max_range'"),
    (dict(classes=['floor', 'sofaa']),
     "'points_classes': unknown class 'sofaa'; valid: ['unlabeled', 'wall', 'floor'"),
])
def test_points_parameters_are_checked(kwargs, message):
    args = dict(stride=1, max_range=0.0, classes=[]) | kwargs
    with pytest.raises(ValueError) as err:
        points_config(args['stride'], args['max_range'], args['classes'], CLASS_NAMES)
    assert message in str(err.value)


def test_bad_frames_are_refused_naming_the_problem(nyu, confidence):
    _, depth, mask, K, palette = nyu
    builder = CloudBuilder(palette)
    with pytest.raises(ValueError, match=r'depth shape \(240, 320\) != labels shape'):
        builder.build(depth[::2, ::2], K, mask, confidence)
    with pytest.raises(ValueError, match='depth dtype int32 is not supported; valid'):
        builder.build(depth.astype(np.int32), K, mask, confidence)
    with pytest.raises(ValueError, match='palette has 41 colours'):
        builder.build(depth, K, np.full_like(mask, 41), confidence)
    with pytest.raises(ValueError, match='fx, fy > 0'):
        builder.build(depth, np.zeros((3, 3)), mask, confidence)


def test_mono8_confidence_is_round_255_p(confidence):
    mono8 = encode_confidence(confidence, 'mono8')
    assert mono8.dtype == np.uint8 and mono8.shape == confidence.shape
    want = np.array([round(255 * float(p)) for p in confidence.ravel()]).reshape(mono8.shape)
    np.testing.assert_array_equal(mono8, want)
    assert len(np.unique(mono8)) > 20  # a real spread of confidences, not a constant
    np.testing.assert_array_equal(encode_confidence(confidence, '32FC1'), confidence)
    edges = encode_confidence(np.array([0.0, 1.0, 0.5 / 255, 1.5 / 255], np.float32), 'mono8')
    assert edges.tolist() == [0, 255, round(255 * float(np.float32(0.5 / 255))),
                              round(255 * float(np.float32(1.5 / 255)))]


def test_confidence_encoding_is_checked():
    assert check_confidence_encoding('mono8') == 'mono8'
    with pytest.raises(ValueError, match=r"'confidence_encoding' = 'mono16' is invalid; "
                                         r"valid: \['32FC1', 'mono8'\]"):
        check_confidence_encoding('mono16')


@pytest.mark.parametrize('kind', ['rclpy', 'rosbags'])
def test_pointcloud2_message_round_trip(nyu, confidence, kind):
    """The message describes the buffer: a generic field reader gets the cloud back."""
    from smmcl_ros.messages.pointcloud import (fill_pointcloud, pointcloud_bag_message,
                                               read_pointcloud)

    _, depth, mask, K, palette = nyu
    cloud = semantic_cloud(depth, K, mask, confidence, palette, PointsConfig(stride=2))
    if kind == 'rclpy':
        from sensor_msgs.msg import PointCloud2
        from std_msgs.msg import Header

        header = Header(frame_id='camera_color_optical_frame')
        header.stamp.sec, header.stamp.nanosec = 1_700_000_000, 5
        msg = fill_pointcloud(PointCloud2(), cloud, header)
        assert msg.header.frame_id == header.frame_id and msg.header.stamp == header.stamp
    else:
        from smmcl_ros.bags.messages import make_header, new_typestore

        typestore = new_typestore()
        msg = pointcloud_bag_message(typestore, cloud, make_header(typestore, 5, 'cam'))
        raw = typestore.serialize_cdr(msg, msg.__msgtype__)
        msg = typestore.deserialize_cdr(raw, msg.__msgtype__)
        assert msg.header.frame_id == 'cam'
    assert (msg.height, msg.width) == (240, 320)
    assert msg.point_step == 24 and msg.row_step == 320 * 24 and not msg.is_dense
    assert [f.name for f in msg.fields] == ['x', 'y', 'z', 'rgb', 'confidence', 'label']
    points = read_pointcloud(msg)
    for name in ('x', 'y', 'z', 'rgb', 'confidence'):
        np.testing.assert_array_equal(points[name].view(np.uint32),
                                      cloud.points[name].view(np.uint32))  # bit-exact, NaN too
    np.testing.assert_array_equal(points['label'], mask[::2, ::2])


def test_cloud_source_takes_k_from_the_aux_step_or_the_aux_camera(nyu, confidence):
    """The K the node uses: the aux step's (HHA, registration), else aux/camera_info's, scaled."""
    from types import SimpleNamespace

    from smmcl_ros.pipeline.aux import PreparedAux
    from smmcl_ros.pipeline.cloud import CloudSource, NoCloud
    from smmcl_ros.pipeline.frame import Frame
    from smmcl_ros.pipeline.intrinsics import IntrinsicsCache

    rgb, depth, mask, K, palette = nyu
    source = CloudSource(CloudBuilder(palette), IntrinsicsCache())

    def result(aux, prepared):
        frame = Frame(rgb, aux, 5, aux_stamp_ns=None if aux is None else 5)
        return SimpleNamespace(frame=frame, aux=prepared, labels=mask, confidence=confidence)

    full = result(depth, PreparedAux(depth, depth, None))
    with pytest.raises(NoCloud) as err:  # depth checkpoint before any aux/camera_info
        source.cloud(full)
    assert err.value.reason == 'no_camera_info'
    info = SimpleNamespace(k=K.ravel().tolist(), height=480, width=640, binning_x=0,
                           binning_y=0, roi=SimpleNamespace(x_offset=0, y_offset=0, height=0,
                                                            width=0, do_rectify=False))
    source.intrinsics.update(info)
    want = reference_xyz(depth / 1000.0, K)
    assert np.nanmax(np.abs(xyz_of(source.cloud(full)) - want)) < MAX_ERROR_M
    # A half-size depth camera, resized to the RGB size by the aux step: its K is scaled.
    half = depth[::2, ::2]
    resized = np.repeat(np.repeat(half, 2, 0), 2, 1)
    half_info = SimpleNamespace(**dict(vars(info), k=nyu_intrinsics(240, 320).ravel().tolist(),
                                       height=240, width=320))
    source.intrinsics.update(half_info)
    got = xyz_of(source.cloud(result(half, PreparedAux(resized, resized, None))))
    K_scaled = nyu_intrinsics(240, 320).copy()
    K_scaled[:2] *= 2.0
    K_scaled[:2, 2] += 0.5  # pixel centres: scaling about the corner of pixel 0
    assert np.nanmax(np.abs(got - reference_xyz(resized / 1000.0, K_scaled))) < 1e-3
    # The aux step's K (HHA checkpoints, registration) wins over the camera's.
    other = K.copy()
    other[0, 2] += 40.0
    got = xyz_of(source.cloud(result(depth, PreparedAux(depth, depth, other))))
    assert np.nanmax(np.abs(got - reference_xyz(depth / 1000.0, other))) < MAX_ERROR_M
    with pytest.raises(NoCloud) as err:  # RGB-only frame
        source.cloud(result(None, PreparedAux(np.zeros_like(depth), None, None)))
    assert err.value.reason == 'no_depth'
