"""One-call inference on raw images: the single path shared by the CLI, the ROS node and bag tools.

Public API (frozen):

- ``Segmenter(model, meta, device='auto', precision='fp32', crop=None, stride=None,
  scales=(1.0,), flip=False, channels_last=None, aux_registration='auto', aux_homography=None,
  aux_K=None, rgb_K=None, aux_to_rgb=None)``
- ``Segmenter.from_checkpoint(path, device='auto', precision='fp32', backend='torch',
  cache_dir=None, **options)``: rebuilds the network with ``create_model(meta['preset'],
  meta['num_classes'])`` (no pretrained download), loads the weights (``weights_only``), eval
  mode. ``backend`` picks the inference engine (``smmcl_core.engines``: ``torch``,
  ``openvino``, ``onnxruntime``, ``tensorrt`` or ``auto`` = the fastest installed one for the
  device); the non-torch engines run the exported ONNX graph, exported once and cached under
  ``cache_dir``. ``path`` may also be an ``.onnx`` file written by ``smmcl-export`` (its
  metadata carries the checkpoint meta).
- ``Segmenter.predict(rgb, aux, return_confidence=False)``: ``rgb uint8 (H,W,3)``, ``aux`` raw
  (``uint16`` depth mm, ``float32`` depth m, ``uint8``/``uint16`` thermal, ``uint8 (H,W,3)``
  HHA) -> labels ``uint8 (H,W)``, or ``(labels, confidence float32 (H,W))`` where confidence
  is the max softmax probability.
- ``Segmenter.preprocess(rgb, aux) -> (rgb (1,3,H,W), aux (1,3,H,W))`` on the device (``aux``
  already registered: the sizes must match).

Unregistered cameras (README "Unregistered cameras"): ``predict`` first brings ``aux`` into the
RGB frame with ``aux_registration`` (``smmcl_core.data.fixed_registration``): ``auto`` (same
size as is, same aspect ratio resized, another aspect ratio refused with a ``RegistrationError``
naming ``aux_registration``), ``none``, ``resize``, ``homography`` (``aux_homography``, 9
numbers row-major, aux pixel -> RGB pixel), ``depth`` (needs ``aux_K``, ``rgb_K`` and
``aux_to_rgb``; a missing one is a ``ValueError`` naming it at construction).
- Attributes: ``engine`` (always an ``smmcl_core.engines.Engine``: a callable ``(rgb, aux) ->
  logits`` module; ``TorchEngine`` for the torch backend), ``model`` (``engine.network``: the
  torch network for the torch backend, else the engine), ``backend`` (the engine's name), ``meta``,
  ``class_names`` (list), ``palette`` ((K,3) uint8), ``aux_modality``, ``aux_ranges``,
  ``conventions`` (``input_conventions(meta)``),
  ``num_classes``, ``ignore_index``, ``device``, ``precision``.

Precision: ``'fp32'`` everywhere; ``'fp16'``/``'bf16'`` run the torch network under CUDA
autocast (``TorchEngine``). On CPU, ``'fp16'``/``'bf16'`` fall back to fp32 with a
``RuntimeWarning`` (so one launch file works on a laptop and on the robot); ``precision``
then reads ``'fp32'``. Engines run their own precisions (OpenVINO ``bf16`` on CPUs with
native bf16, TensorRT ``fp16``); ``auto`` skips an engine that cannot run the requested
precision.

Any image size works: the network input is padded to a multiple of 32 and the logits
cropped back (see ``smmcl_core.inference``). A checkpoint trained with ``data.resize``
(``meta['resize'] = [H, W]``) runs the network at that size: ``preprocess`` resizes the
normalised tensors and ``predict`` brings the logits back to the image size
(``smmcl_core.data.resize``), whatever runs the network in between.

torch is imported only by the torch paths: the torch backend, ``preprocess`` /
``predict_logits`` (tensors), and exporting a checkpoint without a cached graph. An engine
that runs numpy arrays (``Engine.runs_numpy``: OpenVINO, ONNX Runtime) makes ``predict`` run
in numpy end to end (``data.preprocess``, ``data.resize``, ``inference_np``), so a node on an
exported graph never loads torch.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence, Tuple, TYPE_CHECKING, Union

import numpy as np

from smmcl_core.data.fixed_registration import FixedRegistration
from smmcl_core.data.preprocess import input_conventions, to_input_arrays
from smmcl_core.data.resize import (check_resize, resize_input_arrays, resize_inputs,
                                    restore_logit_arrays, restore_logits)
from smmcl_core.engines import Engine, PRECISIONS
from smmcl_core.engines.load import engine_from_checkpoint
from smmcl_core.inference_np import labels_from_logits, predict_logits_np
from smmcl_core.meta import META_KEYS
from smmcl_core.utils.optional import import_torch

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ['PRECISIONS', 'Segmenter']


class Segmenter:
    """A trained network plus the preprocessing metadata it was trained with.

    Args:
        model: Network with the ``SMMCLNet`` forward contract.
        meta: Checkpoint ``meta`` dict (see ``smmcl_core.checkpoint``).
        device: ``'auto'``, ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ...
        precision: ``'fp32'``, ``'fp16'`` or ``'bf16'`` (see the module docstring).
        crop: Sliding-window size ``(h, w)`` or one int; ``None``/``[]`` = whole image.
        stride: Sliding-window stride; default 2/3 of ``crop``.
        scales: Multi-scale factors.
        flip: Average with the horizontally flipped prediction.
        channels_last: Use the channels-last memory format; ``None`` = on CUDA only.
        aux_registration: How ``predict`` brings ``aux`` into the RGB frame (module docstring).
        aux_homography: ``homography``: aux pixel -> RGB pixel (9 numbers or 3x3).
        aux_K: ``depth``: the depth camera's intrinsics (3x3, at the depth image's size).
        rgb_K: ``depth``: the RGB camera's intrinsics (3x3).
        aux_to_rgb: ``depth``: ``[x, y, z, qx, qy, qz, qw]`` (metres) or 4x4, the depth
            optical frame in the RGB optical frame.

    ``model`` may also be an ``smmcl_core.engines.Engine``: it then decides device and
    precision (``device``, ``precision`` and ``channels_last`` are taken from it); a network
    is wrapped in a ``TorchEngine`` with them.

    Raises:
        ValueError: unknown precision, meta lacks keys, model class count differs, or a bad
            or incomplete registration option (named).
    """

    def __init__(self, model: nn.Module, meta: Mapping[str, Any],
                 device: Union[str, torch.device] = 'auto', precision: str = 'fp32',
                 crop: Optional[Sequence[int]] = None, stride: Optional[Sequence[int]] = None,
                 scales: Sequence[float] = (1.0,), flip: bool = False,
                 channels_last: Optional[bool] = None, aux_registration: str = 'auto',
                 aux_homography: Optional[Sequence[float]] = None, aux_K: Any = None,
                 rgb_K: Any = None, aux_to_rgb: Any = None):
        missing = [k for k in META_KEYS if k not in meta]
        if missing:
            raise ValueError(f'Segmenter meta lacks key(s): {", ".join(missing)}')
        self.num_classes = int(meta['num_classes'])
        if not isinstance(model, Engine):
            from smmcl_core.engines.torch_engine import TorchEngine
            from smmcl_core.utils.devices import resolve_device

            model = TorchEngine(model, precision, resolve_device(device), self.num_classes,
                                channels_last)
        if model.num_classes != self.num_classes:
            raise ValueError(f'model has {model.num_classes} classes, meta says '
                             f'{self.num_classes}')
        if self.num_classes > 256:
            raise ValueError(f'{self.num_classes} classes do not fit uint8 labels')
        self.engine = model.eval()
        self.backend = self.engine.name
        self.device = self.engine.device
        self.precision = self.engine.precision
        self.meta = dict(meta)
        self.class_names = list(meta['class_names'])
        self.palette = np.asarray(meta['palette'], np.uint8).reshape(-1, 3)
        self.aux_modality = str(meta['aux_modality'])
        self.aux_ranges = dict(meta['aux_ranges'] or {})
        self.mean = tuple(float(v) for v in meta['mean'])
        self.std = tuple(float(v) for v in meta['std'])
        self.ignore_index = int(meta['ignore_index'])
        self.resize = check_resize(meta.get('resize'), "meta['resize']")  # None: native
        # channel_order / aux_encoding (e.g. the released weights' BGR and 8-bit grey aux).
        self.conventions = input_conventions(self.meta)
        self.crop = _pair(crop)
        self.stride = _pair(stride)
        self.scales = tuple(float(s) for s in scales)
        self.flip = bool(flip)
        if hasattr(self.engine, 'max_shapes'):  # one input shape per scale, plus a spare
            self.engine.max_shapes = max(self.engine.max_shapes, len(self.scales) + 1)
        self.registration = FixedRegistration(aux_registration, self.aux_modality,
                                              aux_homography, aux_K, rgb_K, aux_to_rgb)

    @property
    def model(self) -> nn.Module:
        """The torch network (torch backend) or the engine (the others)."""
        return self.engine.network

    @property
    def memory_format(self) -> torch.memory_format:
        """Memory format of the tensors ``preprocess`` makes (imports torch)."""
        return self.engine.memory_format

    @classmethod
    def from_checkpoint(cls, path: Union[str, os.PathLike],
                        device: Union[str, torch.device] = 'auto', precision: str = 'fp32',
                        backend: str = 'torch',
                        cache_dir: Optional[Union[str, os.PathLike]] = None,
                        **options) -> 'Segmenter':
        """Load a checkpoint written by the training CLI and build a ready ``Segmenter``.

        Args:
            path: Checkpoint file (needs ``model`` and ``meta``), or an ONNX file written by
                ``smmcl-export`` (engine backends only).
            device: See :class:`Segmenter`.
            precision: See :class:`Segmenter`.
            backend: ``'torch'``, ``'openvino'``, ``'onnxruntime'``, ``'tensorrt'`` or
                ``'auto'`` (see ``smmcl_core.engines``).
            cache_dir: Engine cache folder (default ``$SMMCL_CACHE_DIR`` or
                ``~/.cache/smmcl``).
            **options: ``crop``, ``stride``, ``scales``, ``flip``, ``channels_last``,
                ``aux_registration``, ``aux_homography``, ``aux_K``, ``rgb_K``, ``aux_to_rgb``.

        Raises:
            FileNotFoundError, CheckpointError: unreadable checkpoint (see ``load_checkpoint``).
            KeyError: the preset in ``meta`` is unknown to ``create_model``.
            RuntimeError: the weights do not fit the rebuilt network (message names the file).
            ValueError: unknown backend, or an ONNX file without smmcl metadata.
            EngineUnavailableError: (a ``ValueError``) an engine named explicitly is not
                installed (the message names the pip extra) or cannot run on this device or
                at this precision.
        """
        engine, meta = engine_from_checkpoint(path, backend, device, precision, cache_dir,
                                              options.pop('channels_last', None))
        return cls(engine, meta, **options)

    # ------------------------------------------------------------------ inference
    def _check_inputs(self, rgb: np.ndarray, aux: np.ndarray) -> None:
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 \
                or rgb.shape[2] != 3:
            raise ValueError(f'rgb must be a uint8 (H,W,3) numpy array, got '
                             f'{_describe(rgb)}')
        if not isinstance(aux, np.ndarray):
            raise ValueError(f'aux must be a numpy array, got {type(aux).__name__}')
        if aux.shape[:2] != rgb.shape[:2]:
            raise ValueError(f'aux size {aux.shape[:2]} differs from rgb size {rgb.shape[:2]}')
        if rgb.shape[0] < 1 or rgb.shape[1] < 1:
            raise ValueError(f'empty image: rgb shape {rgb.shape}')

    def preprocess(self, rgb: np.ndarray, aux: np.ndarray) -> Tuple[torch.Tensor, torch.Tensor]:
        """Raw images -> normalised ``(1,3,H,W)`` tensors on the device (validated).

        With ``meta['resize']`` the tensors have that size instead of the image's.
        """
        import_torch('Segmenter.preprocess (tensors)')
        from smmcl_core.data.tensors import to_input_tensors

        self._check_inputs(rgb, aux)
        rgb_t, aux_t = to_input_tensors(rgb, aux, self.aux_modality, self.mean, self.std,
                                        **self.conventions, **self.aux_ranges)
        if self.resize is not None:
            rgb_b, aux_b = resize_inputs(rgb_t[None], aux_t[None], self.resize)
            rgb_t, aux_t = rgb_b[0], aux_b[0]  # (3,h,w)
        non_blocking = self.device.type == 'cuda'
        rgb_t = rgb_t.unsqueeze(0).to(str(self.device), non_blocking=non_blocking,
                                      memory_format=self.memory_format)
        aux_t = aux_t.unsqueeze(0).to(str(self.device), non_blocking=non_blocking,
                                      memory_format=self.memory_format)
        return rgb_t, aux_t

    def predict_logits(self, rgb_t: torch.Tensor, aux_t: torch.Tensor) -> torch.Tensor:
        """``(B,K,H,W)`` float32 scores for preprocessed tensors (see ``predict_logits``)."""
        import torch

        from smmcl_core.inference import predict_logits

        with torch.inference_mode():  # the engine runs its precision (torch: autocast)
            logits = predict_logits(self.engine, rgb_t, aux_t, self.num_classes,
                                    crop=self.crop, stride=self.stride, scales=self.scales,
                                    flip=self.flip)
        return logits.float()

    def predict(self, rgb: np.ndarray, aux: np.ndarray, return_confidence: bool = False
                ) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
        """Segment one raw RGB + aux pair.

        Args:
            rgb: ``uint8 (H,W,3)`` RGB.
            aux: Raw auxiliary image (encodings in the module docstring), of the same H and W
                unless ``aux_registration`` brings it into the RGB frame.
            return_confidence: Also return the max softmax probability per pixel.

        Returns:
            ``labels uint8 (H,W)``, or ``(labels, confidence float32 (H,W))``.

        Raises:
            ValueError: wrong dtype/shape of ``rgb`` or ``aux``, or mismatched sizes.
            RegistrationError: (a ``ValueError``) ``aux_registration`` refuses the pair.
        """
        if isinstance(rgb, np.ndarray) and isinstance(aux, np.ndarray) and rgb.ndim == 3:
            aux = self.registration(aux, rgb.shape[:2])  # into the RGB frame (same: as is)
        if self.engine.runs_numpy:
            return self._predict_numpy(rgb, aux, return_confidence)
        import torch

        rgb_t, aux_t = self.preprocess(rgb, aux)
        with torch.inference_mode():
            logits = restore_logits(self.predict_logits(rgb_t, aux_t),
                                    rgb.shape[:2])[0]  # (K,H,W) at the image size
            if return_confidence:
                confidence, labels = logits.softmax(0).max(0)
                return (labels.to(torch.uint8).cpu().numpy(),
                        confidence.to(torch.float32).cpu().numpy())
            return logits.argmax(0).to(torch.uint8).cpu().numpy()

    def _predict_numpy(self, rgb: np.ndarray, aux: np.ndarray, return_confidence: bool
                       ) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
        """:meth:`predict` in numpy (no torch), for engines that run numpy arrays."""
        self._check_inputs(rgb, aux)
        rgb_a, aux_a = to_input_arrays(rgb, aux, self.aux_modality, self.mean, self.std,
                                       **self.conventions, **self.aux_ranges)  # (3,H,W) each
        rgb_b, aux_b = resize_input_arrays(rgb_a[None], aux_a[None], self.resize)  # (1,3,h,w)
        logits = predict_logits_np(self.engine.run_numpy, rgb_b, aux_b, self.num_classes,
                                   crop=self.crop, stride=self.stride, scales=self.scales,
                                   flip=self.flip)
        logits = restore_logit_arrays(logits, rgb.shape[:2])[0]  # (K,H,W) at the image size
        return labels_from_logits(logits, return_confidence)

    def __repr__(self) -> str:
        return (f'Segmenter(preset={self.meta.get("preset")!r}, classes={self.num_classes}, '
                f'aux={self.aux_modality!r}, device={self.device}, '
                f'precision={self.precision!r}, backend={self.backend!r})')


def _pair(value: Optional[Union[int, Sequence[int]]]) -> Optional[Tuple[int, int]]:
    if not value:
        return None
    if isinstance(value, int):
        return value, value
    return tuple(int(v) for v in value)


def _describe(array: Any) -> str:
    if isinstance(array, np.ndarray):
        return f'dtype={array.dtype}, shape={array.shape}'
    return type(array).__name__
