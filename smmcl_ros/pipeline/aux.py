"""Aux preparation: the raw aux image of a frame -> the aux input of the model, at RGB size.

One :class:`AuxPreparer` serves the node and ``smmcl-bag-eval``, so a bag evaluates what the
node would publish. :meth:`AuxPreparer.prepare` runs these steps, in order:

1. RGB-only frame (no aux): an all-invalid aux (zeros; HHA checkpoints: the HHA of missing
   depth), nothing else.
2. NaN/inf depth is reported (``nonfinite_depth``; preprocessing treats it as invalid).
3. Intrinsics of the aux camera (``aux/camera_info``), when a step needs them: HHA encoding of
   depth, or registration. Missing or malformed ones skip the frame.
4. **Registration** (optional, :class:`Registration`): raw aux in its own camera -> raw aux in
   the RGB camera at RGB size, with the RGB camera's ``K``. Without one, the aux image is
   assumed registered to the RGB camera already (a resize is all that is left).
5. HHA checkpoints fed depth: HHA encoded from the (registered) depth and its ``K``.
6. Anything not at RGB size yet is resized nearest-neighbour (``size_mismatch``, logged once):
   no invented depth or heat values.

The result, :class:`PreparedAux`, also keeps the raw aux at RGB size and its ``K``: what 3-D
outputs (a semantic point cloud from depth + mask) need.
"""

from typing import Any, NamedTuple, Optional, Protocol, Tuple

import cv2
import numpy as np

from smmcl_ros import topics
from smmcl_ros.pipeline.frame import Frame
from smmcl_ros.pipeline.intrinsics import CameraInfoError
from smmcl_ros.pipeline.stats import Report


class PreparedAux(NamedTuple):
    """The aux side of one frame, ready for ``Segmenter.predict``.

    Attributes:
        image: Model input at RGB size: raw depth / thermal ``(H,W)`` or HHA ``(H,W,3)`` uint8.
        raw: Raw aux (depth in its units, thermal counts) at RGB size; ``None`` in RGB-only
            mode and for HHA images received as such.
        K: ``3x3`` intrinsics of ``raw`` when known (HHA checkpoints, registration).
    """

    image: np.ndarray
    raw: Optional[np.ndarray]
    K: Optional[np.ndarray]


class IntrinsicsSource(Protocol):
    """Intrinsics of the aux camera by stamp (:mod:`smmcl_ros.pipeline.intrinsics`)."""

    size_mismatch: Optional[Tuple[Tuple[int, int], Tuple[int, int]]]

    def at(self, stamp_ns: int, height: int, width: int) -> np.ndarray:
        """``K`` for an aux image of ``height x width`` stamped ``stamp_ns``."""


class Registration(Protocol):
    """Maps a raw aux image into the RGB camera (issue 18: homography / depth registration)."""

    def __call__(self, aux: np.ndarray, K: Optional[np.ndarray], frame: Frame
                 ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """``(aux in the RGB camera at frame.size, its K)`` from raw ``aux`` and its ``K``.

        Raises:
            ValueError: The frame cannot be registered (reported, the frame is skipped).
        """


class MissingIntrinsicsError(RuntimeError):
    """HHA encoding or registration needs intrinsics and there is no source at all."""


def resize_nearest(aux: np.ndarray, height: int, width: int) -> np.ndarray:
    """``aux`` at ``height x width``, nearest-neighbour (no invented depth / heat values).

    Returns ``aux`` itself when it already has that size.
    """
    if aux.shape[:2] == (height, width):
        return aux
    return cv2.resize(np.ascontiguousarray(aux), (width, height),
                      interpolation=cv2.INTER_NEAREST)


def make_hha_encoder(gravity_smoothing: float, device: Any = None) -> Any:
    """The live HHA encoder (``smmcl_core``), on ``device`` when it is a CUDA device."""
    try:
        from smmcl_core.data.hha import HHAEncoder
    except ImportError:  # main before the hha package: the encoder lives in hha_live
        from smmcl_core.data.hha_live import HHAEncoder
    return HHAEncoder(gravity_smoothing, device if str(device).startswith('cuda') else None)


def _missing_depth_hha(height: int, width: int) -> np.ndarray:
    try:
        from smmcl_core.data.hha import missing_depth_hha
    except ImportError:
        from smmcl_core.data.hha_live import missing_depth_hha
    return missing_depth_hha(height, width)


class AuxPreparer:
    """The aux step of the frame pipeline (see the module docstring for the steps).

    Args:
        modality: ``depth``, ``thermal`` or ``hha`` (the checkpoint's).
        report: Problem sink, :data:`~smmcl_ros.pipeline.stats.Report`.
        intrinsics: Aux camera intrinsics (None: none available).
        hha: HHA encoder (:func:`make_hha_encoder`); required for ``hha``.
        registration: Maps aux into the RGB camera (None: aux is registered already).
    """

    def __init__(self, modality: str, report: Report,
                 intrinsics: Optional[IntrinsicsSource] = None, hha: Any = None,
                 registration: Optional[Registration] = None) -> None:
        if modality == 'hha' and hha is None:
            raise ValueError('an HHA checkpoint needs an HHA encoder (make_hha_encoder)')
        self.modality = modality
        self.intrinsics = intrinsics
        self.hha = hha
        self.registration = registration
        self._report = report

    def prepare(self, frame: Frame) -> Optional[PreparedAux]:
        """The aux input of ``frame`` at RGB size; None when the frame must be skipped.

        Raises:
            MissingIntrinsicsError: A step needs intrinsics and :attr:`intrinsics` is None.
        """
        height, width = frame.size
        if frame.aux is None:
            return PreparedAux(self._invalid(height, width), None, None)
        aux = frame.aux
        if aux.dtype.kind == 'f' and not np.isfinite(aux).all():
            self._report(topics.AUX, 'nonfinite_depth', 'NaN/inf pixels treated as invalid (0)',
                         False)
        wants_K = self.registration is not None or (self.hha is not None and aux.ndim == 2)
        K = self._intrinsics(frame, aux) if wants_K else None
        if wants_K and K is None:
            return None
        if self.registration is not None:
            try:
                aux, K = self.registration(aux, K, frame)
            except ValueError as err:
                self._report(topics.AUX, 'registration_failed', f'{err}; frame skipped', False)
                return None
        raw = aux if aux.ndim == 2 else None
        image = self.hha.encode(aux, K) if self.hha is not None and aux.ndim == 2 else aux
        if image.shape[:2] != (height, width):
            self._report(topics.AUX, 'size_mismatch',
                         f'aux {image.shape[1]}x{image.shape[0]} != rgb {width}x{height}; '
                         'resized nearest-neighbour to the RGB size', True)
            image = resize_nearest(image, height, width)
        if raw is not None and raw.shape[:2] != (height, width):
            if K is not None:
                from smmcl_core.data.hha import scale_intrinsics
                K = scale_intrinsics(K, raw.shape[:2], (height, width))
            raw = resize_nearest(raw, height, width)
        return PreparedAux(image, raw, K)

    def _invalid(self, height: int, width: int) -> np.ndarray:
        if self.hha is not None:
            return _missing_depth_hha(height, width)
        dtype = np.uint16 if self.modality == 'depth' else np.uint8
        return np.zeros((height, width), dtype)  # 0 = invalid depth / coldest thermal

    def _intrinsics(self, frame: Frame, aux: np.ndarray) -> Optional[np.ndarray]:
        if self.intrinsics is None:
            raise MissingIntrinsicsError(
                f'the checkpoint takes {self.modality} and the aux image is '
                f'{aux.shape[1]}x{aux.shape[0]} depth, but there are no aux camera intrinsics')
        stamp = frame.aux_stamp_ns if frame.aux_stamp_ns is not None else frame.stamp_ns
        try:
            K = self.intrinsics.at(stamp, *aux.shape[:2])
        except CameraInfoError as err:
            self._report(topics.AUX_INFO, err.reason, f'{err.detail}; frame skipped', False)
            return None
        if self.intrinsics.size_mismatch is not None:
            (ih, iw), (dh, dw) = self.intrinsics.size_mismatch
            self._report(topics.AUX_INFO, 'camera_info_size_mismatch',
                         f'camera_info is {iw}x{ih}, depth {dw}x{dh}; intrinsics scaled', True)
        return K
