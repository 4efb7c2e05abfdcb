"""Own data, second pass (issue 19): auto colour map, label colour tolerance, aspect-kept resize.

Files are shaped like the dataset of the issue (``test/own_data_files.py``): 400x400 JPEG
frames from the real MSRS night pairs, thermal in a camera palette of our own (in no table),
RGB labels whose class colour is blended at the edges.
"""

from pathlib import Path
import warnings

import cv2
import numpy as np
from own_data_files import (blended_label, camera_lut, CRACK, make_camera_folder, msrs_names,
                            msrs_thermal, write_jpeg)
import pytest
import yaml

from smmcl_core.checkpoint import meta_from_dataset_info
from smmcl_core.config import load_config
from smmcl_core.data import build_dataset
from smmcl_core.data.check import check_datasets, format_report
from smmcl_core.data.io import read_label, read_raw
from smmcl_core.data.label_colors import LabelColorTable
from smmcl_core.data.preprocess import aux_to_unit
from smmcl_core.data.resize import check_resize, target_size
from smmcl_core.data.thermal import apply_colormap, colormap_lut, COLORMAPS, MISMATCH_DISTANCE
from smmcl_core.data.thermal_fit import fit_folder
from smmcl_core.models import create_model
from smmcl_core.segmenter import Segmenter

REPO = Path(__file__).resolve().parents[2]
FOLDER_CPU = REPO / 'training' / 'configs' / 'folder_cpu.yaml'


@pytest.fixture(scope='module')
def camera_folder(tmp_path_factory) -> Path:
    return make_camera_folder(tmp_path_factory.mktemp('camera') / 'mine')


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


# ----------------------------------------------------------------------- thermal_colormap: auto
def test_camera_palette_is_in_no_table():
    lut = camera_lut().astype(np.float64)
    for name in COLORMAPS:
        if name != 'luminance':
            gap = np.sqrt(((lut[:, None] - colormap_lut(name)[None].astype(np.float64)) ** 2)
                          .sum(-1)).min(1)  # (256,): each palette colour to the map
            assert gap.mean() > 15, name


def test_auto_falls_back_to_luminance_on_a_camera_palette(camera_folder):
    dataset = build_dataset('folder', camera_folder, 'train')
    fit = dataset.colormap_fit
    assert dataset.info.aux_ranges['thermal_colormap'] == 'luminance'
    assert fit.name == 'luminance' and fit.files == 8  # every aux file (8 < the sample size)
    assert len(fit.ranking) == len(COLORMAPS) - 1
    assert all(dist > MISMATCH_DISTANCE for _, dist in fit.ranking), fit.ranking
    best, best_dist = fit.ranking[0]
    text = fit.describe()
    assert "'luminance'" in text and repr(best) in text and f'{best_dist:.1f}' in text
    # The stored choice is what every later conversion uses, like a named map.
    meta = meta_from_dataset_info('smmcl_mscan_t', dataset.info)
    assert meta['aux_ranges']['thermal_colormap'] == 'luminance'
    test_split = build_dataset('folder', camera_folder, 'test')
    assert test_split.info.aux_ranges == dataset.info.aux_ranges
    # The palette's brightness rises with temperature, so luminance recovers the real frame.
    name = dataset.names[0]
    raw = dataset.raw_sample(0)[1]
    assert raw.shape == (400, 400, 3)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # a chosen map: no luminance warning
        unit = aux_to_unit(raw, 'thermal', **dataset.info.aux_ranges)
    assert _correlation(unit, msrs_thermal(name)) > 0.95


def test_auto_picks_the_map_the_files_were_rendered_with(tmp_path):
    root = make_camera_folder(tmp_path / 'iron', count=4, palette=colormap_lut('ironbow'))
    dataset = build_dataset('folder', root, 'train')
    assert dataset.info.aux_ranges['thermal_colormap'] == 'ironbow'
    fit = dataset.colormap_fit
    assert fit.ranking[0][0] == 'ironbow' and fit.distance < 5  # JPEG noise only
    assert "'ironbow' fits 4 colour file(s)" in fit.describe()
    name = dataset.names[0]
    unit = aux_to_unit(dataset.raw_sample(0)[1], 'thermal', **dataset.info.aux_ranges)
    assert np.abs(unit * 255 - msrs_thermal(name)).mean() < 4  # intensity, not luminance
    # The fit follows the files: re-rendered with jet, a new fit in the same process.
    for path in sorted((root / 'aux').iterdir()):
        write_jpeg(path, apply_colormap(msrs_thermal(path.stem), 'jet'))
    assert fit_folder(root / 'aux').name == 'jet'


def test_check_ranks_the_maps_when_the_named_one_does_not_fit(tmp_path):
    root = make_camera_folder(tmp_path / 'd', count=4, thermal_colormap='inferno')
    report = check_datasets({'train': build_dataset('folder', root, 'train')}, progress=False)
    assert len(report['problems']) == 2 and all("'inferno'" in p['reason']
                                                for p in report['problems'])
    (note,) = report['notes']
    assert "thermal_colormap 'inferno' does not fit 2 file(s) (train 2)" in note
    assert all(name in note for name in COLORMAPS if name != 'luminance')  # the whole ranking
    assert "('luminance' here)" in note
    assert 'note: ' in format_report(report)


def test_unknown_colormap_lists_auto(tmp_path):
    root = make_camera_folder(tmp_path / 'd', count=2, thermal_colormap='flir')
    with pytest.raises(ValueError, match=r"'flir'.*auto"):
        build_dataset('folder', root, 'train')


# ------------------------------------------------------------------ label_color_tolerance
def test_blended_label_edges_are_an_error_that_names_the_option(tmp_path):
    root = make_camera_folder(tmp_path / 'd', count=2, tolerance=None)
    path = root / 'label' / f'{msrs_names(1)[0]}.png'
    rgb = read_raw(path)[:, :, ::-1]
    edges = np.unique(rgb[..., 0][(rgb[..., 0] > 0) & (rgb[..., 0] < 128)])
    assert edges.size > 20 and not rgb[..., 1:].any()  # (1..127, 0, 0) as in the issue
    dataset = build_dataset('folder', root, 'train')
    with pytest.raises(ValueError, match=r'not in label_colors.*label_color_tolerance: 64'):
        dataset.raw_sample(0)


def test_tolerance_maps_to_the_nearest_colour_and_keeps_far_colours_an_error(tmp_path):
    root = make_camera_folder(tmp_path / 'd', count=2, tolerance=64)
    dataset = build_dataset('folder', root, 'train')
    name = dataset.names[0]
    red = blended_label(name)[..., 0].astype(int)
    expected = (red > 64).astype(np.uint8)  # (64, 0, 0): a tie, goes to the first listed
    np.testing.assert_array_equal(dataset.raw_sample(0)[2], expected)
    assert dataset.problems(0) == []

    label = blended_label(name)
    label[5, 5] = (0, 255, 0)  # a colour no tolerance of 64 reaches
    cv2.imwrite(str(root / 'label' / f'{name}.png'), label[:, :, ::-1])
    with pytest.raises(ValueError,
                       match=r'farther than label_color_tolerance 64.*\(0, 255, 0\) x1'):
        dataset.raw_sample(0)
    table = LabelColorTable((((0, 0, 0), 0), (CRACK, 1)), tolerance=20)
    with pytest.raises(ValueError, match='farther than label_color_tolerance 20'):
        read_label(root / 'label' / f'{dataset.names[1]}.png', table)


@pytest.mark.parametrize('extra, match', [
    ({'label_color_tolerance': -1}, 'label_color_tolerance must be a number >= 0'),
    ({'label_color_tolerance': 'near'}, 'label_color_tolerance must be a number >= 0'),
    ({'label_colors': None}, 'label_color_tolerance needs label_colors'),
])
def test_bad_tolerance_is_refused(tmp_path, extra, match):
    root = make_camera_folder(tmp_path / 'd', count=2)
    spec = yaml.safe_load((root / 'classes.yaml').read_text())
    spec.update(extra)
    (root / 'classes.yaml').write_text(yaml.safe_dump(spec))
    with pytest.raises(ValueError, match=match):
        build_dataset('folder', root, 'train')


# ----------------------------------------------------------------------- resize keeps aspect
def test_resize_forms():
    assert check_resize(240) == check_resize([240]) == 240
    assert check_resize([240, 320]) == (240, 320) and check_resize([]) is None
    for bad in ([0], [1, 2, 3], 'x', True, [240.0]):
        with pytest.raises(ValueError, match='short side'):
            check_resize(bad)
    assert target_size(240, 400, 400) == (240, 240)
    assert target_size(240, 480, 640) == (240, 320)
    assert target_size((240, 320), 400, 400) == (240, 320)
    assert load_config(FOLDER_CPU).data.resize == [240]  # the folder config keeps aspect
    assert load_config(None, ['data.resize=96']).data.resize == [96]
    assert load_config(None, ['data.resize=[96,128]']).data.resize == [96, 128]


def test_short_side_resize_keeps_square_frames_square(camera_folder):
    val = build_dataset('folder', camera_folder, 'train', resize=check_resize([96]))
    rgb, aux, label = val[0]
    assert rgb.shape == aux.shape == (3, 96, 96) and label.shape == (400, 400)
    train = build_dataset('folder', camera_folder, 'train', train=True, crop_size=(96, 96),
                          scales=(1.0,), resize=96)
    rgb, _, label = train.sample(0, np.random.default_rng(0))
    assert rgb.shape == (3, 96, 96) and (label != 255).all()  # no padding: aspect kept

    meta = meta_from_dataset_info('smmcl_mscan_t', val.info)
    meta['resize'] = [96]  # as smmcl-train stores data.resize: 96
    seg = Segmenter(create_model('smmcl_mscan_t', num_classes=2).eval(), meta, device='cpu')
    seen = []
    seg.model.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    raw_rgb, raw_aux, _ = val.raw_sample(0)
    assert seg.predict(raw_rgb, raw_aux).shape == (400, 400)
    wide = np.zeros((480, 640, 3), np.uint8)
    assert seg.predict(wide, np.zeros((480, 640), np.uint8)).shape == (480, 640)
    assert [s[-2:] for s in seen] == [(96, 96), (96, 128)]


def test_check_says_when_an_exact_resize_stretches_the_frames(camera_folder):
    datasets = {'train': build_dataset('folder', camera_folder, 'train')}
    report = check_datasets(datasets, progress=False, resize=(240, 320))
    (note,) = [n for n in report['notes'] if 'stretched' in n]
    assert '400x400' in note and '6 of 6 sampled frames' in note and 'data.resize: 240' in note
    assert not report['problems']
    for keeps in (240, None, (300, 300)):
        report = check_datasets(datasets, progress=False, resize=keeps)
        assert not [n for n in report['notes'] if 'stretched' in n], keeps


# ----------------------------------------------------------------------- damaged files
def test_a_cut_off_jpeg_is_unreadable(camera_folder, tmp_path):
    data = (camera_folder / 'rgb' / f'{msrs_names(1)[0]}.jpg').read_bytes()
    cut = tmp_path / 'cut.jpg'
    cut.write_bytes(data[:len(data) // 2])
    assert cv2.imread(str(cut)) is not None  # OpenCV alone would take it (grey rows)
    with pytest.raises(ValueError, match=r'truncated JPEG file.*cut\.jpg'):
        read_raw(cut)
    padded = tmp_path / 'padded.jpg'
    padded.write_bytes(data + b'\x00' * 16)
    assert read_raw(padded).shape == (400, 400, 3)
