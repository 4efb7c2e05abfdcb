"""The lean inference path: numpy end to end with an engine, torch never imported.

Real frames (MSRS night pairs), the bundled demo checkpoint, real OpenVINO / ONNX Runtime
engines. The numpy path must give the torch path's masks; a process that builds the segmenter
on an exported graph and predicts must not import torch, also when torch is not installed
(``test/no_torch.py`` blocks it), and a missing torch must name the extra to install.
"""

import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from smmcl_core.data.resample import bilinear, bilinear_antialias
from smmcl_core.engines import available
from smmcl_core.inference import predict_logits
from smmcl_core.inference_np import predict_logits_np
from smmcl_core.segmenter import Segmenter
from smmcl_ros.demo.bundled import DEMO_CHECKPOINT

TEST_DIR = Path(__file__).resolve().parents[1]
REPO = TEST_DIR.parent
CPU_ENGINES = [name for name in ('openvino', 'onnxruntime') if available(name)]
needs_engine = pytest.mark.skipif(not CPU_ENGINES, reason='no CPU engine installed')


@pytest.fixture(scope='module', autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.fixture(scope='module')
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp('lean_cache')


@pytest.fixture(scope='module')
def frames():
    """Two real 640x480 MSRS night pairs: RGB uint8 (H,W,3), thermal uint8 (H,W)."""
    from conftest import msrs_night_pairs

    return msrs_night_pairs(2, 2)


@pytest.fixture(scope='module')
def onnx_file(tmp_path_factory) -> Path:
    """The demo checkpoint exported by smmcl-export (dynamic height and width)."""
    from smmcl_core.cli import export as export_cli

    path = tmp_path_factory.mktemp('lean_onnx') / 'demo.onnx'
    assert export_cli.main(['--checkpoint', str(DEMO_CHECKPOINT), '--format', 'onnx',
                            '--out', str(path), '--dynamic-hw']) == 0
    return path


def _normalised(frames):
    from smmcl_core.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, to_input_arrays

    rgb, thermal = frames[0]
    return to_input_arrays(rgb, thermal, 'thermal', IMAGENET_MEAN, IMAGENET_STD)


@pytest.mark.parametrize('size', [(240, 320), (301, 417), (123, 77), (480, 640), (700, 900)])
def test_numpy_resampling_equals_torch_interpolate(frames, size):
    rgb, _ = _normalised(frames)  # (3,480,640) float32 of a real frame
    x = torch.from_numpy(rgb)[None]
    plain = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
    smooth = F.interpolate(x, size=size, mode='bilinear', align_corners=False, antialias=True)
    np.testing.assert_allclose(bilinear(rgb[None], size), plain.numpy(), atol=2e-5)
    # torch's antialias kernel rounds its float32 weights differently: a few 1e-5 apart.
    np.testing.assert_allclose(bilinear_antialias(rgb[None], size), smooth.numpy(), atol=1e-4)


@needs_engine
@pytest.mark.parametrize('options', [dict(), dict(crop=(192, 256), stride=(128, 160)),
                                     dict(scales=(0.75, 1.25), flip=True)])
def test_numpy_predict_logits_equals_the_torch_one(cache, frames, options):
    seg = Segmenter.from_checkpoint(DEMO_CHECKPOINT, device='cpu', backend=CPU_ENGINES[0],
                                    cache_dir=cache)
    rgb, aux = _normalised(frames)
    rgb, aux = rgb[None, :, :301, :417], aux[None, :, :301, :417]  # not multiples of 32
    ours = predict_logits_np(seg.engine.run_numpy, rgb, aux, seg.num_classes, **options)
    with torch.inference_mode():
        ref = predict_logits(seg.engine, torch.from_numpy(rgb.copy()),
                             torch.from_numpy(aux.copy()), seg.num_classes, **options)
    assert ours.shape == (1, seg.num_classes, 301, 417) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref.numpy(), atol=1e-4, rtol=1e-4)
    assert np.mean(ours.argmax(1) == ref.numpy().argmax(1)) >= 0.9999


@needs_engine
@pytest.mark.parametrize('resize', [None, [240], [256, 352]])
def test_segmenter_numpy_path_equals_its_torch_path(cache, frames, resize):
    """The numpy predict against preprocess + predict_logits + restore_logits (torch)."""
    from smmcl_core.data.resize import restore_logits

    base = Segmenter.from_checkpoint(DEMO_CHECKPOINT, device='cpu', backend=CPU_ENGINES[0],
                                     cache_dir=cache)
    meta = dict(base.meta, resize=resize)
    seg = Segmenter(base.engine, meta, flip=True)
    assert seg.engine.runs_numpy
    for rgb, thermal in frames:
        labels, conf = seg.predict(rgb, thermal, return_confidence=True)
        with torch.inference_mode():
            logits = restore_logits(seg.predict_logits(*seg.preprocess(rgb, thermal)),
                                    rgb.shape[:2])[0]
        ref_conf, ref_labels = logits.softmax(0).max(0)
        assert labels.dtype == np.uint8 and conf.dtype == np.float32
        assert np.mean(labels == ref_labels.numpy()) >= 0.9999
        assert np.abs(conf - ref_conf.numpy()).max() < 1e-4
        np.testing.assert_array_equal(seg.predict(rgb, thermal), labels)


def _run(code: str, block_torch: bool, cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(TEST_DIR)]),
               SMMCL_CACHE_DIR=str(cache), OMP_NUM_THREADS='1')
    prelude = 'import no_torch; no_torch.install()\n' if block_torch else ''
    return subprocess.run([sys.executable, '-c', prelude + code], capture_output=True,
                          text=True, timeout=300, cwd=REPO, env=env)


PREDICT = """
import sys
import numpy as np
from smmcl_core.data.io import read_aux, read_rgb
from smmcl_core.segmenter import Segmenter
folder = {folder!r}
seg = Segmenter.from_checkpoint({path!r}, backend={backend!r}, **{options!r})
out = []
for name in {names!r}:
    rgb = read_rgb(folder + '/visible/' + name)
    labels, conf = seg.predict(rgb, read_aux(folder + '/thermal/' + name, 'thermal'),
                               return_confidence=True)
    out.append(labels)
np.save({out!r}, np.stack(out))
print('backend', seg.backend, 'device', seg.device)
print('torch loaded:', any(m == 'torch' or m.startswith('torch.') for m in sys.modules))
"""


def _predict_code(path, backend, out, options=None) -> str:
    from conftest import SHARED_DATA

    folder = SHARED_DATA / 'msrs_night'
    names = sorted(os.listdir(folder / 'visible'))[2:4]
    return PREDICT.format(folder=str(folder), path=str(path), backend=backend, names=names,
                          out=str(out), options=options or {})


@needs_engine
@pytest.mark.parametrize('backend', CPU_ENGINES + ['auto'])
@pytest.mark.parametrize('block_torch', [False, True], ids=['torch-installed', 'no-torch'])
def test_exported_graph_runs_without_importing_torch(onnx_file, cache, frames, tmp_path,
                                                     backend, block_torch):
    out = tmp_path / 'labels.npy'
    result = _run(_predict_code(onnx_file, backend, out, dict(flip=True)), block_torch, cache)
    assert result.returncode == 0, result.stderr
    assert 'torch loaded: False' in result.stdout and 'device cpu' in result.stdout
    ref = Segmenter.from_checkpoint(DEMO_CHECKPOINT, device='cpu', flip=True)
    for labels, (rgb, thermal) in zip(np.load(out), frames):
        assert np.mean(labels == ref.predict(rgb, thermal)) >= 0.995  # as test_engines


@needs_engine
def test_cached_export_of_a_checkpoint_runs_without_torch(tmp_path, frames):
    cache = tmp_path / 'cache'
    name = CPU_ENGINES[0]
    code = _predict_code(DEMO_CHECKPOINT, name, tmp_path / 'first.npy')
    # No cached graph and no torch: the export needs the 'export' extra, and says so.
    missing = _run(code, True, cache)
    assert missing.returncode != 0
    assert "needs torch, which is not installed: pip install 'smmcl_ros[export]'" \
        in missing.stderr, missing.stderr
    assert f'exporting {DEMO_CHECKPOINT} for backend {name!r}' in missing.stderr
    assert 'or use as the checkpoint the .onnx file smmcl-export writes' in missing.stderr
    first = _run(code, False, cache)  # exports once (torch), then predicts in numpy
    assert first.returncode == 0, first.stderr
    assert 'torch loaded: True' in first.stdout
    assert len(list((cache / 'graphs').glob('*.onnx'))) == 1
    code = _predict_code(DEMO_CHECKPOINT, name, tmp_path / 'again.npy')
    again = _run(code, True, cache)  # the cached graph, found from the file's bytes
    assert again.returncode == 0, again.stderr
    assert 'torch loaded: False' in again.stdout
    np.testing.assert_array_equal(np.load(tmp_path / 'again.npy'),
                                  np.load(tmp_path / 'first.npy'))


def test_without_torch_the_torch_backend_names_its_extra(onnx_file, cache):
    code = ('from smmcl_core.segmenter import Segmenter\n'
            f'Segmenter.from_checkpoint({str(DEMO_CHECKPOINT)!r}, backend="torch")\n')
    result = _run(code, True, cache)
    assert result.returncode != 0
    assert "EngineUnavailableError: backend 'torch' needs the 'torch' package, which is not " \
        "installed: pip install 'smmcl_ros[torch]'" in result.stderr, result.stderr
    # Tensors need torch too: the numpy API does not.
    code = ('from smmcl_core.segmenter import Segmenter\nimport numpy as np\n'
            f'seg = Segmenter.from_checkpoint({str(onnx_file)!r}, backend="auto")\n'
            'seg.preprocess(np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.uint8))\n')
    result = _run(code, True, cache)
    assert 'Segmenter.preprocess (tensors) needs torch, which is not installed: pip install ' \
        "'smmcl_ros[torch]'" in result.stderr, result.stderr


def test_runtime_install_has_no_torch():
    """setup.py: the base install and the CPU engine extras need no torch; make install all."""
    from distutils.core import run_setup  # setuptools' distutils

    dist = run_setup(str(REPO / 'setup.py'), stop_after='init')
    heavy = ('torch', 'torchvision', 'timm')

    def names(requirements):
        return {r.split('>')[0].split('=')[0].split('[')[0] for r in requirements}

    extras = dist.extras_require
    assert not names(dist.install_requires) & set(heavy)
    for runtime in ('openvino', 'onnxruntime'):
        assert not names(extras[runtime]) & set(heavy), runtime
        assert 'onnx' not in names(extras[runtime])  # engines.onnx_props reads the meta
    assert 'onnx' in names(extras['export'])
    for needs_torch in ('torch', 'export', 'train', 'tensorrt'):
        assert {'torch', 'timm'} <= names(extras[needs_torch]), needs_torch
    make_install = (REPO / 'Makefile').read_text()
    assert '.[torch,train,export,openvino,onnxruntime,test]' in make_install


def test_package_xml_torch_dependency_can_be_left_out():
    """The ROS dependencies hold torch unless ``SMMCL_NO_TORCH=1`` (REP 149 condition)."""
    from catkin_pkg.package import parse_package  # installed with colcon (TEST_SPEC)

    package = parse_package(str(REPO / 'package.xml'))
    for environ, want_torch in (({}, True), ({'SMMCL_NO_TORCH': '1'}, False),
                                ({'SMMCL_NO_TORCH': '0'}, True)):
        kept = set()
        for dep in package.exec_depends:
            dep.evaluate_condition(environ)
            if dep.evaluated_condition:
                kept.add(dep.name)
        assert ('python3-pytorch-pip' in kept) == want_torch, environ
        assert {'rclpy', 'python3-numpy', 'python3-opencv'} <= kept
