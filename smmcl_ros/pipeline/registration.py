"""Aux registration in the frame pipeline: parameters -> one callable per node / bag run.

Parameters (node, ``smmcl-bag-eval``, launch file):

- ``aux_registration``: ``auto`` (default) | ``none`` | ``resize`` | ``homography`` | ``depth``
  (:data:`smmcl_core.data.registration.MODES`).
- ``aux_homography``: 9 numbers, row-major, aux pixel -> RGB pixel (``homography``;
  ``smmcl-calibrate-aux`` writes it).
- ``aux_to_rgb``: ``[x, y, z, qx, qy, qz, qw]``, the depth optical frame in the RGB optical
  frame (``depth``). Empty: composed from ``/tf_static`` between the aux and RGB header frames
  (:class:`~smmcl_ros.pipeline.tf_static.StaticTransforms`).

:meth:`AuxRegistration.register` brings one raw aux image into the RGB frame or raises
:class:`AuxRefused` (a :class:`~smmcl_core.data.registration.RegistrationError`: a ``reason``
code and a message naming the parameter to change); the node counts and throttles refusals and
keeps serving. Calling the object directly fits ``AuxPreparer``'s ``registration`` hook.

ROS-free (no rclpy / message import): numpy, OpenCV and ``smmcl_core.data.registration``.
"""

from __future__ import annotations

import copy
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from smmcl_core.data.fixed_registration import registration_modality
from smmcl_core.data.registration import (check_homography, check_mode, check_parameters,
                                          DEPTH, HOMOGRAPHY, pose_matrix, register,
                                          RegistrationError)
from smmcl_ros.pipeline.tf_static import StaticTransforms, TransformLookupError

AuxRefused = RegistrationError  # the refusal type the pipeline catches (``.reason``)


class AuxRegistration:
    """Registration of every aux image of one node / bag run (parameters read once).

    Args:
        mode: ``aux_registration``.
        modality: The checkpoint's aux modality (``depth``, ``thermal``, ``hha``).
        homography: ``aux_homography`` (empty: none).
        aux_to_rgb: ``aux_to_rgb`` (empty: from ``tf``).
        tf: Static transforms seen on ``/tf_static`` (depth mode without ``aux_to_rgb``).
        rgb_intrinsics: Source of the RGB camera's ``K`` (``.at(stamp_ns, height, width)``),
            needed by depth mode when called through the pipeline hook.
        fill: Value of pixels the aux camera does not see (default: 0 = no data).

    Raises:
        ValueError: A bad parameter value (the message names the parameter), or a mode whose
            parameters are missing (``homography`` without ``aux_homography``).
    """

    def __init__(self, mode: str = 'auto', modality: str = 'thermal',
                 homography: Sequence[float] = (), aux_to_rgb: Sequence[float] = (),
                 tf: Optional[StaticTransforms] = None, rgb_intrinsics: Any = None,
                 fill: Optional[Sequence[float]] = None) -> None:
        self.mode = check_mode(str(mode))
        self.modality = registration_modality(modality)
        self.homography = check_homography(list(homography), 'aux_homography')
        self.aux_to_rgb = pose_matrix(list(aux_to_rgb), 'aux_to_rgb')
        check_parameters(self.mode, self.homography)
        if self.mode == DEPTH and modality == 'thermal':
            raise ValueError("aux_registration 'depth' needs a depth checkpoint; this one takes "
                             'thermal (use homography)')
        self.tf = tf
        self.rgb_intrinsics = rgb_intrinsics
        self.fill = fill

    def for_modality(self, modality: str) -> 'AuxRegistration':
        """The same parameters for a checkpoint taking ``modality``.

        Raises:
            ValueError: Depth registration with a thermal checkpoint.
        """
        if self.mode == DEPTH and modality == 'thermal':
            raise ValueError("aux_registration 'depth' needs a depth checkpoint; this one takes "
                             'thermal (use homography)')
        other = copy.copy(self)
        other.modality = registration_modality(modality)
        return other

    @property
    def needs_intrinsics(self) -> bool:
        """Depth mode needs ``aux/camera_info`` and ``rgb/camera_info``."""
        return self.mode == DEPTH

    @property
    def needs_tf_static(self) -> bool:
        """Depth mode without ``aux_to_rgb`` reads ``/tf_static``."""
        return self.mode == DEPTH and self.aux_to_rgb is None

    def extrinsic(self, aux_frame: str, rgb_frame: str) -> np.ndarray:
        """``(4,4)`` aux optical frame -> RGB optical frame.

        Raises:
            AuxRefused: ``no_extrinsics`` when neither ``aux_to_rgb`` nor ``/tf_static`` gives it.
        """
        if self.aux_to_rgb is not None:
            return self.aux_to_rgb
        if self.tf is None or not aux_frame or not rgb_frame:
            raise AuxRefused('no_extrinsics', 'aux_registration is depth and aux_to_rgb is empty, '
                             f'and no /tf_static transform can be looked up (aux frame '
                             f'{aux_frame!r}, rgb frame {rgb_frame!r})')
        try:
            return self.tf.lookup(rgb_frame, aux_frame)
        except TransformLookupError as err:
            raise AuxRefused('no_extrinsics', f'aux_to_rgb is empty and {err}') from err

    def register(self, aux: np.ndarray, rgb_shape: Tuple[int, int],
                 aux_K: Optional[np.ndarray] = None, rgb_K: Optional[np.ndarray] = None,
                 aux_frame: str = '', rgb_frame: str = '') -> np.ndarray:
        """Raw ``aux`` (its own camera and size) -> raw aux in the RGB frame at ``rgb_shape``.

        Raises:
            AuxRefused: The pair cannot be registered as configured (``reason`` says why).
        """
        extrinsic = self.extrinsic(aux_frame, rgb_frame) if self.mode == DEPTH else None
        return register(aux, rgb_shape, self.modality, self.mode, homography=self.homography,
                        aux_K=aux_K, rgb_K=rgb_K, aux_to_rgb=extrinsic, fill=self.fill)

    def __call__(self, aux: np.ndarray, K: Optional[np.ndarray], frame: Any
                 ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """The pipeline hook: ``(aux in the RGB frame, its K)`` for ``frame`` (``Frame``)."""
        height, width = frame.rgb.shape[:2]
        # Depth mode needs the RGB K; a homography-registered depth (HHA) uses it when known.
        rgb_K = None
        if self.needs_intrinsics:
            rgb_K = self._rgb_K(frame, height, width)
        elif self.mode == HOMOGRAPHY and self.rgb_intrinsics is not None:
            try:
                rgb_K = self._rgb_K(frame, height, width)
            except AuxRefused:
                rgb_K = None
        registered = self.register(aux, (height, width), K, rgb_K,
                                   _frame_id(frame.aux_header), _frame_id(frame.header))
        if registered is aux:
            return aux, K
        if rgb_K is None and K is not None and self.mode not in (HOMOGRAPHY, DEPTH):
            rgb_K = scale_K(K, aux.shape[:2], (height, width))  # resized: same view
        return registered, rgb_K

    def _rgb_K(self, frame: Any, height: int, width: int) -> np.ndarray:
        if self.rgb_intrinsics is None:
            raise AuxRefused('no_intrinsics', 'aux_registration is depth but there is no '
                             'rgb/camera_info source')
        try:
            return self.rgb_intrinsics.at(frame.stamp_ns, height, width)
        except ValueError as err:
            raise AuxRefused('no_intrinsics', f'rgb/camera_info: {err}') from err


def scale_K(K: np.ndarray, size: Tuple[int, int], new_size: Tuple[int, int]) -> np.ndarray:
    """``K`` of an image of ``size`` for the same view resized to ``new_size``.

    Pixel centres are at integer coordinates (ROS, OpenCV).
    """
    sx, sy = new_size[1] / size[1], new_size[0] / size[0]
    scaled = np.array(K, np.float64, copy=True)
    scaled[0, 0], scaled[1, 1] = scaled[0, 0] * sx, scaled[1, 1] * sy
    scaled[0, 2], scaled[1, 2] = (scaled[0, 2] + 0.5) * sx - 0.5, (scaled[1, 2] + 0.5) * sy - 0.5
    return scaled


def _frame_id(header: Any) -> str:
    return str(getattr(header, 'frame_id', '') or '') if header is not None else ''


def make_registration(params: Any, modality: str) -> AuxRegistration:
    """The registration of a node / bag run from its parameters.

    ``params`` has ``aux_registration``, ``aux_homography`` and ``aux_to_rgb`` (``NodeParams``
    or the bag-eval arguments). Depth mode without ``aux_to_rgb`` gets an empty
    :class:`StaticTransforms` to fill from ``/tf_static``.

    Raises:
        ValueError: A bad or incomplete parameter, named.
    """
    registration = AuxRegistration(params.aux_registration, modality, params.aux_homography,
                                   params.aux_to_rgb)
    if registration.needs_tf_static:
        registration.tf = StaticTransforms()
    return registration
