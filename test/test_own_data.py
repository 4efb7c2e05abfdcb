"""Training on your own data (issue 12).

Label formats, pseudo-colour thermal, resize, background naming, validation split rules, the
data checker, modality-drop evaluation and a folder-layout training run end to end.
"""

import json
import os
from pathlib import Path
import subprocess
import sys
import warnings

import cv2
import numpy as np
from PIL import Image
import pytest
import torch
import yaml

from smmcl_core.checkpoint import build_meta, load_checkpoint
from smmcl_core.cli import evaluate as evaluate_cli
from smmcl_core.cli.common import dataset_from_config, validation_plan
from smmcl_core.config import load_config
from smmcl_core.data import build_dataset
from smmcl_core.data.classes import background_index
from smmcl_core.data.io import read_aux, read_label
from smmcl_core.data.preprocess import aux_to_unit, to_input_tensors
from smmcl_core.data.resize import resize_inputs
from smmcl_core.data.splits import carve_validation
from smmcl_core.data.synthetic import render_scene, SYNTHETIC_CLASSES, SYNTHETIC_PALETTE
from smmcl_core.data.thermal import colorize, COLORMAPS, invert_colormap
from smmcl_core.engine import evaluate
from smmcl_core.models import create_model
from smmcl_core.segmenter import Segmenter

REPO = Path(__file__).resolve().parents[1]
FOLDER_CPU = REPO / 'training' / 'configs' / 'folder_cpu.yaml'
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


def _palette_png(path: Path, ids: np.ndarray, palette: np.ndarray) -> None:
    image = Image.fromarray(ids.astype(np.uint8), mode='P')
    flat = np.zeros((256, 3), np.uint8)
    flat[:len(palette)] = palette
    image.putpalette(flat.ravel().tolist())
    image.save(path)


def _write_rgb(path: Path, rgb: np.ndarray) -> None:
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


def make_folder(root: Path, count: int = 12, size=(48, 64), colormap: str = 'inferno',
                splits=None, extra=None) -> Path:
    """A thermal folder dataset from synthetic scenes: pseudo-colour aux, palette labels."""
    for sub in ('rgb', 'aux', 'label'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    names = [f'frame_{i:03d}' for i in range(count)]
    for i, name in enumerate(names):
        rgb, thermal, label = render_scene(1000 + i, size[0], size[1], 'thermal')
        _write_rgb(root / 'rgb' / f'{name}.jpg' if i % 2 else root / 'rgb' / f'{name}.png', rgb)
        _write_rgb(root / 'aux' / f'{name}.png', colorize(thermal, colormap))
        _palette_png(root / 'label' / f'{name}.png', label, SYNTHETIC_PALETTE)
    spec = {'class_names': list(SYNTHETIC_CLASSES), 'aux_modality': 'thermal',
            'thermal_colormap': colormap, 'background': 'wall'}
    spec.update(extra or {})
    (root / 'classes.yaml').write_text(yaml.safe_dump(spec))
    for split, members in (splits or {'train': names}).items():
        (root / f'{split}.txt').write_text(''.join(n + '\n' for n in members))
    return root


# ----------------------------------------------------------------------------- labels
def test_palette_label_png_gives_its_indices(tmp_path):
    ids = np.random.default_rng(0).integers(0, 4, (20, 30)).astype(np.uint8)
    palette = np.array([[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]], np.uint8)
    path = tmp_path / 'x.png'
    _palette_png(path, ids, palette)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape == (20, 30, 3)  # why PIL
    np.testing.assert_array_equal(read_label(path), ids)


def test_colour_labels_need_and_use_the_classes_yaml_table(tmp_path):
    root = make_folder(tmp_path / 'd', count=2, extra={'label_colors': {
        'floor': [10, 20, 30], 'wall': [200, 0, 0], 'box': [0, 200, 0], 'person': [0, 0, 200],
        'car': [200, 200, 0], 'lamp': [0, 200, 200], 'ignore': [255, 255, 255]}})
    table = {0: (10, 20, 30), 1: (200, 0, 0), 2: (0, 200, 0), 3: (0, 0, 200),
             4: (200, 200, 0), 5: (0, 200, 200), 255: (255, 255, 255)}
    ids = read_label(root / 'label' / 'frame_000.png')
    ids[:3, :3] = 255
    colour = np.zeros(ids.shape + (3,), np.uint8)
    for k, c in table.items():
        colour[ids == k] = c
    _write_rgb(root / 'label' / 'frame_000.png', colour)
    dataset = build_dataset('folder', root, 'train')
    np.testing.assert_array_equal(dataset.raw_sample(0)[2], ids)

    colour[0, 5] = (1, 2, 3)  # a colour outside the table
    _write_rgb(root / 'label' / 'frame_000.png', colour)
    with pytest.raises(ValueError, match=r'frame_000\.png.*\(1, 2, 3\)'):
        dataset.raw_sample(0)
    with pytest.raises(ValueError, match='label_colors'):
        read_label(root / 'label' / 'frame_000.png')  # no table given


# ----------------------------------------------------------------------------- thermal
@pytest.mark.parametrize('name', ['inferno', 'jet', 'ironbow', 'turbo'])
def test_pseudo_colour_thermal_inverts_to_intensity(tmp_path, name):
    intensity = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    path = tmp_path / 't.png'
    _write_rgb(path, colorize(intensity, name))
    raw = read_aux(path, 'thermal')
    assert raw.shape == (4, 256, 3)  # RGB order kept for the inversion
    recovered, distance = invert_colormap(raw, name)
    error = np.abs(recovered.astype(int) - intensity.astype(int))
    assert error.max() <= 6 and error.mean() < 1.5, (name, error.max(), error.mean())
    assert distance < 4
    unit = aux_to_unit(raw, 'thermal', thermal_colormap=name)
    np.testing.assert_allclose(unit, recovered / 255.0, atol=1e-6)
    # Rendered with another map: the distance says so.
    assert invert_colormap(colorize(intensity, 'viridis'), name)[1] > 20


def test_colour_thermal_without_a_map_falls_back_to_luminance_with_a_warning():
    image = colorize(np.tile(np.arange(256, dtype=np.uint8), (2, 1)), 'jet')
    with pytest.warns(RuntimeWarning, match='thermal_colormap'):
        unit = aux_to_unit(image, 'thermal')
    expected = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) / 255.0
    np.testing.assert_allclose(unit, expected, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        aux_to_unit(image, 'thermal', thermal_colormap='luminance')
    assert 'luminance' in COLORMAPS


def test_segmenter_and_codec_handle_pseudo_colour_thermal(tmp_path):
    from smmcl_ros.messages.image_codec import decode_aux

    rgb, thermal, _ = render_scene(5, 48, 64, 'thermal')
    colour = colorize(thermal, 'inferno')
    model = create_model('smmcl_mscan_t', num_classes=6)
    meta = build_meta('smmcl_mscan_t', 6, SYNTHETIC_CLASSES, SYNTHETIC_PALETTE, 'thermal',
                      aux_ranges={'thermal_colormap': 'inferno'})
    assert meta['aux_ranges'] == {'thermal_colormap': 'inferno'}
    seg = Segmenter(model, meta, device='cpu')
    from_colour = seg.preprocess(rgb, colour)[1]
    from_mono = seg.preprocess(rgb, invert_colormap(colour, 'inferno')[0])[1]
    torch.testing.assert_close(from_colour, from_mono)
    assert seg.predict(rgb, colour).shape == (48, 64)

    class Msg:  # a sensor_msgs/Image as the node and bag tools receive it
        encoding, is_bigendian, height, width, step = 'bgr8', 0, 48, 64, 64 * 3
        data = np.ascontiguousarray(colour[:, :, ::-1]).tobytes()

    np.testing.assert_array_equal(decode_aux(Msg(), 'thermal'), colour)


# ----------------------------------------------------------------------------- resize
def test_resize_runs_the_network_at_the_trained_size():
    model = create_model('smmcl_mscan_t', num_classes=6)
    meta = build_meta('smmcl_mscan_t', 6, SYNTHETIC_CLASSES, SYNTHETIC_PALETTE, 'depth')
    meta['resize'] = [64, 96]
    seg = Segmenter(model, meta, device='cpu')
    rgb, depth, _ = render_scene(3, 120, 160, 'depth')
    rgb_t, aux_t = seg.preprocess(rgb, depth)
    assert rgb_t.shape == aux_t.shape == (1, 3, 64, 96)
    labels, confidence = seg.predict(rgb, depth, return_confidence=True)
    assert labels.shape == confidence.shape == (120, 160)
    seen = []
    model.forward_hook = model.register_forward_hook(
        lambda module, args, out: seen.append(tuple(args[0].shape)))
    seg.predict(rgb, depth)
    assert seen and seen[0][-2:] == (64, 96)


def test_resize_in_training_and_evaluation(tmp_path):
    root = make_folder(tmp_path / 'd', count=2, size=(60, 80))
    train = build_dataset('folder', root, 'train', train=True, crop_size=(30, 40),
                          scales=(1.0,), resize=(30, 40))
    rgb, aux, label = train.sample(0, np.random.default_rng(0))
    assert rgb.shape == (3, 30, 40) and label.shape == (30, 40)
    assert (label != 255).all()  # resized to the crop: no padding needed
    val = build_dataset('folder', root, 'train', resize=(30, 40))
    rgb, aux, label = val[0]
    assert rgb.shape == aux.shape == (3, 30, 40) and label.shape == (60, 80)
    model = create_model('smmcl_mscan_t', num_classes=6)
    loader = torch.utils.data.DataLoader(val, batch_size=1)
    matrix = evaluate(model, loader, 'cpu', 6, 255, progress=False)
    assert int(matrix.matrix.sum()) == 2 * 60 * 80  # scored at native size
    ref_rgb, ref_aux = to_input_tensors(*val.raw_sample(0)[:2], 'thermal', **val.info.aux_ranges)
    expected = resize_inputs(ref_rgb[None], ref_aux[None], (30, 40))
    torch.testing.assert_close(val[0][0], expected[0][0])


# ----------------------------------------------------------------------------- background
def test_background_naming_rule():
    assert background_index(['_background_', 'crack']) == 0  # labelme
    assert background_index(['unlabeled', 'car']) == 0
    assert background_index(['crack', 'sky']) is None
    assert background_index(['crack', 'sky'], 'sky') == 1
    assert background_index(['_background_', 'crack'], '') is None
    with pytest.raises(ValueError, match='road'):
        background_index(['crack', 'sky'], 'road')


def test_classes_yaml_background_reaches_the_dataset(tmp_path):
    root = make_folder(tmp_path / 'd', count=2)
    info = build_dataset('folder', root, 'train').info
    assert info.background == 'wall'
    assert background_index(info.class_names, info.background) == 1
    make_folder(tmp_path / 'e', count=2, extra={'background': 'sky'})
    with pytest.raises(ValueError, match="background 'sky'"):
        build_dataset('folder', tmp_path / 'e', 'train')


# ----------------------------------------------------------------------------- splits
def _folder_cfg(root: Path, *overrides: str):
    return load_config(FOLDER_CPU, [f'data.root={root}', *overrides])


def test_validation_carved_from_train_is_reproducible_and_disjoint(tmp_path):
    names = [f'n{i}' for i in range(50)]
    train, val = carve_validation(names, 0.1, 0)
    assert len(val) == 5 and not set(train) & set(val) and len(train) == 45
    assert carve_validation(list(reversed(names)), 0.1, 0)[1] == list(reversed(val))
    assert carve_validation(names, 0.1, 1)[1] != val

    root = make_folder(tmp_path / 'd', count=20, splits={
        'train': [f'frame_{i:03d}' for i in range(16)],
        'test': [f'frame_{i:03d}' for i in range(16, 20)]})
    cfg = _folder_cfg(root)
    plan = validation_plan(cfg)
    assert plan.carved and 'carved' in plan.description
    train_set = dataset_from_config(cfg, 'train', train=True)
    val_set = dataset_from_config(cfg, 'auto', train=False)
    assert len(val_set) == 2 and len(train_set) == 14
    assert not set(train_set.names) & set(val_set.names)
    other_seed = _folder_cfg(root, 'train.seed=7')  # training seeds do not move the carve
    assert dataset_from_config(other_seed, 'auto', train=False).names == val_set.names

    (root / 'val.txt').write_text('frame_000\nframe_001\nframe_002\n')
    plan = validation_plan(cfg)
    assert not plan.carved and plan.split == 'val'
    assert dataset_from_config(cfg, 'auto', train=False).names == [
        'frame_000', 'frame_001', 'frame_002']
    assert len(dataset_from_config(cfg, 'train', train=True)) == 16
    explicit = _folder_cfg(root, 'data.val_split=test')
    assert dataset_from_config(explicit, explicit.data.val_split, False).names[0] == 'frame_016'


def test_shipped_configs_do_not_select_on_test():
    for path in (REPO / 'training' / 'configs').glob('*.yaml'):
        cfg = load_config(path)
        if 'test' in cfg.data.val_split:
            assert not cfg.train.select_best, path  # authors' protocol, said in the file
            assert 'protocol' in path.read_text().lower() or 'demo' in path.name, path
    assert load_config(None).data.val_split == 'auto'


# ----------------------------------------------------------------------------- checker
def test_data_checker_reports_every_damaged_file(tmp_path):
    root = make_folder(tmp_path / 'd', count=8, splits={
        'train': [f'frame_{i:03d}' for i in range(8)] + ['frame_000', 'ghost'],
        'val': ['frame_007']})
    (root / 'rgb' / 'frame_001.jpg').unlink()  # missing file
    (root / 'aux' / 'frame_002.png').write_bytes(b'not a png')  # unreadable
    label = read_label(root / 'label' / 'frame_003.png')
    label[0, 0] = 9  # id above the 6 classes
    _palette_png(root / 'label' / 'frame_003.png', label, SYNTHETIC_PALETTE)
    _write_rgb(root / 'rgb' / 'frame_004.png', np.zeros((20, 20, 3), np.uint8))  # size
    _write_rgb(root / 'aux' / 'frame_005.png',  # rendered with another colour map
               colorize(np.tile(np.arange(64, dtype=np.uint8), (48, 1)), 'viridis'))
    label6 = read_label(root / 'label' / 'frame_006.png')
    _write_rgb(root / 'label' / 'frame_006.png', SYNTHETIC_PALETTE[label6])  # colour, no table
    (root / 'aux' / 'frame_006.png').unlink()  # and a second problem in the same sample

    report_path = tmp_path / 'report.json'
    result = subprocess.run(
        [sys.executable, '-m', 'smmcl_core.cli.check_data', '--config', str(FOLDER_CPU),
         f'data.root={root}', '--report', str(report_path), '--no-progress'],
        env=ENV, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    by_sample = {}
    for p in report['problems']:
        by_sample.setdefault(p['sample'], []).append(p['reason'])
    text = json.dumps(by_sample)
    assert 'frame_001' in by_sample and 'rgb' in by_sample['frame_001'][0]
    assert any('unreadable' in r and 'frame_002.png' in r for r in by_sample['frame_002'])
    assert any('out of range: 9' in r for r in by_sample['frame_003'])
    assert any('sizes differ' in r for r in by_sample['frame_004'])
    assert any("'inferno'" in r for r in by_sample['frame_005'])
    assert len(by_sample['frame_006']) == 2  # missing aux AND colour label
    assert any('label_colors' in r for r in by_sample['frame_006'])
    assert any('more than once' in r for r in by_sample['frame_000'])
    assert 'ghost' in by_sample and 'in both' in text  # frame_007 in train and val
    assert report['splits']['train']['samples'] == 10
    assert 'frame_007' in result.stdout or 'frame_007' in text

    # Training refuses to start on the same folder, before building the model.
    result = subprocess.run(
        [sys.executable, '-m', 'smmcl_core.cli.train', '--config', str(FOLDER_CPU),
         f'data.root={root}', f'train.out_dir={tmp_path / "run"}', 'train.progress=false'],
        env=ENV, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 2 and 'frame_003' in result.stderr and 'frame_001' in \
        result.stderr, result.stderr


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope='module')
def folder_run(tmp_path_factory):
    """A tiny training run on a folder the test writes (pseudo-colour thermal, palette PNGs)."""
    base = tmp_path_factory.mktemp('own')
    names = [f'frame_{i:03d}' for i in range(24)]
    root = make_folder(base / 'data', count=24, size=(60, 80), splits={
        'train': names[:20], 'test': names[20:]})
    out = base / 'run'
    result = subprocess.run(
        [sys.executable, '-m', 'smmcl_core.cli.train', '--config', str(FOLDER_CPU),
         f'data.root={root}', f'train.out_dir={out}', 'data.resize=[48,64]',
         'data.crop_size=[48,64]', 'data.workers=0', 'data.val_fraction=0.2',
         'data.test_split=test', 'train.epochs=3', 'train.eval_every=1', 'train.batch_size=4',
         'train.progress=false', 'loss.min_pixels=1', 'loss.lambda_delay_epochs=1',
         'loss.lambda_ramp_epochs=1'],
        env=ENV, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    return root, out, result.stdout


def test_folder_layout_training_end_to_end(folder_run):
    root, out, stdout = folder_run
    records = [json.loads(x) for x in (out / 'metrics.jsonl').read_text().splitlines()]
    assert [r['epoch'] for r in records] == [1, 2, 3]
    # 4 iterations per epoch: the last one of epoch 2 runs at progress 1.75
    assert [r['lambda_scale'] for r in records] == [0.0, 0.75, 1.0]
    assert records[0]['cm'] > 0  # logged even while its weight is 0
    selection = json.loads((out / 'selection.json').read_text())
    assert 'carved' in selection['val_source'] and selection['val_samples'] == 4
    assert selection['best_pth_selected_on'] == selection['val_source']
    assert selection['train_samples'] == 16 and len(selection['val_names']) == 4
    test = json.loads((out / 'test.json').read_text())
    assert test['split'] == 'test' and test['weights'] == 'best.pth'
    meta = load_checkpoint(out / 'best.pth')['meta']
    assert meta['aux_modality'] == 'thermal'  # from classes.yaml (config says '')
    assert meta['resize'] == [48, 64]
    assert meta['aux_ranges']['thermal_colormap'] == 'inferno'
    best = max(r['miou'] for r in records)
    assert records[[r['miou'] for r in records].index(best)]['miou'] == best
    assert 'data check: no problems' not in stdout  # the scan is quiet when clean


def _evaluate(checkpoint: Path, out: Path, *extra: str) -> dict:
    status = evaluate_cli.main(['--checkpoint', str(checkpoint), '--out', str(out),
                                '--max-images', '1', '--workers', '0', '--no-progress',
                                '--device', 'cpu', *extra])
    assert status == 0
    return json.loads((out / 'report.json').read_text())


def test_evaluate_defaults_to_validation_and_measures_dropped_modalities(folder_run, tmp_path):
    root, out, _ = folder_run
    records = [json.loads(x) for x in (out / 'metrics.jsonl').read_text().splitlines()]
    best_epoch = load_checkpoint(out / 'best.pth')['epoch']
    full = _evaluate(out / 'best.pth', tmp_path / 'full')
    assert full['split'] == 'val' and 'carved' in full['split_source']
    assert full['metrics']['miou'] == pytest.approx(records[best_epoch - 1]['miou'], abs=1e-9)
    assert full['background_class'] == 'wall'
    per_class = full['metrics']['per_class']
    assert 'wall' in per_class

    test = _evaluate(out / 'best.pth', tmp_path / 'test', '--split', 'test')
    stored = json.loads((out / 'test.json').read_text())
    assert test['metrics']['miou'] == pytest.approx(stored['miou'], abs=1e-9)

    no_aux = _evaluate(out / 'best.pth', tmp_path / 'no_aux', '--drop-aux')
    no_rgb = _evaluate(out / 'best.pth', tmp_path / 'no_rgb', '--drop-rgb')
    assert no_aux['dropped_modality'] == 'aux' and no_rgb['dropped_modality'] == 'rgb'
    confusions = [np.array(r['confusion_matrix']) for r in (full, no_aux, no_rgb)]
    assert all(c.sum() == confusions[0].sum() for c in confusions)
    assert not np.array_equal(confusions[0], confusions[1])
    assert not np.array_equal(confusions[0], confusions[2])

    # The dropped input is what the node feeds with on_missing_aux=rgb_only (all-zero raw).
    cfg = load_config(out / 'config.yaml')
    dataset = dataset_from_config(cfg, 'auto', train=False)
    rgb_raw = dataset.raw_sample(0)[0]
    _, zero_aux = to_input_tensors(rgb_raw, np.zeros(rgb_raw.shape[:2], np.uint8), 'thermal')
    dropped = evaluate_cli.DroppedModality(dataset, 'aux')[0][1]
    torch.testing.assert_close(dropped, resize_inputs(zero_aux[None], zero_aux[None],
                                                      (48, 64))[0][0])


def test_contrastive_weight_schedule():
    from smmcl_core.losses.schedule import contrastive_scale

    assert contrastive_scale(0.0) == contrastive_scale(7.5) == 1.0  # paper: constant
    assert [contrastive_scale(t, 2, 4) for t in (0, 1.99, 2, 3, 5, 6, 9)] == \
        [0, 0, 0, 0.25, 0.75, 1, 1]
    assert contrastive_scale(1.0, 1.0, 0.0) == 1.0 and contrastive_scale(0.5, 1.0, 0.0) == 0
    with pytest.raises(ValueError, match='>= 0'):
        contrastive_scale(1.0, -1.0, 0.0)
