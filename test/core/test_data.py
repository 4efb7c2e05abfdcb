"""Tests of smmcl_core.data on real sample frames and SYNTHETIC scenes."""

from pathlib import Path

import cv2
import numpy as np
from PIL import Image
import pytest
import torch
from torch.utils.data import DataLoader

from smmcl_core.data import (aux_to_unit, build_dataset, DATASETS, FolderDataset,
                             IMAGENET_MEAN, IMAGENET_STD, MFNetDataset, NYUDv2Dataset,
                             render_scene, SyntheticDarkScenes, to_input_tensors,
                             TrainTransform, write_synthetic_folder)
from smmcl_core.data.synthetic import scene_seed, SYNTHETIC_CLASSES

MEAN = np.array(IMAGENET_MEAN, np.float32)
STD = np.array(IMAGENET_STD, np.float32)


def _unnormalize(t: torch.Tensor) -> np.ndarray:
    """(3,H,W) normalised tensor -> (H,W,3) values in [0, 1]."""
    return t.numpy().transpose(1, 2, 0) * STD + MEAN


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(src.resolve())


# --- preprocess: aux encodings --------------------------------------------------------------

def test_depth_mm_and_metres_give_equal_unit_maps(shared_data):
    """Real 16-bit mm depth and the same depth in float metres give one unit map."""
    mm = cv2.imread(str(shared_data / 'nyuv2_samples/Depth/0.png'), cv2.IMREAD_UNCHANGED)
    assert mm.dtype == np.uint16
    metres = mm.astype(np.float32) / 1000.0
    unit_mm = aux_to_unit(mm, 'depth')
    unit_m = aux_to_unit(metres, 'depth')
    assert unit_mm.dtype == np.float32 and unit_mm.shape == mm.shape
    np.testing.assert_allclose(unit_mm, unit_m, atol=1e-6)
    # 10 m default range: a 3.0 m reading maps to 0.3.
    y, x = np.argwhere(mm == mm.max())[0]
    assert unit_mm[y, x] == pytest.approx(mm.max() / 10000.0, abs=1e-6)
    # A configurable range rescales.
    np.testing.assert_allclose(aux_to_unit(mm, 'depth', depth_max_m=5.0),
                               np.clip(unit_mm * 2.0, 0, 1), atol=1e-6)


def test_depth_invalid_values_become_zero_and_far_saturates():
    """Depth 0/NaN/inf/negative -> 0; beyond depth_max_m saturates at 1."""
    metres = np.array([[0.0, np.nan, np.inf, -np.inf], [-1.0, 2.5, 10.0, 25.0]], np.float32)
    unit = aux_to_unit(metres, 'depth')
    np.testing.assert_array_equal(unit, [[0, 0, 0, 0], [0, 0.25, 1.0, 1.0]])
    mm = np.array([[0, 2500], [10000, 60000]], np.uint16)
    np.testing.assert_allclose(aux_to_unit(mm, 'depth'), [[0, 0.25], [1.0, 1.0]])
    assert aux_to_unit(np.full((2, 2), 51, np.uint8), 'depth')[0, 0] == pytest.approx(0.2)


def test_thermal_encodings():
    """Thermal 8-bit /255; 16-bit percentile stretch or a fixed range."""
    t8 = np.array([[0, 255], [51, 102]], np.uint8)
    np.testing.assert_allclose(aux_to_unit(t8, 'thermal'), t8 / 255.0, atol=1e-7)
    # 16-bit radiometric counts: per-image 1st..99th percentile stretch.
    rng = np.random.default_rng(0)
    t16 = rng.integers(7000, 9000, (64, 64)).astype(np.uint16)
    t16[0, 0] = 65000  # one hot outlier must not compress the rest
    unit = aux_to_unit(t16, 'thermal')
    lo, hi = np.percentile(t16, [1, 99])
    assert unit.min() == 0.0 and unit.max() == 1.0
    assert unit[5, 5] == pytest.approx(np.clip((t16[5, 5] - lo) / (hi - lo), 0, 1), abs=1e-6)
    assert 0.3 < unit.mean() < 0.7
    # A fixed range overrides the per-image stretch.
    fixed = aux_to_unit(t16, 'thermal', thermal_range=(7000, 9000))
    assert fixed[5, 5] == pytest.approx((t16[5, 5] - 7000) / 2000.0, abs=1e-6)
    assert fixed[0, 0] == 1.0


def test_hha_and_unsupported_encodings(shared_data):
    """HHA is /255; unsupported encodings name dtype/shape/modality."""
    hha = cv2.imread(str(shared_data / 'nyuv2_samples/HHA/0.png'))[:, :, ::-1]
    unit = aux_to_unit(hha, 'hha')
    assert unit.shape == hha.shape and unit.dtype == np.float32
    np.testing.assert_allclose(unit, hha / 255.0, atol=1e-7)
    with pytest.raises(ValueError, match='int32'):
        aux_to_unit(np.zeros((4, 4), np.int32), 'depth')
    with pytest.raises(ValueError, match=r'\(4, 4, 3\)'):
        aux_to_unit(np.zeros((4, 4, 3), np.uint16), 'depth')
    with pytest.raises(ValueError, match='float32'):
        aux_to_unit(np.zeros((4, 4, 3), np.float32), 'hha')
    with pytest.raises(ValueError, match='lidar'):
        aux_to_unit(np.zeros((4, 4), np.uint8), 'lidar')
    with pytest.raises(ValueError, match='sizes differ'):
        to_input_tensors(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint16), 'depth',
                         IMAGENET_MEAN, IMAGENET_STD)


def test_to_input_tensors_values():
    """Both modalities get ImageNet normalisation; aux replicated to 3 channels."""
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0] = (255, 0, 128)
    depth = np.full((2, 3), 5000, np.uint16)
    r, a = to_input_tensors(rgb, depth, 'depth', IMAGENET_MEAN, IMAGENET_STD)
    assert r.shape == (3, 2, 3) and a.shape == (3, 2, 3)
    assert r.dtype == torch.float32 and a.dtype == torch.float32
    np.testing.assert_allclose(r[:, 0, 0].numpy(), (np.array([1.0, 0, 128 / 255]) - MEAN) / STD,
                               rtol=1e-6)
    # Single-channel aux replicated to 3 channels, each normalised with its own mean/std.
    np.testing.assert_allclose(a[:, 1, 2].numpy(), (0.5 - MEAN) / STD, rtol=1e-6)


# --- real samples through the dataset classes -----------------------------------------------

def test_nyudv2_depth_labels_mapped(shared_data):
    """Real NYUv2 frames: label 0 -> 255 and 1..40 -> 0..39, RGB values intact."""
    root = shared_data / 'nyuv2_samples'
    ds = build_dataset('nyudv2', root, 'test')
    assert isinstance(ds, NYUDv2Dataset) and len(ds) == 3
    assert ds.aux_modality == 'depth' and ds.num_classes == 40
    assert ds.palette.shape == (40, 3) and ds.palette.dtype == np.uint8
    assert ds.class_names[0] == 'wall' and ds.ignore_index == 255
    for i, name in enumerate(ds.names):
        raw = cv2.imread(str(root / 'Label' / f'{name}.png'), cv2.IMREAD_UNCHANGED)
        rgb, aux, label = ds.raw_sample(i)
        assert aux.dtype == np.uint16 and rgb.shape == (480, 640, 3)
        assert (raw == 0).any() and (raw > 0).any()
        assert np.all(label[raw == 0] == 255)
        np.testing.assert_array_equal(label[raw > 0], raw[raw > 0] - 1)
    r, a, lab = ds[0]
    assert r.shape == (3, 480, 640) and a.shape == (3, 480, 640) and lab.shape == (480, 640)
    assert lab.dtype == torch.int64 and r.dtype == torch.float32
    rgb_file = cv2.imread(str(root / 'RGB/0.png'))[:, :, ::-1]
    np.testing.assert_allclose(_unnormalize(r), rgb_file / 255.0, atol=1e-5)


def test_nyudv2_hha_frame(shared_data, tmp_path):
    """NYUv2 frame 0 with HHA (CMX split entry) keeps the HHA channel order."""
    src = shared_data / 'nyuv2_samples'
    for sub in ('RGB', 'HHA', 'Label'):
        _link(src / sub / '0.png', tmp_path / sub / '0.png')
    (tmp_path / 'test.txt').write_text('RGB/0.png\n')  # CMX-style entry
    ds = NYUDv2Dataset(tmp_path, 'test', aux_modality='hha')
    assert ds.names == ['0']
    _, a, _ = ds[0]
    hha = cv2.imread(str(src / 'HHA/0.png'))[:, :, ::-1]  # file order, RGB
    np.testing.assert_allclose(_unnormalize(a), hha / 255.0, atol=1e-5)


def test_mfnet_four_channel_layout(shared_data, tmp_path):
    """The 4-channel MFNet PNGs split into RGB (channels 1-3) and thermal (4)."""
    src = shared_data / 'mfnet_samples/images'
    names = ['01234N', '01477D']
    labels = {}
    for name in names:
        _link(src / f'{name}.png', tmp_path / 'images' / f'{name}.png')
        rgba = np.asarray(Image.open(src / f'{name}.png'))  # PIL: file channel order
        labels[name] = np.where(rgba[:, :, 3] > 120, 2, 0).astype(np.uint8)  # hot = person
        (tmp_path / 'labels').mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / 'labels' / f'{name}.png'), labels[name])
    (tmp_path / 'test_night.txt').write_text('01234N\n')
    (tmp_path / 'train.txt').write_text('\n'.join(names) + '\n')
    ds = build_dataset('mfnet', tmp_path, 'train', aux_modality='thermal')
    assert isinstance(ds, MFNetDataset) and ds.layout == 'images' and len(ds) == 2
    assert ds.class_names[2] == 'person' and tuple(ds.palette[1]) == (64, 0, 128)
    for i, name in enumerate(names):
        rgb, thermal, label = ds.raw_sample(i)
        rgba = np.asarray(Image.open(src / f'{name}.png'))
        np.testing.assert_array_equal(rgb, rgba[:, :, :3])
        np.testing.assert_array_equal(thermal, rgba[:, :, 3])
        np.testing.assert_array_equal(label, labels[name])
    assert len(build_dataset('mfnet', tmp_path, 'test_night')) == 1
    r, a, lab = ds[0]
    assert r.shape == a.shape == (3, 480, 640) and lab.shape == (480, 640)


def test_msrs_pairs_through_rgb_thermal_folders(shared_data, tmp_path):
    """MSRS night pairs read through the RGB/Thermal/Label layout."""
    src = shared_data / 'msrs_night'
    names = sorted(p.stem for p in (src / 'visible').glob('*.png'))[:3]
    (tmp_path / 'Label').mkdir()
    for name in names:
        _link(src / 'visible' / f'{name}.png', tmp_path / 'RGB' / f'{name}.png')
        _link(src / 'thermal' / f'{name}.png', tmp_path / 'Thermal' / f'{name}.png')
        cv2.imwrite(str(tmp_path / 'Label' / f'{name}.png'), np.zeros((480, 640), np.uint8))
    (tmp_path / 'test.txt').write_text(''.join(f'{n}.png\n' for n in names))
    ds = MFNetDataset(tmp_path, 'test')
    assert ds.layout == 'folders' and ds.names == names
    rgb, thermal, _ = ds.raw_sample(2)
    np.testing.assert_array_equal(rgb, cv2.imread(str(src / 'visible' / f'{names[2]}.png'))
                                  [:, :, ::-1])
    assert thermal.dtype == np.uint8 and thermal.shape == (480, 640)
    _, a, _ = ds[2]
    np.testing.assert_allclose(_unnormalize(a)[:, :, 1], thermal / 255.0, atol=1e-5)


# --- errors naming the file -----------------------------------------------------------------

@pytest.fixture
def small_folder(tmp_path) -> Path:
    """A tiny SYNTHETIC generic folder (2 train, 1 test scenes, depth)."""
    return write_synthetic_folder(tmp_path / 'syn', n_train=2, n_test=1, height=32, width=40,
                                  modality='depth', seed=5)


def test_missing_file_is_named(small_folder):
    """A missing image or split file raises naming the path."""
    ds = FolderDataset(small_folder, 'train')
    (small_folder / 'aux' / 'train_000001.png').unlink()
    ds.raw_sample(0)
    with pytest.raises(FileNotFoundError, match=r'aux/train_000001\.png'):
        ds.raw_sample(1)
    with pytest.raises(FileNotFoundError, match=r'val\.txt'):
        FolderDataset(small_folder, 'val')


def test_unreadable_file_is_named(small_folder):
    """A corrupt image raises naming the path."""
    (small_folder / 'rgb' / 'train_000000.png').write_bytes(b'not a png')
    with pytest.raises(ValueError, match=r'rgb/train_000000\.png'):
        FolderDataset(small_folder, 'train')[0]


def test_label_out_of_range_is_named(small_folder, shared_data, tmp_path):
    """Label ids outside the classes raise naming the file and id."""
    label = np.zeros((32, 40), np.uint8)
    label[3, 4] = 6  # 6 classes: ids 0..5
    cv2.imwrite(str(small_folder / 'label' / 'train_000000.png'), label)
    with pytest.raises(ValueError, match=r'label/train_000000\.png.*6'):
        FolderDataset(small_folder, 'train').raw_sample(0)
    # NYU raw ids go up to 40; 41 is out of range.
    src = shared_data / 'nyuv2_samples'
    for sub in ('RGB', 'Depth'):
        _link(src / sub / '0.png', tmp_path / 'nyu' / sub / '0.png')
    bad = cv2.imread(str(src / 'Label/0.png'), cv2.IMREAD_UNCHANGED)
    bad[0, 0] = 41
    (tmp_path / 'nyu' / 'Label').mkdir()
    cv2.imwrite(str(tmp_path / 'nyu' / 'Label' / '0.png'), bad)
    (tmp_path / 'nyu' / 'test.txt').write_text('0\n')
    with pytest.raises(ValueError, match=r'Label/0\.png.*41'):
        NYUDv2Dataset(tmp_path / 'nyu', 'test')[0]


def test_shape_mismatch_is_named(small_folder):
    """rgb/aux/label size mismatch raises naming the files and sizes."""
    cv2.imwrite(str(small_folder / 'label' / 'train_000001.png'), np.zeros((30, 40), np.uint8))
    with pytest.raises(ValueError, match=r'label/train_000001\.png \(30, 40\)'):
        FolderDataset(small_folder, 'train').raw_sample(1)


def test_factory_and_class_file_errors(small_folder):
    """Unknown dataset / modality / classes.yaml key errors list what is valid."""
    with pytest.raises(KeyError, match='mfnet, nyudv2, llrgbd, folder, synthetic'):
        build_dataset('cityscapes', small_folder, 'train')
    assert set(DATASETS) == {'mfnet', 'nyudv2', 'llrgbd', 'folder', 'synthetic'}
    # classes.yaml states the modality; an explicit one overrides it (issue 12).
    assert build_dataset('folder', small_folder, 'train').aux_modality == 'depth'
    assert build_dataset('folder', small_folder, 'train',
                         aux_modality='thermal').aux_modality == 'thermal'
    with pytest.raises(ValueError, match='depth, thermal, hha'):
        build_dataset('folder', small_folder, 'train', aux_modality='lidar')
    text = (small_folder / 'classes.yaml').read_text()
    (small_folder / 'classes.yaml').write_text(text + 'colours: []\n')
    with pytest.raises(ValueError, match=r'classes\.yaml.*colours'):
        FolderDataset(small_folder, 'train')


# --- augmentation ---------------------------------------------------------------------------

def _block_sample(height=96, width=128, block=16, seed=0):
    """RGB whose colour encodes the label, depth that encodes it too: square class blocks."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 4, (height // block, width // block))
    label = np.kron(blocks, np.ones((block, block), int)).astype(np.uint8)
    colours = np.array([[200, 20, 20], [20, 200, 20], [20, 20, 200], [200, 200, 20]], np.uint8)
    depth_mm = ((label.astype(np.uint16) + 1) * 2000).astype(np.uint16)  # 2, 4, 6, 8 m
    return colours[label], depth_mm, label, colours


def test_train_transform_keeps_modalities_aligned():
    """Flip, scale and crop move rgb, aux and label together."""
    rgb, depth, label, colours = _block_sample()
    transform = TrainTransform((80, 112), 'depth')
    seen_flip = seen_pad = False
    for seed in range(12):
        r, a, lab = transform(rgb, depth, label, np.random.default_rng(seed))
        assert r.shape == a.shape == (3, 80, 112) and lab.shape == (80, 112)
        lab = lab.numpy()
        valid = lab != 255
        seen_pad |= not valid.all()
        # Compare only pixels whose 5x5 label neighbourhood is one class: there bilinear
        # image values and nearest labels must agree exactly.
        lab_i = lab.astype(np.uint8)
        same = cv2.erode(lab_i, np.ones((5, 5))) == cv2.dilate(lab_i, np.ones((5, 5)))
        interior = valid & same
        assert interior.sum() > 100
        rgb_u = _unnormalize(r)[interior] * 255.0
        np.testing.assert_allclose(rgb_u, colours[lab[interior]], atol=0.05)
        depth_u = _unnormalize(a)[interior][:, 0]
        np.testing.assert_allclose(depth_u, (lab[interior] + 1) * 0.2, atol=1e-4)
        # The top-left visible block shows whether the sample was mirrored.
        ys, xs = np.nonzero(valid)
        seen_flip |= lab[ys.min(), xs.min()] != label[0, 0]
    assert seen_flip and seen_pad


def test_padding_values_and_determinism():
    """Padding is 255 for labels and 0 for images; the rng fixes the output."""
    rgb, depth, label, _ = _block_sample(24, 32, block=8)
    transform = TrainTransform((40, 48), 'depth', scales=(1.0,), flip=False)
    r, a, lab = transform(rgb, depth, label, np.random.default_rng(0))
    # Centred padding as released: 8 rows above/below, 8 columns left/right.
    assert torch.all(lab[:8] == 255) and torch.all(lab[-8:] == 255)
    assert torch.all(lab[:, :8] == 255) and torch.all(lab[:, -8:] == 255)
    np.testing.assert_array_equal(lab[8:32, 8:40].numpy(), label)
    assert torch.all(r[:, :8] == 0) and torch.all(a[:, :, -8:] == 0)
    r_eval, a_eval = to_input_tensors(rgb, depth, 'depth', IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(r[:, 8:32, 8:40], r_eval)
    torch.testing.assert_close(a[:, 8:32, 8:40], a_eval)
    full = TrainTransform((32, 40), 'depth')
    first = full(rgb, depth, label, np.random.default_rng(7))
    again = full(rgb, depth, label, np.random.default_rng(7))
    for x, y in zip(first, again):
        torch.testing.assert_close(x, y)
    others = [full(rgb, depth, label, np.random.default_rng(s))[2] for s in range(8)]
    assert any(not torch.equal(o, first[2]) for o in others)


def test_dataloader_workers_are_deterministic():
    """Augmentation repeats for the same torch seed, with and without workers."""
    def epoch(seed, workers):
        torch.manual_seed(seed)
        ds = SyntheticDarkScenes(4, 32, 40, 'depth', train=True, crop_size=(24, 32))
        loader = DataLoader(ds, batch_size=2, num_workers=workers, shuffle=False)
        return torch.cat([batch[2] for batch in loader])

    torch.testing.assert_close(epoch(1, 2), epoch(1, 2))
    torch.testing.assert_close(epoch(3, 0), epoch(3, 0))
    assert not torch.equal(epoch(1, 2), epoch(2, 2))


# --- synthetic scenes -----------------------------------------------------------------------

def test_synthetic_render_is_deterministic_and_dark():
    """SYNTHETIC scenes: same seed same scene, dark RGB, all classes, hot people."""
    a = render_scene(11, 60, 80, 'depth')
    b = render_scene(11, 60, 80, 'depth')
    c = render_scene(12, 60, 80, 'depth')
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[2], c[2])
    rgb, depth, label = a
    assert rgb.dtype == np.uint8 and rgb.shape == (60, 80, 3)
    assert depth.dtype == np.uint16 and label.dtype == np.uint8
    assert rgb[label != 5].mean() < 30  # low light except the lamps
    _, thermal, t_label = render_scene(11, 60, 80, 'thermal')
    assert thermal.dtype == np.uint8
    np.testing.assert_array_equal(t_label, label)  # same scene, other sensor
    seen = np.zeros(len(SYNTHETIC_CLASSES), bool)
    for seed in range(12):
        seen[np.unique(render_scene(seed, 60, 80, 'thermal')[2])] = True
    assert seen.all()
    # Thermal separates people (hot) from the wall, which RGB barely does.
    rgb, thermal, label = render_scene(12, 120, 160, 'thermal')
    if (label == 3).any():
        assert thermal[label == 3].mean() > thermal[label == 1].mean() + 100


@pytest.mark.parametrize('modality', ['depth', 'thermal'])
def test_synthetic_folder_round_trip(tmp_path, modality):
    """write_synthetic_folder files read back by the folder dataset unchanged."""
    root = write_synthetic_folder(tmp_path, n_train=3, n_test=2, height=36, width=48,
                                  modality=modality, seed=9)
    train = build_dataset('folder', root, 'train')
    test = build_dataset('folder', root, 'test')
    assert len(train) == 3 and len(test) == 2 and train.aux_modality == modality
    assert train.class_names == SYNTHETIC_CLASSES
    direct = build_dataset('synthetic', None, 'test', aux_modality=modality, length=2,
                           height=36, width=48, seed=9)
    for i in range(2):
        expected = render_scene(scene_seed(9, 'test', i), 36, 48, modality)
        for got, want, other in zip(test.raw_sample(i), expected, direct.raw_sample(i)):
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(other, want)
    for x, y in zip(test[1], direct[1]):
        torch.testing.assert_close(x, y)


def test_uint16_thermal_percentiles_match_numpy():
    from smmcl_core.data.preprocess import uint16_percentiles

    rng = np.random.default_rng(3)
    qs = [0, 1, 37.5, 99, 100]
    for trial in range(60):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        high = int(rng.integers(1, 65536))
        image = rng.integers(0, high, (h, w), dtype=np.uint16)
        if trial % 5 == 0:
            image[:] = image.flat[0]  # flat frame
        expected = np.percentile(image.astype(np.float64), qs)
        assert np.allclose(uint16_percentiles(image, qs), expected, rtol=0, atol=1e-9)
    # The unit map equals the float64 reference path of a real-sized 16-bit frame.
    frame = rng.normal(30000, 3000, (480, 640)).clip(0, 65535).astype(np.uint16)
    values = frame.astype(np.float64)
    lo, hi = np.percentile(values, [1, 99])
    reference = np.clip((values - lo) / (hi - lo), 0, 1).astype(np.float32)
    unit = aux_to_unit(frame, 'thermal')
    assert unit.dtype == np.float32
    assert np.abs(unit - reference).max() < 1e-6
