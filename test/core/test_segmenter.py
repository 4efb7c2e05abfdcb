"""Inference (sliding window, flip, scales), Segmenter on raw images, and visualisation."""

import cv2
import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from smmcl_core.checkpoint import build_checkpoint, build_meta, load_checkpoint, save_checkpoint
from smmcl_core.config import ExperimentConfig
from smmcl_core.data.tensors import to_input_tensors
from smmcl_core.engines import ENGINES
from smmcl_core.engines.torch_engine import TorchEngine
from smmcl_core.inference import predict_logits
from smmcl_core.models import create_model
from smmcl_core.segmenter import Segmenter
from smmcl_core.utils.devices import resolve_device
from smmcl_core.visualize import colorize_labels, overlay, save_confusion_matrix

K = 5


class PixelModel(nn.Module):
    """Per-pixel (1x1) classifier: translation- and flip-equivariant."""

    def __init__(self, num_classes=K, divisor=1):
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Conv2d(6, num_classes, 1)
        self.divisor = divisor
        self.num_classes = num_classes
        self.sizes = []

    def forward(self, rgb, aux, return_embeddings=False):
        """Logits (and embeddings when asked)."""
        self.sizes.append(tuple(rgb.shape[-2:]))
        assert rgb.shape[-2] % self.divisor == 0 and rgb.shape[-1] % self.divisor == 0
        return self.head(torch.cat([rgb, aux], 1))


class LeftRightModel(nn.Module):
    """Not flip-equivariant: a horizontal gradient feature."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.head = nn.Conv2d(6, K, (1, 3), padding=(0, 1))

    def forward(self, rgb, aux):
        """Logits (and embeddings when asked)."""
        return self.head(torch.cat([rgb, aux], 1))


def _inputs(h=50, w=70, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, h, w, generator=g), torch.randn(b, 3, h, w, generator=g)


def test_sliding_window_equals_whole_image_for_pixelwise_model():
    """Sliding window equals whole image for pixelwise model."""
    model = PixelModel()
    rgb, aux = _inputs()
    whole = predict_logits(model, rgb, aux, K, size_divisor=1)
    # overlapping windows (stride < crop), a ragged last window, and several rows/columns
    slid = predict_logits(model, rgb, aux, K, crop=(32, 32), stride=(20, 13), size_divisor=1)
    assert slid.shape == (2, K, 50, 70)
    torch.testing.assert_close(slid, whole, atol=1e-5, rtol=1e-5)
    # rows: ceil((50-32)/20)+1 = 2; cols: ceil((70-32)/13)+1 = 4
    assert model.sizes.count((32, 32)) == 8


def test_window_covering_image_equals_whole_image_real_model(segmenter):
    """Window covering image equals whole image real model."""
    model = segmenter.model
    rgb, aux = _inputs(64, 96, b=1)
    whole = predict_logits(model, rgb, aux, K)
    slid = predict_logits(model, rgb, aux, K, crop=(64, 96))
    torch.testing.assert_close(slid, whole)


def test_image_smaller_than_crop_is_padded_and_cropped_back():
    """Image smaller than crop is padded and cropped back."""
    model = PixelModel()
    rgb, aux = _inputs(20, 30, b=1)
    out = predict_logits(model, rgb, aux, K, crop=(32, 48), size_divisor=1)
    assert out.shape == (1, K, 20, 30)
    assert model.sizes == [(32, 48)]
    torch.testing.assert_close(out, model.head(torch.cat([rgb, aux], 1)))


def test_size_divisor_pads_then_crops():
    """Size divisor pads then crops."""
    model = PixelModel(divisor=32)
    rgb, aux = _inputs(50, 70, b=1)
    out = predict_logits(model, rgb, aux, K)
    assert model.sizes == [(64, 96)]
    torch.testing.assert_close(out, model.head(torch.cat([rgb, aux], 1)))


def test_flip_with_flip_equivariant_model_keeps_probabilities():
    """Flip with flip equivariant model keeps probabilities."""
    model = PixelModel()
    rgb, aux = _inputs()
    single = predict_logits(model, rgb, aux, K).softmax(1)
    flipped = predict_logits(model, rgb, aux, K, flip=True).softmax(1)
    torch.testing.assert_close(flipped, single, atol=1e-5, rtol=1e-5)


def test_flip_averages_probabilities_of_both_directions():
    """Flip averages probabilities of both directions."""
    model = LeftRightModel()
    rgb, aux = _inputs(32, 32, b=1)
    got = predict_logits(model, rgb, aux, K, flip=True).softmax(1)
    p0 = model(rgb, aux).softmax(1)
    p1 = model(rgb.flip(-1), aux.flip(-1)).flip(-1).softmax(1)
    assert not torch.allclose(p0, p1, atol=1e-3)  # the model really is direction-sensitive
    torch.testing.assert_close(got, (p0 + p1) / 2, atol=1e-5, rtol=1e-5)


def test_multiscale_averages_resized_probabilities():
    """Multiscale averages resized probabilities."""
    model = PixelModel()
    rgb, aux = _inputs(32, 48, b=1)
    got = predict_logits(model, rgb, aux, K, scales=(1.0, 0.5), size_divisor=1).softmax(1)
    p_full = model(rgb, aux).softmax(1)
    small = model(F.interpolate(rgb, scale_factor=0.5, mode='bilinear'),
                  F.interpolate(aux, scale_factor=0.5, mode='bilinear'))
    p_half = F.interpolate(small, size=(32, 48), mode='bilinear').softmax(1)
    torch.testing.assert_close(got, (p_full + p_half) / 2, atol=1e-5, rtol=1e-5)


def test_predict_logits_rejects_bad_arguments():
    """Predict logits rejects bad arguments."""
    model = PixelModel()
    rgb, aux = _inputs(32, 32, b=1)
    with pytest.raises(ValueError, match='num_classes'):
        predict_logits(model, rgb, aux, K + 1)
    with pytest.raises(ValueError, match='differ'):
        predict_logits(model, rgb, aux[..., :16], K)
    with pytest.raises(ValueError, match='scales'):
        predict_logits(model, rgb, aux, K, scales=(0.0,))


# ---------------------------------------------------------------- Segmenter
def _meta(num_classes=K):
    names = [f'c{i}' for i in range(num_classes)]
    palette = [[i * 40, 255 - i * 40, i * 10] for i in range(num_classes)]
    return build_meta('smmcl_mit_b0', num_classes, names, palette, 'depth',
                      aux_ranges={'depth_max_m': 8.0})


@pytest.fixture(scope='module')
def checkpoint_path(tmp_path_factory):
    """Checkpoint path."""
    torch.manual_seed(0)
    model = create_model('smmcl_mit_b0', K)
    path = tmp_path_factory.mktemp('ckpt') / 'model.pth'
    save_checkpoint(path, build_checkpoint(model, ExperimentConfig(), _meta()))
    return path


@pytest.fixture(scope='module')
def segmenter(checkpoint_path):
    """Segmenter."""
    return Segmenter.from_checkpoint(checkpoint_path, device='cpu')


def _raw(h=50, w=70, seed=0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    depth_mm = rng.integers(0, 9000, (h, w), dtype=np.uint16)
    return rgb, depth_mm


def test_resolve_device_auto():
    """Resolve device auto."""
    assert resolve_device('auto').type == ('cuda' if torch.cuda.is_available() else 'cpu')
    assert resolve_device('cpu') == torch.device('cpu')


def test_segmenter_from_checkpoint_matches_manual_pipeline(segmenter):
    """Segmenter from checkpoint matches manual pipeline."""
    seg = segmenter
    assert seg.class_names == [f'c{i}' for i in range(K)]
    assert seg.palette.dtype == np.uint8 and seg.palette.shape == (K, 3)
    assert seg.aux_modality == 'depth' and seg.num_classes == K
    assert not seg.model.training

    rgb, depth = _raw()  # 50x70: not a multiple of 32
    labels, conf = seg.predict(rgb, depth, return_confidence=True)
    assert labels.dtype == np.uint8 and labels.shape == (50, 70)
    assert conf.dtype == np.float32 and conf.shape == (50, 70)
    assert labels.max() < K
    assert np.all(conf >= 1.0 / K - 1e-6) and np.all(conf <= 1.0 + 1e-6)
    np.testing.assert_array_equal(seg.predict(rgb, depth), labels)

    # Same numbers through the documented pieces: preprocess with meta, pad to 64x96, crop.
    rgb_t, aux_t = to_input_tensors(rgb, depth, 'depth', depth_max_m=8.0)
    x = F.pad(rgb_t[None], (0, 26, 0, 14))
    y = F.pad(aux_t[None], (0, 26, 0, 14))
    with torch.no_grad():
        logits = seg.model(x, y)[0, :, :50, :70]
    probs = logits.softmax(0)
    np.testing.assert_array_equal(labels, probs.argmax(0).numpy().astype(np.uint8))
    np.testing.assert_allclose(conf, probs.max(0).values.numpy(), atol=1e-5)


def test_segmenter_depth_metres_equals_millimetres(segmenter):
    """Segmenter depth metres equals millimetres."""
    seg = segmenter
    rgb, depth_mm = _raw(40, 40, seed=3)
    metres = depth_mm.astype(np.float32) / 1000.0
    np.testing.assert_array_equal(seg.predict(rgb, depth_mm), seg.predict(rgb, metres))


def test_segmenter_rejects_bad_inputs(segmenter):
    """Segmenter rejects bad inputs."""
    seg = segmenter
    rgb, depth = _raw(32, 32)
    with pytest.raises(ValueError, match='rgb must be a uint8'):
        seg.predict(rgb.astype(np.float32), depth)
    with pytest.raises(ValueError, match='rgb must be a uint8'):
        seg.predict(rgb[..., 0], depth)
    with pytest.raises(ValueError, match='aspect ratios differ.*aux_registration'):
        seg.predict(rgb, depth[:16])  # the default aux_registration (auto) refuses it
    with pytest.raises(ValueError, match='aux size'):
        seg.preprocess(rgb, depth[:16])  # preprocess wants a registered pair
    with pytest.raises(ValueError, match='depth'):
        seg.predict(rgb, depth.astype(np.int32))


def test_segmenter_fp16_on_cpu_falls_back_with_warning():
    """Segmenter fp16 on cpu falls back with warning."""
    with pytest.warns(RuntimeWarning, match='fp16'):
        seg = Segmenter(PixelModel(), _meta(), device='cpu', precision='fp16')
    assert seg.precision == 'fp32'
    rgb, depth = _raw(8, 8)
    assert seg.predict(rgb, depth).shape == (8, 8)
    with pytest.raises(ValueError, match='precision'):
        Segmenter(PixelModel(), _meta(), device='cpu', precision='int8')
    with pytest.raises(ValueError, match='classes'):
        Segmenter(PixelModel(K + 1), _meta(), device='cpu')


def test_segmenter_checkpoint_weights_must_fit_preset(tmp_path, checkpoint_path):
    """Segmenter checkpoint weights must fit preset."""
    state = load_checkpoint(checkpoint_path)
    state['model'].pop(next(iter(state['model'])))
    bad = tmp_path / 'bad.pth'
    save_checkpoint(bad, state)
    with pytest.raises(RuntimeError, match='bad.pth'):
        Segmenter.from_checkpoint(bad, device='cpu')


# ---------------------------------------------------------------- visualisation
def test_colorize_labels_and_overlay():
    """Colourise and overlay."""
    palette = np.array([[255, 0, 0], [0, 255, 0]], np.uint8)
    labels = np.array([[0, 1], [255, 1]], np.uint8)
    color = colorize_labels(labels, palette)
    np.testing.assert_array_equal(color, [[[255, 0, 0], [0, 255, 0]],
                                          [[0, 0, 0], [0, 255, 0]]])
    np.testing.assert_array_equal(colorize_labels(labels.astype(np.int64), palette), color)
    rgb = np.full((2, 2, 3), 100, np.uint8)
    mixed = overlay(rgb, color, alpha=0.25)
    assert mixed[0, 0].tolist() == [139, 75, 75]  # 0.75*100 + 0.25*255 = 138.75
    masked = overlay(rgb, color, alpha=1.0, mask=labels != 255)
    assert masked[1, 0].tolist() == [100, 100, 100] and masked[0, 1].tolist() == [0, 255, 0]
    with pytest.raises(ValueError):
        overlay(rgb, color[:1])


def test_confusion_matrix_png(tmp_path):
    """Confusion matrix png."""
    path = save_confusion_matrix(np.array([[5, 1], [0, 4]]), ['a', 'b'], tmp_path / 'cm.png',
                                 title='test')
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 100 and image.std() > 0


def test_segmenter_holds_a_torch_engine_for_a_network(checkpoint_path):
    """A network is wrapped in the torch entry of the engine table; same logits as the net."""
    net = PixelModel()
    seg = Segmenter(net, _meta(), device='cpu')
    assert isinstance(seg.engine, TorchEngine) and seg.backend == 'torch'
    assert seg.model is net and seg.engine.__class__.__name__ == ENGINES['torch'].cls
    rgb, depth = _raw(16, 24)
    rgb_t, aux_t = seg.preprocess(rgb, depth)
    with torch.no_grad():
        expected = net(rgb_t, aux_t)
    torch.testing.assert_close(seg.predict_logits(rgb_t, aux_t), expected, rtol=0, atol=0)
    loaded = Segmenter.from_checkpoint(checkpoint_path, device='cpu')
    assert isinstance(loaded.engine, TorchEngine)
    assert loaded.model is loaded.engine.network and loaded.model.num_classes == K
