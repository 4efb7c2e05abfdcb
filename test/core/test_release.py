"""The authors' released weights: smmcl-import-release, conventions, and the released outputs.

``../shared/release_fixture`` rebuilds the exact released-format state ``release_state(0)``
(1782 tensors, MSCAN-B + LightHamHead, LLRGBD's 14 classes) and holds the logits the authors'
own implementation produced for it. Every test that needs the 72.9M-parameter file shares
the module-scoped files below (written once, imported once per layout).
"""

import ast
from collections import OrderedDict
import json
import os
from pathlib import Path
import subprocess
import sys

from conftest import REPO_ROOT, SHARED_DATA
import cv2
import numpy as np
import pytest
import torch

from smmcl_core.checkpoint import CheckpointError, load_checkpoint
from smmcl_core.cli import import_release as cli
from smmcl_core.data.classes import LLRGBD_CLASSES, LLRGBD_PALETTE
from smmcl_core.data.io import read_aux, read_rgb
from smmcl_core.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, input_conventions
from smmcl_core.release.importer import RELEASE_EVAL_PROTOCOL
from smmcl_core.release.keymap import (detect_architecture, map_release_state,
                                       ReleaseImportError)

FIXTURE = REPO_ROOT.parent / 'shared' / 'release_fixture'
NYU = SHARED_DATA / 'nyuv2_samples'

pytestmark = pytest.mark.skipif(not FIXTURE.is_dir(),
                                reason=f'release fixture not found at {FIXTURE}')


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(REPO_ROOT), env.get('PYTHONPATH', '')])
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


def _write_release(out: Path, *extra: str) -> Path:
    """The fixture's own script writes the file (released engine layout)."""
    subprocess.run([sys.executable, str(FIXTURE / 'make_release_state.py'), str(out), *extra],
                   check=True, env=_env())
    return out


@pytest.fixture(scope='module')
def release_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('release')
    return {'plain': _write_release(folder / 'epoch-500.pth'),
            'module': _write_release(folder / 'epoch-500-dp.pth', '--module-prefix')}


@pytest.fixture(scope='module')
def imported(release_files, tmp_path_factory):
    """Both layouts imported: the plain one through ``python -m`` in its own process."""
    folder = tmp_path_factory.mktemp('imported')
    plain = folder / 'llrgbd_plain.pth'
    done = subprocess.run([sys.executable, '-m', 'smmcl_core.cli.import_release',
                           str(release_files['plain']), '--dataset', 'llrgbd', '--out',
                           str(plain)], capture_output=True, text=True, env=_env())
    assert done.returncode == 0, done.stderr
    assert 'MSCAN-B' in done.stdout and '14 classes' in done.stdout
    prefixed = folder / 'llrgbd_module.pth'
    assert cli.main([str(release_files['module']), '--dataset', 'llrgbd', '--out',
                     str(prefixed)]) == 0
    return {'plain': plain, 'module': prefixed}


@pytest.fixture(scope='module')
def segmenter(imported):
    from smmcl_core import Segmenter  # the package's public face

    torch.set_num_threads(1)
    return Segmenter.from_checkpoint(imported['plain'], device='cpu')


@pytest.fixture(scope='module')
def fixture_inputs():
    return dict(np.load(FIXTURE / 'inputs.npz'))


@pytest.mark.parametrize('layout', ['plain', 'module'])
def test_import_reproduces_the_released_logits(imported, fixture_inputs, layout):
    from smmcl_core.segmenter import Segmenter

    seg = Segmenter.from_checkpoint(imported[layout], device='cpu')
    bases = torch.from_numpy(np.load(FIXTURE / 'nmf_bases.npy'))
    seg.model.decoder.hamburger.ham.bases.copy_(bases)
    expected = np.load(FIXTURE / 'release_logits.npy')  # (1, 14, 96, 128)
    with torch.inference_mode():
        got = seg.predict_logits(torch.from_numpy(fixture_inputs['rgb_normalized']),
                                 torch.from_numpy(fixture_inputs['aux_normalized'])).numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-4
    assert np.array_equal(got.argmax(1), expected.argmax(1))

    meta = seg.meta
    assert meta['preset'] == 'smmcl_mscan_b' and meta['num_classes'] == 14
    assert meta['class_names'] == list(LLRGBD_CLASSES)  # released config.py
    assert meta['palette'] == [list(c) for c in LLRGBD_PALETTE]
    assert meta['aux_modality'] == 'depth'
    assert (meta['channel_order'], meta['aux_encoding']) == ('bgr', 'imread_grayscale')
    assert meta['eval_protocol'] == RELEASE_EVAL_PROTOCOL
    assert meta['source']['module_prefix'] is (layout == 'module')
    assert meta['source']['epoch'] == 500 and meta['source']['tensors'] == 1782


def test_both_layouts_give_the_same_weights(imported):
    plain = load_checkpoint(imported['plain'])['model']
    prefixed = load_checkpoint(imported['module'])['model']
    assert list(plain) == list(prefixed)
    assert all(torch.equal(plain[k], prefixed[k]) for k in plain)  # NMF bases included


def test_segmenter_preprocess_gives_the_released_inputs(segmenter, fixture_inputs):
    bgr, gray = fixture_inputs['bgr'], fixture_inputs['aux_gray']
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])  # Segmenter takes RGB
    want_rgb, want_aux = fixture_inputs['rgb_normalized'], fixture_inputs['aux_normalized']
    rgb_t, aux_t = segmenter.preprocess(rgb, gray)  # 8-bit aux: as it is
    np.testing.assert_allclose(rgb_t.numpy(), want_rgb, atol=1e-5)
    np.testing.assert_allclose(aux_t.numpy(), want_aux, atol=1e-5)
    # 16-bit aux: its high byte, whatever the low byte holds.
    low = np.random.default_rng(0).integers(0, 256, gray.shape).astype(np.uint16)
    deep = (gray.astype(np.uint16) << 8) | low
    assert torch.equal(segmenter.preprocess(rgb, deep)[1], aux_t)
    # The same depth as 32FC1 metres reaches the network in the same units as 16UC1 mm.
    metres = deep.astype(np.float32) / np.float32(1000.0)
    assert torch.equal(segmenter.preprocess(rgb, metres)[1], aux_t)


def test_checkpoints_without_convention_keys_keep_their_preprocessing(segmenter,
                                                                      fixture_inputs):
    from smmcl_core.data.tensors import to_input_tensors
    from smmcl_core.segmenter import Segmenter

    old_meta = {k: v for k, v in segmenter.meta.items()
                if k not in ('channel_order', 'aux_encoding')}
    assert input_conventions(old_meta) == {'channel_order': 'rgb', 'aux_encoding': 'unit'}
    old = Segmenter(segmenter.model, old_meta, device='cpu')
    rgb = np.ascontiguousarray(fixture_inputs['bgr'][:, :, ::-1])
    depth = fixture_inputs['aux_gray'].astype(np.uint16) * 20  # millimetres
    want = to_input_tensors(rgb, depth, 'depth')  # this package's convention, as before
    got = old.preprocess(rgb, depth)
    assert torch.equal(got[0][0], want[0]) and torch.equal(got[1][0], want[1])
    assert not torch.equal(segmenter.preprocess(rgb, depth)[0], got[0])
    with pytest.raises(ValueError, match='channel_order'):
        Segmenter(segmenter.model, dict(old_meta, channel_order='grb'), device='cpu')


def _released_reading(rgb_path: Path, aux_path: Path):
    """The released loader and evaluator on real files: cv2.imread flags, float64 normalise."""
    bgr = cv2.imread(str(rgb_path), cv2.COLOR_BGR2RGB)  # flag 4 = IMREAD_ANYCOLOR: BGR
    gray = cv2.imread(str(aux_path), cv2.IMREAD_GRAYSCALE)
    aux = cv2.merge([gray, gray, gray])

    def normalise(img):
        img = img.astype(np.float64) / 255.0
        img = (img - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
        return torch.from_numpy(img.transpose(2, 0, 1)[None].astype(np.float32))

    return normalise(bgr), normalise(aux)


@pytest.fixture(scope='module')
def real_frame():
    if not NYU.is_dir():
        pytest.skip(f'real sample data not found at {NYU}')
    rgb_path, depth_path = NYU / 'RGB' / '0.png', NYU / 'Depth' / '0.png'
    return {'rgb': read_rgb(rgb_path), 'depth': read_aux(depth_path, 'depth'),
            'released': _released_reading(rgb_path, depth_path)}


@pytest.fixture(scope='module')
def released_labels(segmenter, real_frame):
    """Labels of the network on the released pipeline's own inputs (real 640x480 frame)."""
    with torch.inference_mode():
        logits = segmenter.model(*real_frame['released'])
    return logits[0].argmax(0).to(torch.uint8).numpy()


def test_conventions_reach_the_network_through_segmenter(segmenter, real_frame,
                                                         released_labels):
    rgb, depth = real_frame['rgb'], real_frame['depth']  # RGB uint8, uint16 mm
    rgb_t, aux_t = segmenter.preprocess(rgb, depth)
    want_rgb, want_aux = real_frame['released']
    np.testing.assert_allclose(rgb_t.numpy(), want_rgb.numpy(), atol=1e-5)
    np.testing.assert_allclose(aux_t.numpy(), want_aux.numpy(), atol=1e-5)
    assert len(np.unique(released_labels)) > 1  # not a degenerate constant map
    assert np.mean(segmenter.predict(rgb, depth) != released_labels) < 1e-4
    metres = depth.astype(np.float32) / np.float32(1000.0)
    assert np.mean(segmenter.predict(rgb, metres) != released_labels) < 1e-4


def test_released_file_is_named_by_every_loader(release_files, tmp_path, capsys):
    from smmcl_core.segmenter import Segmenter
    from smmcl_ros.bags import eval_cli as bag_eval
    from smmcl_ros.demo.bundled import SAMPLE_BAG

    path = release_files['module']
    with pytest.raises(CheckpointError, match='released SMMCL training checkpoint') as err:
        Segmenter.from_checkpoint(path, device='cpu')
    assert f'smmcl-import-release {path} --dataset' in str(err.value)
    code = bag_eval.main([str(SAMPLE_BAG), '--checkpoint', str(path), '--device', 'cpu',
                          '--no-progress'])
    assert code == 2
    assert 'smmcl-import-release' in capsys.readouterr().err


def _import_error(capsys, path, dataset='llrgbd', out=None):
    out = out or Path(str(path) + '.out.pth')
    code = cli.main([str(path), '--dataset', dataset, '--out', str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists(), err
    return err


def test_bad_files_give_named_errors(release_files, tmp_path, capsys):
    rel = release_files['plain']
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(np.random.default_rng(1).bytes(4096))
    assert f'{corrupt} is corrupt or truncated' in _import_error(capsys, corrupt)
    truncated = tmp_path / 'truncated.pth'
    with open(rel, 'rb') as f:
        truncated.write_bytes(f.read(1 << 20))
    assert f'{truncated} is corrupt or truncated' in _import_error(capsys, truncated)
    assert 'released checkpoint not found' in _import_error(capsys, tmp_path / 'nope.pth')

    other = tmp_path / 'other.pth'
    torch.save({'model': {'conv1.weight': torch.zeros(2)}, 'epoch': 3}, other)
    err = _import_error(capsys, other)
    assert 'not a released SMMCL checkpoint' in err and 'conv1.weight' in err
    from smmcl_ros.demo.bundled import DEMO_CHECKPOINT
    assert 'already an smmcl checkpoint' in _import_error(capsys, DEMO_CHECKPOINT)

    # Right file, wrong dataset: the class count comes from the classifier's shape.
    err = _import_error(capsys, rel, dataset='mfnet')
    assert 'predicts 14 classes' in err and 'decode_head.conv_seg.weight' in err

    # A file that does not fit: every offending name is listed.
    state = torch.load(rel, map_location='cpu', weights_only=True, mmap=True)['model']
    state = OrderedDict(state)
    del state['backbone.block3.11.mlp.fc2.bias']
    state['backbone.block3.0.attn.extra.weight'] = torch.zeros(3)
    state['decode_head.align.gn.weight'] = torch.zeros(256)
    mismatched = tmp_path / 'mismatched.pth'
    torch.save({'model': state, 'epoch': 1, 'iteration': 1}, mismatched)
    err = _import_error(capsys, mismatched)
    for name in ('backbone.block3.0.attn.extra.weight',
                 'encoder.vis.stages.2.blocks.11.mlp.fc2.bias',
                 'decode_head.align.gn.weight (256,)'):
        assert name in err, err


def _release_shapes(depths=(3, 3, 12, 3), classes=14):
    """Shape-only released state dict for other depths, derived from the fixture key list."""
    state = OrderedDict()
    block = __import__('re').compile(r'^backbone\.block(_other)?([1-4])\.(\d+)\.(.+)$')
    for line in (FIXTURE / 'release_state_keys.tsv').read_text().splitlines():
        key, shape, _ = line.split('\t')
        shape = ast.literal_eval(shape)
        if key.startswith('decode_head.conv_seg.'):
            shape = (classes,) + shape[1:]
        m = block.match(key)
        if m is None:
            state[key] = torch.empty(shape, device='meta')
        elif m.group(3) == '0':  # replicate block 0 of each stage to the wanted depth
            other, stage, rest = m.group(1) or '', int(m.group(2)), m.group(4)
            for j in range(depths[stage - 1]):
                state[f'backbone.block{other}{stage}.{j}.{rest}'] = torch.empty(shape,
                                                                                device='meta')
    return state


def test_mscan_l_and_class_count_are_detected_from_shapes():
    from smmcl_core.models import create_model

    state = _release_shapes(depths=(3, 5, 27, 3), classes=9)
    arch = detect_architecture(state)
    assert (arch['variant'], arch['preset'], arch['num_classes']) == \
        ('l', 'smmcl_mscan_l_release', 9)
    assert arch['depths'] == [3, 5, 27, 3]
    with torch.device('meta'):
        model = create_model(arch['preset'], 9, channels_last=False)
    target = model.state_dict()
    mapped = map_release_state(state, target)
    assert list(mapped) == list(target)
    assert len(state) == len(target) - 1  # everything but the NMF bases
    assert detect_architecture(_release_shapes())['preset'] == 'smmcl_mscan_b'
    with pytest.raises(ReleaseImportError, match=r'depths \(3, 4, 12, 3\)'):
        detect_architecture(_release_shapes(depths=(3, 4, 12, 3)))


def test_evaluate_defaults_to_the_released_protocol_and_conventions(imported, segmenter,
                                                                    released_labels,
                                                                    tmp_path):
    """smmcl-evaluate on an LLRGBD-layout folder holding the real NYU frame 0."""
    from smmcl_core.cli import evaluate
    from smmcl_core.metrics import ConfusionMatrix

    root = tmp_path / 'LLRGBD'
    for sub in ('rgb', 'depth', 'label'):
        (root / sub).mkdir(parents=True)
    for src, dst in (('RGB', 'rgb'), ('Depth', 'depth')):
        (root / dst / '0.png').write_bytes((NYU / src / '0.png').read_bytes())
    label = cv2.imread(str(NYU / 'Label' / '0.png'), cv2.IMREAD_UNCHANGED) % 14
    cv2.imwrite(str(root / 'label' / '0.png'), label.astype(np.uint8))
    (root / 'test.txt').write_text('0\n')
    report = evaluate.run(evaluate.build_parser().parse_args(
        ['--checkpoint', str(imported['plain']), '--root', str(root), '--device', 'cpu',
         '--workers', '0', '--max-images', '0', '--no-progress', '--out',
         str(tmp_path / 'eval')]))
    assert (report['crop'], report['scales'], report['flip']) == ([480, 640], [1.0], False)
    assert report['dataset'] == 'llrgbd' and report['aux_modality'] == 'depth'
    want = ConfusionMatrix(14, 255)
    want.update(torch.from_numpy(released_labels.astype(np.int64))[None],
                torch.from_numpy(label.astype(np.int64))[None])
    assert report['metrics']['miou'] == pytest.approx(want.to_dict(list(LLRGBD_CLASSES))['miou'],
                                                      abs=1e-4)


def _mask(msg) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width)


@pytest.mark.ros
def test_node_serves_the_released_conventions(ros_env, tmp_path, imported, real_frame,
                                              released_labels):
    """The node, in its own process, on a real 640x480 frame as 16UC1 mm and 32FC1 m."""
    from ros_harness import image_msg, NodeProcess, RosClient

    rgb, depth = real_frame['rgb'], real_frame['depth']
    node = NodeProcess(ros_env, dict(checkpoint=imported['plain'], qos='reliable',
                                     device='cpu'), tmp_path / 'node.log')
    client = RosClient()
    try:
        client.wait_ready(node, timeout=120.0)
        table = json.loads(client.labels[0].data)
        assert [table[str(k)]['name'] for k in range(14)] == list(LLRGBD_CLASSES)
        metres = depth.astype(np.float32) / np.float32(1000.0)
        frames = [(image_msg(rgb, 'rgb8', 10), image_msg(depth, '16UC1', 10)),
                  (image_msg(np.ascontiguousarray(rgb[:, :, ::-1]), 'bgr8', 11),
                   image_msg(metres, '32FC1', 11))]
        for i, (rgb_msg, aux_msg) in enumerate(frames):
            client.rgb_pub.publish(rgb_msg)
            client.aux_pub.publish(aux_msg)
            assert client.spin_until(lambda: len(client.received['mask']) > i, 120.0), \
                node.output()
        for msg in client.received['mask']:
            assert np.mean(_mask(msg) != released_labels) < 1e-3
    finally:
        code = node.stop()
        client.close()
    assert code == 0, node.output()


@pytest.mark.ros
def test_node_names_the_import_command_for_a_released_file(ros_env, tmp_path, release_files):
    from ros_harness import NodeProcess

    node = NodeProcess(ros_env, dict(checkpoint=release_files['plain'], device='cpu'),
                       tmp_path / 'node.log')
    try:
        node.proc.wait(120)
    finally:
        code = node.stop()
    log = node.output()
    assert code == 1, log
    assert 'released SMMCL training checkpoint' in log and 'smmcl-import-release' in log


def test_hha_is_read_like_the_colour_image(shared_data):
    """NYUDv2 HHA: the released loader reads it with the colour flag, i.e. BGR."""
    from smmcl_core.data.tensors import to_input_tensors

    rgb_path, hha_path = NYU / 'RGB' / '0.png', NYU / 'HHA' / '0.png'
    want_rgb = _released_reading(rgb_path, rgb_path)[0]
    bgr_hha = cv2.imread(str(hha_path), cv2.COLOR_BGR2RGB)
    want_hha = (bgr_hha / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    rgb_t, hha_t = to_input_tensors(read_rgb(rgb_path), read_aux(hha_path, 'hha'), 'hha',
                                    channel_order='bgr', aux_encoding='imread_grayscale')
    np.testing.assert_allclose(rgb_t.numpy(), want_rgb[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(hha_t.numpy(), want_hha.transpose(2, 0, 1), atol=1e-5)


def test_thermal_under_the_released_encoding():
    from smmcl_core.data.preprocess import aux_to_unit

    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    unit = aux_to_unit(gray, 'thermal', encoding='imread_grayscale')
    np.testing.assert_array_equal(unit, gray / np.float32(255))
    wide = gray.astype(np.uint16) << 8 | np.uint16(0x7F)
    np.testing.assert_array_equal(aux_to_unit(wide, 'thermal', encoding='imread_grayscale'),
                                  unit)
    with pytest.raises(ValueError, match="thermal encoding .*'imread_grayscale'"):
        aux_to_unit(gray.astype(np.float32), 'thermal', encoding='imread_grayscale')
    with pytest.raises(ValueError, match='unknown aux encoding'):
        aux_to_unit(gray, 'thermal', encoding='png')


@pytest.mark.parametrize('dataset, classes, modality', [('mfnet', 9, 'thermal'),
                                                        ('nyudv2', 40, 'hha')])
def test_meta_says_which_conventions_are_assumed(dataset, classes, modality):
    from smmcl_core.release.importer import release_config, release_meta

    meta = release_meta('smmcl_mscan_b', classes, dataset, {'file': 'epoch-1.pth'})
    assert (meta['num_classes'], meta['aux_modality']) == (classes, modality)
    assert len(meta['class_names']) == len(meta['palette']) == classes
    assert 'ASSUMED' in meta['source']['conventions']
    assert input_conventions(meta) == {'channel_order': 'bgr',
                                       'aux_encoding': 'imread_grayscale'}
    json.dumps(meta)  # plain values only (ONNX metadata, labels topic)
    cfg = release_config('smmcl_mscan_b', dataset)
    assert cfg['data']['dataset'] == dataset and cfg['train']['eval_crop'] == [480, 640]
    with pytest.raises(KeyError, match='llrgbd, mfnet, nyudv2'):
        release_meta('smmcl_mscan_b', classes, 'cityscapes', {})
