"""Command-line tools: train (CPU, synthetic), resume after SIGKILL, evaluate, export, t-SNE."""

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from smmcl_core.checkpoint import (build_checkpoint, build_meta, load_checkpoint,
                                   save_checkpoint)
from smmcl_core.cli import evaluate as evaluate_cli
from smmcl_core.cli import export as export_cli
from smmcl_core.cli import train as train_cli
from smmcl_core.cli import tsne as tsne_cli
from smmcl_core.config import ExperimentConfig, load_config
from smmcl_core.data import build_dataset
from smmcl_core.data.synthetic import SYNTHETIC_PALETTE
from smmcl_core.metrics import ConfusionMatrix
from smmcl_core.models import create_model

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'training' / 'configs'
SYNTHETIC = CONFIGS / 'synthetic_cpu.yaml'
# One thread per process: on a shared 2-core machine oversubscription costs 10x, and equal
# thread counts keep the float reductions of the compared runs identical.
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
TINY = ['data.synthetic_train=32', 'data.synthetic_val=8', 'data.synthetic_size=[64,80]',
        'data.crop_size=[64,80]', 'train.batch_size=4', 'train.epochs=8',
        'train.eval_every=4', 'train.ckpt_every=1', 'train.progress=false',
        'optim.warmup_epochs=0.5', 'loss.min_pixels=1']


def _train_cmd(out_dir: Path, *extra: str) -> list:
    return [sys.executable, '-m', 'smmcl_core.cli.train', '--config', str(SYNTHETIC), *TINY,
            f'train.out_dir={out_dir}', *extra]


def _records(out_dir: Path) -> list:
    return [json.loads(line) for line in (out_dir / 'metrics.jsonl').read_text().splitlines()]


def _chance_miou(split_len: int = 8) -> float:
    """Return the mIoU of always predicting the most frequent class of the held-out split."""
    ds = build_dataset('synthetic', None, 'test', length=split_len, height=64, width=80)
    labels = torch.stack([torch.from_numpy(ds.raw_sample(i)[2]).long() for i in range(len(ds))])
    majority = torch.bincount(labels.flatten(), minlength=256)[:ds.num_classes].argmax()
    matrix = ConfusionMatrix(ds.num_classes)
    matrix.update(torch.full_like(labels, int(majority)), labels)
    return matrix.miou()


@pytest.fixture(scope='module')
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('cli') / 'run_a'
    start = time.perf_counter()
    result = subprocess.run(_train_cmd(out), env=ENV, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return out, time.perf_counter() - start, result.stdout


def _model_state(path: Path) -> dict:
    return load_checkpoint(path, require=('model', 'optimizer'))


# ------------------------------------------------------------------------- fast tests
def test_bad_override_key_is_a_clear_error(tmp_path, capsys):
    code = train_cli.main(['--config', str(SYNTHETIC), 'optim.lrr=0.1',
                           f'train.out_dir={tmp_path}'])
    err = capsys.readouterr().err
    assert code == 2
    assert 'optim.lrr' in err and 'unknown config key' in err
    assert not (tmp_path / 'config.yaml').exists()


def test_bad_override_value_and_missing_config(tmp_path, capsys):
    assert train_cli.main(['--config', str(SYNTHETIC), 'train.epochs=many']) == 2
    assert 'train.epochs' in capsys.readouterr().err
    assert train_cli.main(['--config', str(tmp_path / 'nope.yaml')]) == 2
    assert 'nope.yaml' in capsys.readouterr().err


def test_paper_configs_load_with_paper_settings():
    expected = {  # name: (lambda, epochs, dataset, modality)
        'llrgbd_mscan_b': (0.2, 500, 'llrgbd', 'depth'),
        'mfnet_mit_b2': (0.05, 300, 'mfnet', 'thermal'),
        'mfnet_mscan_b': (0.05, 300, 'mfnet', 'thermal'),
        'mfnet_resnet101': (0.05, 300, 'mfnet', 'thermal'),
        'nyudv2_mscan_b_hha': (0.05, 600, 'nyudv2', 'hha'),
    }
    for name, (lam, epochs, dataset, modality) in expected.items():
        cfg = load_config(CONFIGS / f'{name}.yaml')
        assert (cfg.loss.lambda_cm, cfg.loss.lambda_vis, cfg.loss.lambda_aux) == (lam,) * 3
        assert cfg.train.epochs == epochs and cfg.data.dataset == dataset
        assert cfg.data.aux_modality == modality
        assert cfg.loss.temperature == 0.1 and cfg.train.batch_size == 16
        assert cfg.data.crop_size == [480, 640] and cfg.optim.lr == 6e-5
    for path in CONFIGS.glob('*.yaml'):  # every shipped config is valid
        load_config(path)


def test_resume_with_other_iters_per_epoch_is_refused(tmp_path, capsys):
    # The saved scheduler step count only lines up with the same iterations per epoch.
    out = tmp_path / 'run'
    tiny = ['--config', str(SYNTHETIC), 'data.synthetic_train=4', 'data.synthetic_val=1',
            'data.synthetic_size=[32,32]', 'data.crop_size=[32,32]', 'train.epochs=1',
            'train.progress=false', f'train.out_dir={out}']
    assert train_cli.main([*tiny, 'train.batch_size=2']) == 0  # 2 iterations per epoch
    capsys.readouterr()
    code = train_cli.main([*tiny, 'train.batch_size=4', 'train.epochs=2', '--resume', 'auto'])
    err = capsys.readouterr().err
    assert code == 2
    assert str(out / 'last.pth') in err and '2 iterations per epoch' in err


@pytest.fixture
def untrained_checkpoint(tmp_path) -> Path:
    torch.manual_seed(0)
    model = create_model('smmcl_mscan_t', 6)
    cfg = ExperimentConfig.from_dict({'data': {'dataset': 'synthetic', 'synthetic_val': 4,
                                               'synthetic_size': [64, 96]},
                                      'model': {'name': 'smmcl_mscan_t'}})
    meta = build_meta('smmcl_mscan_t', 6, ['floor', 'wall', 'box', 'person', 'car', 'lamp'],
                      SYNTHETIC_PALETTE, 'depth', aux_ranges={'depth_max_m': 10.0})
    path = tmp_path / 'untrained.pth'
    save_checkpoint(path, build_checkpoint(model, cfg, meta, epoch=0))
    return path


def test_export_onnx_matches_torch(untrained_checkpoint, tmp_path):
    import onnx
    import onnxruntime as ort

    out = tmp_path / 'model.onnx'
    assert export_cli.main(['--checkpoint', str(untrained_checkpoint), '--format', 'onnx',
                            '--out', str(out), '--height', '64', '--width', '96',
                            '--verify']) == 0
    proto = onnx.load(str(out))
    assert proto.opset_import[0].version >= 17
    meta = json.loads({p.key: p.value for p in proto.metadata_props}['smmcl_meta'])
    assert meta['class_names'][3] == 'person' and meta['aux_modality'] == 'depth'
    # Independent round trip: batch 3 (dynamic axis), onnxruntime vs the PyTorch model.
    state = load_checkpoint(untrained_checkpoint)
    model = create_model('smmcl_mscan_t', 6).eval()
    model.load_state_dict(state['model'])
    rgb, aux = torch.randn(3, 3, 64, 96), torch.randn(3, 3, 64, 96)
    with torch.no_grad():
        expected = model(rgb, aux).numpy()
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    actual = session.run(None, {'rgb': rgb.numpy(), 'aux': aux.numpy()})[0]
    assert actual.shape == (3, 6, 64, 96)
    assert np.abs(actual - expected).max() < 1e-3


def test_export_onnx_of_bundled_mit_checkpoint_has_dynamic_batch(tmp_path):
    """The MiT attention exports with a dynamic batch (unflatten used to bake batch 1)."""
    import onnxruntime as ort

    from smmcl_ros.demo.bundled import DEMO_CHECKPOINT

    out = tmp_path / 'demo.onnx'
    assert export_cli.main(['--checkpoint', str(DEMO_CHECKPOINT), '--format', 'onnx',
                            '--out', str(out), '--height', '64', '--width', '96',
                            '--verify']) == 0
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    for batch in (1, 3):
        rgb = np.random.default_rng(batch).standard_normal((batch, 3, 64, 96), np.float32)
        logits = session.run(None, {'rgb': rgb, 'aux': rgb})[0]
        assert logits.shape == (batch, 6, 64, 96)


def test_export_torchscript_matches_torch(untrained_checkpoint, tmp_path):
    out = tmp_path / 'model.pt'
    diff = export_cli.export(str(untrained_checkpoint), 'torchscript', str(out), 64, 96,
                             check=True)
    assert diff is not None and diff < 1e-3
    files = {'smmcl_meta.json': ''}
    loaded = torch.jit.load(str(out), _extra_files=files)
    assert json.loads(files['smmcl_meta.json'])['num_classes'] == 6
    assert loaded(torch.randn(2, 3, 64, 96), torch.randn(2, 3, 64, 96)).shape == (2, 6, 64, 96)


def test_export_rejects_old_opset(untrained_checkpoint, tmp_path, capsys):
    assert export_cli.main(['--checkpoint', str(untrained_checkpoint), '--format', 'onnx',
                            '--out', str(tmp_path / 'm.onnx'), '--opset', '13']) == 2
    assert '--opset' in capsys.readouterr().err


def test_tsne_writes_png(untrained_checkpoint, tmp_path):
    out = tmp_path / 'fig8.png'
    assert tsne_cli.main(['--checkpoint', str(untrained_checkpoint), '--out', str(out),
                          '--per-class', '20', '--max-images', '4', '--device', 'cpu']) == 0
    import cv2
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 200
    assert image.std() > 10  # not a blank canvas


def test_evaluate_rejects_wrong_modality(untrained_checkpoint, tmp_path, capsys):
    code = evaluate_cli.main(['--checkpoint', str(untrained_checkpoint), '--aux-modality',
                              'thermal', '--out', str(tmp_path), '--workers', '0'])
    assert code == 2
    assert 'aux modality' in capsys.readouterr().err


def test_evaluate_rejects_bad_scales_naming_the_key(untrained_checkpoint, tmp_path, capsys):
    code = evaluate_cli.main(['--checkpoint', str(untrained_checkpoint), '--scales', '0',
                              '--out', str(tmp_path / 'a'), '--workers', '0'])
    assert code == 2 and 'eval_scales' in capsys.readouterr().err
    config = tmp_path / 'no_scales.yaml'
    config.write_text(SYNTHETIC.read_text().replace('eval_scales: [1.0]', 'eval_scales: []'))
    code = evaluate_cli.main(['--checkpoint', str(untrained_checkpoint), '--config', str(config),
                              '--out', str(tmp_path / 'b'), '--workers', '0'])
    assert code == 2 and 'eval_scales' in capsys.readouterr().err


# ------------------------------------------------------------------------- CPU proof (slow)
@pytest.mark.slow
def test_cpu_training_learns_and_evaluate_agrees(trained_run, tmp_path):
    out, seconds, stdout = trained_run
    records = _records(out)
    assert [r['epoch'] for r in records] == list(range(1, 9))
    assert records[-1]['loss'] < 0.6 * records[0]['loss'], [r['loss'] for r in records]
    evals = [r for r in records if 'miou' in r]
    assert [r['epoch'] for r in evals] == [4, 8]
    chance = _chance_miou()
    assert evals[-1]['miou'] > 2.5 * chance, (evals, chance)
    for name in ('config.yaml', 'last.pth', 'best.pth'):
        assert (out / name).is_file()
    assert list((out / 'tb').glob('events.out.tfevents.*'))
    last = load_checkpoint(out / 'last.pth')
    assert last['epoch'] == 8 and last['meta']['preset'] == 'smmcl_mscan_t'
    assert last['meta']['aux_modality'] == 'depth'

    eval_dir = tmp_path / 'eval'
    result = subprocess.run(
        [sys.executable, '-m', 'smmcl_core.cli.evaluate', '--checkpoint', str(out / 'last.pth'),
         '--out', str(eval_dir), '--max-images', '2', '--workers', '0', '--no-progress'],
        env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((eval_dir / 'report.json').read_text())
    assert report['metrics']['miou'] == pytest.approx(records[-1]['miou'], abs=1e-9)
    assert report['images'] == 8 and report['images_written'] == 2
    assert len(list((eval_dir / 'pred').glob('*.png'))) == 2
    assert (eval_dir / 'confusion.png').is_file()
    print(f'CPU run: {seconds:.1f}s, loss {records[0]["loss"]:.3f} -> {records[-1]["loss"]:.3f}'
          f', mIoU {evals[0]["miou"]:.3f} -> {evals[-1]["miou"]:.3f}, chance {chance:.3f}')


@pytest.mark.slow
def test_resume_after_sigkill_continues_the_run(trained_run, tmp_path):
    reference, _, _ = trained_run
    out = tmp_path / 'run_b'
    proc = subprocess.Popen(_train_cmd(out), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    killed_at = None
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / 'last.pth').is_file():
                # Atomic writes: a visible last.pth is always complete.
                if load_checkpoint(out / 'last.pth')['epoch'] >= 2:
                    proc.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.1)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, 'training finished before it could be killed'
    killed_at = load_checkpoint(out / 'last.pth')['epoch']
    assert 2 <= killed_at < 8

    result = subprocess.run(_train_cmd(out, '--resume', 'auto'), env=ENV, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'at epoch {killed_at}' in result.stdout
    assert f'epoch {killed_at + 1}/8' in result.stdout
    assert f'epoch {killed_at}/8 ' not in result.stdout  # finished epochs are not redone
    records = _records(out)
    assert [r['epoch'] for r in records] == list(range(1, 9))  # no duplicated epochs

    # Same seed, per-epoch reseeding and restored optimiser/scheduler: the resumed run ends
    # where the uninterrupted one did.
    resumed, uninterrupted = _model_state(out / 'last.pth'), _model_state(reference / 'last.pth')
    for key, value in uninterrupted['model'].items():
        assert torch.allclose(resumed['model'][key].float(), value.float(), atol=1e-5), key
    assert resumed['scheduler']['last_epoch'] == uninterrupted['scheduler']['last_epoch']
    assert records[-1]['miou'] == pytest.approx(_records(reference)[-1]['miou'], abs=1e-6)


def test_torchrun_two_process_ddp_on_cpu(tmp_path):
    """``torchrun --nproc_per_node 2`` trains with DDP (gloo on CPU); rank 0 writes once."""
    out = tmp_path / 'ddp'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node',
           '2', '-m', 'smmcl_core.cli.train', '--config', str(SYNTHETIC), *TINY,
           'train.epochs=2', 'train.eval_every=2', 'train.keep_every=1',
           f'train.out_dir={out}']
    result = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'world size 2' in result.stdout
    records = _records(out)
    assert [r['epoch'] for r in records] == [1, 2]  # one writer, no duplicated lines
    last = load_checkpoint(out / 'last.pth')
    assert last['epoch'] == 2
    assert not any(k.startswith('module.') for k in last['model'])  # DDP wrapper not stored
    snapshots = sorted(p.name for p in out.glob('epoch_*.pth'))
    assert snapshots == ['epoch_0001.pth', 'epoch_0002.pth']
    assert load_checkpoint(out / 'epoch_0001.pth')['epoch'] == 1
    # The rank-0 evaluation reported by training equals a single-process evaluation.
    report_dir = tmp_path / 'eval'
    assert evaluate_cli.main(['--checkpoint', str(out / 'last.pth'), '--out', str(report_dir),
                              '--max-images', '0', '--workers', '0', '--no-progress']) == 0
    report = json.loads((report_dir / 'report.json').read_text())
    assert report['metrics']['miou'] == pytest.approx(records[-1]['miou'], abs=1e-6)
