"""Inference engines behind Segmenter: real exports, real runtimes, real frames.

The bundled demo checkpoint (``smmcl_mit_b0``, RGB-thermal) runs on real MSRS night pairs
through each installed CPU engine and must give the torch masks on >= 99.5% of pixels. The
export cache lives in a per-module temporary folder, so these tests never depend on (or fill)
the user's ``~/.cache/smmcl``.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from smmcl_core.checkpoint import load_checkpoint, save_checkpoint
from smmcl_core.engines import (available, ENGINES, EngineUnavailableError, resolve_backend)
from smmcl_core.engines.cache import cached_graph, file_sha256
from smmcl_core.engines.graph import FoldedMLPHead, read_onnx_props
from smmcl_core.segmenter import Segmenter
from smmcl_ros.demo.bundled import DEMO_CHECKPOINT

CPU_ENGINES = [name for name in ('openvino', 'onnxruntime') if available(name)]
AGREEMENT = 0.995


@pytest.fixture(scope='module', autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.fixture(scope='module')
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp('engine_cache')


@pytest.fixture(scope='module')
def frames():
    """Two real 640x480 MSRS night pairs: RGB uint8 (H,W,3), thermal uint8 (H,W)."""
    from conftest import msrs_night_pairs

    return msrs_night_pairs(0, 2)


@pytest.fixture(scope='module')
def torch_segmenter():
    return Segmenter.from_checkpoint(DEMO_CHECKPOINT, device='cpu')


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


def test_backend_names_and_missing_engines_are_clear_errors():
    with pytest.raises(ValueError, match='valid: auto, torch, openvino, onnxruntime, tensorrt'):
        resolve_backend('tvm', torch.device('cpu'))
    with pytest.raises(EngineUnavailableError, match='runs on CUDA'):
        resolve_backend('tensorrt', torch.device('cpu'))
    with pytest.raises(EngineUnavailableError, match='does not run precision'):
        resolve_backend('onnxruntime', torch.device('cpu'), 'bf16')
    assert resolve_backend('torch', torch.device('cpu')) == 'torch'
    expected = next(n for n in ('openvino', 'onnxruntime', 'torch') if available(n))
    assert resolve_backend('auto', torch.device('cpu')) == expected
    assert resolve_backend('auto', torch.device('cuda')) == \
        ('tensorrt' if available('tensorrt') else 'torch')
    missing = [n for n, spec in ENGINES.items() if not available(n)]
    if not missing:
        pytest.skip('every engine runtime is installed here')
    name = missing[0]
    device = torch.device(ENGINES[name].device)
    with pytest.raises(EngineUnavailableError, match=rf"pip install 'smmcl_ros\[{name}\]'"):
        resolve_backend(name, device)
    # Through the public API, before any export happens.
    if device.type == 'cpu':
        with pytest.raises(EngineUnavailableError, match=name):
            Segmenter.from_checkpoint(DEMO_CHECKPOINT, device='cpu', backend=name)


def test_folded_mlp_head_is_the_same_function():
    from smmcl_core.models import create_model

    torch.manual_seed(0)
    model = create_model('smmcl_mit_b0', 7).eval()
    head = model.decoder
    feats = [torch.randn(2, c, 24 // s * 4, 32 // s * 4)
             for c, s in zip(head.in_channels, (1, 2, 4, 8))]
    with torch.no_grad():
        head.fuse_norm.running_mean.uniform_(-1, 1)  # non-trivial BatchNorm statistics
        head.fuse_norm.running_var.uniform_(0.5, 2)
        expected = head(feats)
        folded = FoldedMLPHead(head).eval()(feats)
    torch.testing.assert_close(folded, expected, atol=1e-4, rtol=1e-4)
    # The folded head holds plain 1x1 convs: no weight products left for the graph.
    assert all(conv.weight.shape[1] == c for conv, c in
               zip(FoldedMLPHead(head).stage_convs, head.in_channels))


@pytest.mark.parametrize('backend', CPU_ENGINES)
def test_engine_masks_match_torch_on_real_frames(backend, cache, frames, torch_segmenter):
    seg = Segmenter.from_checkpoint(DEMO_CHECKPOINT, device='cpu', backend=backend,
                                    cache_dir=cache)
    assert (seg.backend, seg.precision, seg.device.type) == (backend, 'fp32', 'cpu')
    assert seg.class_names == torch_segmenter.class_names
    assert seg.engine.runs_numpy  # predict runs in numpy (inference_np), torch not involved
    for rgb, thermal in frames:
        labels, conf = seg.predict(rgb, thermal, return_confidence=True)
        ref_labels, ref_conf = torch_segmenter.predict(rgb, thermal, return_confidence=True)
        assert labels.shape == (480, 640) and labels.dtype == np.uint8
        assert _agreement(labels, ref_labels) >= AGREEMENT
        assert np.abs(conf - ref_conf).max() < 1e-2
        # The engine on tensors (predict_logits, as smmcl-evaluate runs it) agrees too.
        with torch.inference_mode():
            tensor_labels = seg.predict_logits(*seg.preprocess(rgb, thermal))[0].argmax(0)
        assert _agreement(tensor_labels.numpy(), labels) >= 0.9999
    # A new image size (not a multiple of 32) needs no new export.
    rgb, thermal = frames[0][0][:301, :417], frames[0][1][:301, :417]
    assert _agreement(seg.predict(rgb, thermal), torch_segmenter.predict(rgb, thermal)) \
        >= AGREEMENT
    # A one-channel aux tensor is replicated before the graph, as the network does.
    rgb_t, aux_t = seg.preprocess(*frames[1])
    one = aux_t[:, :1].expand(-1, 3, -1, -1).contiguous()
    torch.testing.assert_close(seg.model(rgb_t, aux_t[:, :1]), seg.model(rgb_t, one))


@pytest.mark.parametrize('backend', CPU_ENGINES[:1])
def test_sliding_window_and_flip_run_through_the_engine(backend, cache, frames):
    options = dict(crop=(256, 320), stride=(224, 288), flip=True)
    seg = Segmenter.from_checkpoint(DEMO_CHECKPOINT, device='cpu', backend=backend,
                                    cache_dir=cache, **options)
    ref = Segmenter.from_checkpoint(DEMO_CHECKPOINT, device='cpu', **options)
    rgb, thermal = frames[0]
    assert _agreement(seg.predict(rgb, thermal), ref.predict(rgb, thermal)) >= AGREEMENT


@pytest.mark.skipif(not CPU_ENGINES, reason='no CPU engine installed')
def test_export_cache_reuses_and_rebuilds_what_it_cannot_trust(cache, tmp_path):
    state = load_checkpoint(DEMO_CHECKPOINT)
    name = CPU_ENGINES[0]
    first = cached_graph(DEMO_CHECKPOINT, name, cache, state=state)
    inode = first.stat().st_ino  # a rebuilt file is a new one renamed into place
    assert cached_graph(DEMO_CHECKPOINT, name, cache, state=state) == first
    assert first.stat().st_ino == inode  # valid: not exported again (a hit only touches it)

    # A corrupted graph (same size, flipped bytes) is detected by its hash and rebuilt.
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0xFF
    first.write_bytes(bytes(data))
    again = cached_graph(DEMO_CHECKPOINT, name, cache, state=state)
    assert again == first and file_sha256(again) == json.loads(
        again.with_suffix('.json').read_text())['sha256']
    seg = Segmenter.from_checkpoint(DEMO_CHECKPOINT, device='cpu', backend=name,
                                    cache_dir=cache)
    assert seg.backend == name

    # A truncated manifest too.
    again.with_suffix('.json').write_text('{"key": ')
    inode = again.stat().st_ino
    assert cached_graph(DEMO_CHECKPOINT, name, cache, state=state) == again
    assert again.stat().st_ino != inode

    # Other checkpoint content -> another key (here: the same weights, one meta key added,
    # which must also travel into the graph's metadata).
    state['meta']['rgb_order'] = 'rgb'
    other = tmp_path / 'other.pth'
    save_checkpoint(other, state)
    graph = cached_graph(other, name, cache)
    assert graph != first
    meta, info = read_onnx_props(graph)
    assert meta['rgb_order'] == 'rgb' and info['checkpoint_sha256'] == file_sha256(other)
    assert info['dynamic_hw'] is True


@pytest.mark.skipif(not CPU_ENGINES, reason='no CPU engine installed')
def test_exported_onnx_runs_without_the_checkpoint(tmp_path, cache, frames, torch_segmenter):
    from smmcl_core.cli import export as export_cli

    onnx_path = tmp_path / 'model.onnx'
    assert export_cli.main(['--checkpoint', str(DEMO_CHECKPOINT), '--format', 'onnx',
                            '--out', str(onnx_path), '--height', '96', '--width', '128',
                            '--dynamic-hw', '--verify']) == 0
    seg = Segmenter.from_checkpoint(onnx_path, device='cpu', backend='auto', cache_dir=cache)
    assert seg.backend == CPU_ENGINES[0]
    assert seg.meta == dict(torch_segmenter.meta)  # classes, palette, normalisation, modality
    rgb, thermal = frames[1]
    assert _agreement(seg.predict(rgb, thermal), torch_segmenter.predict(rgb, thermal)) \
        >= AGREEMENT
    with pytest.raises(ValueError, match='not ONNX files'):
        Segmenter.from_checkpoint(onnx_path, device='cpu', backend='torch')

    # A fixed-size export names the size it accepts.
    static = tmp_path / 'static.onnx'
    assert export_cli.main(['--checkpoint', str(DEMO_CHECKPOINT), '--format', 'onnx',
                            '--out', str(static), '--height', '96', '--width', '128']) == 0
    seg = Segmenter.from_checkpoint(static, device='cpu', backend=CPU_ENGINES[-1])
    assert seg.predict(rgb[:96, :128], thermal[:96, :128]).shape == (96, 128)
    with pytest.raises(ValueError, match='exported for 96x128 input.*--dynamic-hw'):
        seg.predict(rgb, thermal)

    # An ONNX file without smmcl metadata is refused with the file's name.
    import onnx

    proto = onnx.load(str(static))
    del proto.metadata_props[:]
    bare = tmp_path / 'bare.onnx'
    onnx.save(proto, str(bare))
    with pytest.raises(ValueError, match='bare.onnx carries no .smmcl_meta'):
        Segmenter.from_checkpoint(bare, device='cpu', backend='auto')


@pytest.mark.skipif(not available('openvino'), reason='needs openvino')
def test_openvino_bf16_is_refused_with_the_reason():
    from smmcl_core.engines.openvino_engine import cpu_supports_bf16

    # Issue 21: OpenVINO's AMX bf16 path read past a buffer (SIGSEGV); bf16 is refused on
    # every CPU, naming why, and auto falls back to torch.
    reason = 'reads past a buffer' if cpu_supports_bf16() else 'no native bf16'
    with pytest.raises(EngineUnavailableError, match=reason):
        resolve_backend('openvino', torch.device('cpu'), 'bf16')
    assert resolve_backend('auto', torch.device('cpu'), 'bf16') == 'torch'
    assert resolve_backend('openvino', torch.device('cpu'), 'fp32') == 'openvino'


def _alternate_signal_stack_is_mapped() -> bool:
    """Whether this thread's alternate signal stack (if any) lies in mapped memory."""
    import ctypes

    class Stack(ctypes.Structure):
        _fields_ = [('ss_sp', ctypes.c_void_p), ('ss_flags', ctypes.c_int),
                    ('ss_size', ctypes.c_size_t)]

    stack = Stack()
    assert ctypes.CDLL(None).sigaltstack(None, ctypes.byref(stack)) == 0
    if stack.ss_flags & 2 or not stack.ss_sp:  # SS_DISABLE: signals use the thread's stack
        return True
    with open('/proc/self/maps') as maps:
        spans = [line.split()[0].split('-') for line in maps]
    return any(int(lo, 16) <= stack.ss_sp < int(hi, 16) for lo, hi in spans)


@pytest.mark.skipif(not available('openvino'), reason='needs openvino')
def test_openvino_engines_freed_in_any_order_keep_the_signal_stack_mapped(cache, tmp_path):
    # Issue 21: each ov.Core's CPU plugin swapped in its own alternate signal stack and
    # unmapped it when freed; engines freed in creation order left the thread's signal stack
    # in unmapped memory, and a later Python signal handler (SA_ONSTACK) crashed the process.
    import gc

    from smmcl_core.engines.openvino_engine import OpenVINOEngine

    graph = cached_graph(DEMO_CHECKPOINT, 'openvino', cache)
    x = np.zeros((1, 3, 64, 64), np.float32)
    engines = [OpenVINOEngine(graph, 'fp32', torch.device('cpu'), 6, threads=1)
               for _ in range(2)]
    for engine in engines:
        assert engine.run(x, x).shape == (1, 6, 64, 64)  # compiles: the plugin is loaded
    assert _alternate_signal_stack_is_mapped()
    del engine
    engines.pop(0)  # the first engine goes first: not the reverse of creation
    gc.collect()
    assert _alternate_signal_stack_is_mapped()
    engines.clear()
    gc.collect()
    assert _alternate_signal_stack_is_mapped()


@pytest.mark.skipif(not available('openvino'), reason='needs openvino')
def test_openvino_keeps_few_compiled_shapes_and_all_a_prediction_needs(cache, frames,
                                                                       torch_segmenter):
    # Issue 21: every compiled shape holds its own activation memory, and keeping 4 let the
    # node's RSS climb over frame-size changes; 2 are kept, or one per scale plus a spare.
    rgb, thermal = frames[0]
    plain = Segmenter.from_checkpoint(DEMO_CHECKPOINT, device='cpu', backend='openvino',
                                      cache_dir=cache)
    assert plain.engine.max_shapes == 2
    for h, w in ((480, 640), (240, 320), (352, 480), (480, 640)):
        labels = plain.predict(rgb[:h, :w], thermal[:h, :w])
        want = torch_segmenter.predict(rgb[:h, :w], thermal[:h, :w])
        assert _agreement(labels, want) >= AGREEMENT, (h, w)
    # The newest two, most recent last: 480x640 was evicted and compiled again.
    assert list(plain.engine._compiled) == [(1, 3, 352, 480), (1, 3, 480, 640)]

    scales = (0.5, 0.75, 1.0)
    multi = Segmenter.from_checkpoint(DEMO_CHECKPOINT, device='cpu', backend='openvino',
                                      cache_dir=cache, scales=scales)
    assert multi.engine.max_shapes == len(scales) + 1
    multi.predict(rgb, thermal)
    requests = dict(multi.engine._compiled)
    assert len(requests) == len(scales)
    multi.predict(rgb, thermal)  # the second frame compiles nothing: all three shapes kept
    assert all(multi.engine._compiled[shape] is request for shape, request in requests.items())


def test_metadata_props_read_from_the_wire_format_equal_onnx_load(cache, tmp_path):
    """``read_onnx_props`` needs no onnx package and reads nothing of the graph."""
    import onnx

    from smmcl_core.engines.onnx_props import read_metadata_props

    graph = cached_graph(DEMO_CHECKPOINT, CPU_ENGINES[0] if CPU_ENGINES else 'onnxruntime',
                         cache)
    want = {p.key: p.value for p in onnx.load(str(graph)).metadata_props}
    assert set(want) >= {'smmcl_meta', 'smmcl_graph'}
    assert read_metadata_props(graph) == want
    # A model written by onnx itself with extra entries, non-ASCII text and no graph.
    model = onnx.helper.make_model(onnx.helper.make_graph([], 'empty', [], []))
    onnx.helper.set_model_props(model, {'a': 'x' * 300, 'b': 'thermique à 640 px', 'c': ''})
    small = tmp_path / 'small.onnx'
    onnx.save(model, str(small))
    assert read_metadata_props(small) == {'a': 'x' * 300, 'b': 'thermique à 640 px', 'c': ''}
    # Damaged files: named, never a silent empty result.
    cut = tmp_path / 'cut.onnx'
    cut.write_bytes(graph.read_bytes()[:1000])
    with pytest.raises(ValueError, match='cut.onnx is not a readable ONNX file'):
        read_onnx_props(cut)
    text = tmp_path / 'text.onnx'
    text.write_text('not a model\n' * 10)
    with pytest.raises(ValueError, match='text.onnx'):
        read_onnx_props(text)
