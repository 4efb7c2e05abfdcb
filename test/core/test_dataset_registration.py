"""Folder datasets with unregistered pairs: classes.yaml aux_registration on real MSRS frames."""

from pathlib import Path

from conftest import SHARED_DATA
import cv2
import numpy as np
import pytest
from virtual_cameras import rgb_to_aux
import yaml

from smmcl_core.data import build_dataset
from smmcl_core.data.registration import coverage, warp_homography

NAMES = ('00004N', '00008N')
TO_AUX = rgb_to_aux(0.5, 1.5, -6.0, 9.0)  # RGB pixel -> pixel of a 320x256 thermal camera
H = np.linalg.inv(TO_AUX)  # aux pixel -> RGB pixel, as smmcl-calibrate-aux writes it


def make_unregistered(root: Path, extra: dict, aux_size=(320, 256)) -> Path:
    """MSRS pairs with the thermal re-imaged by a virtual camera; labels in the RGB frame."""
    folder = SHARED_DATA / 'msrs_night'
    if not folder.is_dir():
        pytest.skip(f'real sample data not found at {folder}')
    for sub in ('rgb', 'aux', 'label'):
        (root / sub).mkdir(parents=True)
    for name in NAMES:
        rgb = cv2.imread(str(folder / 'visible' / f'{name}.png'))
        thermal = cv2.imread(str(folder / 'thermal' / f'{name}.png'), cv2.IMREAD_UNCHANGED)
        optics = cv2.GaussianBlur(thermal, (0, 0), 1.0)  # the virtual lens (no aliasing)
        cv2.imwrite(str(root / 'rgb' / f'{name}.png'), rgb)
        cv2.imwrite(str(root / 'aux' / f'{name}.png'),
                    cv2.warpPerspective(optics, TO_AUX, aux_size, flags=cv2.INTER_LINEAR)
                    if aux_size != (640, 480) else optics)
        cv2.imwrite(str(root / 'label' / f'{name}.png'), (thermal > 150).astype(np.uint8))
    (root / 'train.txt').write_text('\n'.join(NAMES) + '\n')
    spec = {'class_names': ['background', 'warm'], 'aux_modality': 'thermal', **extra}
    (root / 'classes.yaml').write_text(yaml.safe_dump(spec))
    return root


def test_homography_in_classes_yaml_registers_every_aux_image(tmp_path):
    root = make_unregistered(tmp_path / 'd', {'aux_registration': 'homography',
                                              'aux_homography': H.ravel().tolist()})
    dataset = build_dataset('folder', root, 'train')
    assert dataset.registration.mode == 'homography'
    seen = coverage((256, 320), H, (480, 640))
    inner = cv2.erode(seen.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    for i, name in enumerate(NAMES):
        rgb, aux, label = dataset.raw_sample(i)
        raw = cv2.imread(str(root / 'aux' / f'{name}.png'), cv2.IMREAD_UNCHANGED)
        assert aux.shape == label.shape == rgb.shape[:2] == (480, 640)
        np.testing.assert_array_equal(aux, warp_homography(raw, H, (480, 640), 'thermal'))
        thermal = cv2.imread(str(SHARED_DATA / 'msrs_night/thermal' / f'{name}.png'), -1)
        optics = cv2.GaussianBlur(thermal, (0, 0), 1.0)
        assert np.abs(aux.astype(float) - optics)[inner].mean() < 1.0  # the registered view
        outer = cv2.dilate(seen.astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
        assert outer.any() and (aux[outer] == 0).all()  # not seen: the coldest count
    assert dataset.problems(0) == []
    rgb_t, aux_t, label_t = dataset[0]  # training and evaluation see the registered pair
    assert rgb_t.shape == aux_t.shape == (3, 480, 640) and label_t.shape == (480, 640)


def test_other_size_without_registration_is_an_error_naming_file_and_key(tmp_path):
    root = make_unregistered(tmp_path / 'd', {})
    dataset = build_dataset('folder', root, 'train')
    aux_file = root / 'aux' / f'{NAMES[0]}.png'
    with pytest.raises(ValueError, match=rf'{aux_file}: aux image 320x256 but .*640x480: the '
                                         r'pair is not registered; name aux_registration'):
        dataset.raw_sample(0)
    assert any(str(aux_file) in p and 'aux_registration' in p for p in dataset.problems(0))
    # auto (the node's default) refuses another aspect ratio, naming the file too.
    auto = build_dataset('folder', make_unregistered(tmp_path / 'e', {
        'aux_registration': 'auto'}), 'train')
    with pytest.raises(ValueError, match=r'00004N.png: aux 320x256, rgb 640x480: the aspect '
                                         r'ratios differ'):
        auto.raw_sample(0)


def test_auto_and_resize_take_a_half_size_aux(tmp_path):
    for mode in ('auto', 'resize'):
        root = make_unregistered(tmp_path / mode, {'aux_registration': mode}, (320, 240))
        aux = build_dataset('folder', root, 'train').raw_sample(1)[1]
        raw = cv2.imread(str(root / 'aux' / f'{NAMES[1]}.png'), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(aux, cv2.resize(raw, (640, 480),
                                                      interpolation=cv2.INTER_LINEAR))


@pytest.mark.parametrize('extra, message', [
    ({'aux_registration': 'depth'}, "aux_registration 'depth' not one of none, auto, resize, "
                                    'homography'),
    ({'aux_registration': 'homography'}, 'aux_homography is empty'),
    ({'aux_homography': [1.0] * 9}, 'aux_homography needs aux_registration: homography'),
    ({'aux_registration': 'resize', 'aux_homography': [1.0] * 9},
     'aux_homography is only for aux_registration: homography'),
    ({'aux_registration': 'homography', 'aux_homography': [1.0, 2.0]},
     'aux_homography must be 9 numbers'),
])
def test_bad_registration_keys_name_the_file(tmp_path, extra, message):
    root = make_unregistered(tmp_path / 'd', extra)
    with pytest.raises(ValueError, match=rf'{root / "classes.yaml"}: .*{message}'):
        build_dataset('folder', root, 'train')
