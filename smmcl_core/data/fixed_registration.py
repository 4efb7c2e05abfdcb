"""A registration whose parameters are all known up front: Segmenter options, a dataset's rig.

:class:`FixedRegistration` holds ``aux_registration`` and its parameters, checked once, and
brings each raw aux image into the RGB frame with :func:`smmcl_core.data.registration.register`.
The node and the bag tools use ``smmcl_ros.pipeline.registration`` instead, because their
intrinsics and extrinsics arrive as messages (``camera_info``, ``/tf_static``).

``depth`` needs ``aux_K`` (the depth camera's 3x3 intrinsics at its own size), ``rgb_K`` (the
RGB camera's at the RGB size) and ``aux_to_rgb`` (``[x, y, z, qx, qy, qz, qw]`` or a 4x4
matrix: the depth optical frame in the RGB optical frame); a missing one is a ``ValueError``
naming it. ``hha`` aux images (already encoded) are moved like depth (nearest, no blending) and
cannot take ``depth``: register the depth before encoding it.

Pure numpy + OpenCV (no torch, no ROS).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np

from smmcl_core.data.registration import (AUTO, check_homography, check_mode,
                                          check_parameters, DEPTH, NONE, pose_matrix, register)


def registration_modality(modality: str) -> str:
    """Interpolation family of an aux modality: thermal is blended, depth and HHA are not."""
    return 'thermal' if modality == 'thermal' else 'depth'


class FixedRegistration:
    """``aux_registration`` with fixed parameters (see the module docstring).

    Args:
        mode: ``aux_registration`` (:data:`smmcl_core.data.registration.MODES`).
        modality: The aux modality (``depth``, ``thermal``, ``hha``).
        homography: ``aux_homography``: 9 numbers row-major or 3x3, aux pixel -> RGB pixel.
        aux_K: ``depth`` only: the depth camera's intrinsics.
        rgb_K: ``depth`` only: the RGB camera's intrinsics.
        aux_to_rgb: ``depth`` only: the depth optical frame in the RGB optical frame.
        where: Prefix of error messages (e.g. the file the values come from).

    Raises:
        ValueError: A bad value, a mode whose parameters are missing, or ``depth`` for an aux
            modality that is not depth; the message names the argument.
    """

    def __init__(self, mode: str = AUTO, modality: str = 'thermal',
                 homography: Optional[Sequence[float]] = None, aux_K: Any = None,
                 rgb_K: Any = None, aux_to_rgb: Any = None, where: str = '') -> None:
        self.where = where
        try:
            self.mode = check_mode(str(mode))
            self.homography = check_homography(_listed(homography), 'aux_homography')
            self.aux_to_rgb = _pose(aux_to_rgb)
            check_parameters(self.mode, self.homography)
        except ValueError as err:
            raise ValueError(f'{where}{err}') from err
        self.modality = registration_modality(modality)
        self.aux_K = _matrix3(aux_K, 'aux_K', where)
        self.rgb_K = _matrix3(rgb_K, 'rgb_K', where)
        if self.mode == DEPTH:
            if modality != 'depth':
                raise ValueError(f"{where}aux_registration 'depth' needs raw depth images; the "
                                 f'aux modality is {modality!r} (use homography or resize)')
            missing = [name for name, value in (('aux_K', self.aux_K), ('rgb_K', self.rgb_K),
                                                ('aux_to_rgb', self.aux_to_rgb))
                       if value is None]
            if missing:
                raise ValueError(f"{where}aux_registration 'depth' needs {', '.join(missing)} "
                                 '(depth camera intrinsics, RGB camera intrinsics, the depth '
                                 'optical frame in the RGB optical frame)')

    @property
    def identity(self) -> bool:
        """True when aux images of the RGB size pass unchanged (``auto``, ``none``)."""
        return self.mode in (AUTO, NONE)

    def __call__(self, aux: np.ndarray, rgb_shape: Tuple[int, int]) -> np.ndarray:
        """Raw ``aux`` of its own camera -> raw aux in the RGB frame at ``rgb_shape``.

        Returns ``aux`` itself when nothing is to be done.

        Raises:
            RegistrationError: (a ``ValueError``) the pair is refused, e.g. ``auto`` with
                another aspect ratio; the message names ``aux_registration``.
        """
        return register(aux, tuple(rgb_shape[:2]), self.modality, self.mode,
                        homography=self.homography, aux_K=self.aux_K, rgb_K=self.rgb_K,
                        aux_to_rgb=self.aux_to_rgb)

    def __repr__(self) -> str:
        return f'FixedRegistration({self.mode!r}, {self.modality!r})'


def _listed(value: Any) -> Any:
    if value is None or isinstance(value, np.ndarray):
        return value
    return list(value)


def _pose(value: Any) -> Optional[np.ndarray]:
    if value is None:
        return None
    array = np.asarray(value, np.float64)
    if array.shape == (4, 4):
        if not np.isfinite(array).all() or not np.allclose(array[3], [0, 0, 0, 1]):
            raise ValueError(f'aux_to_rgb as a 4x4 matrix must be finite with the last row '
                             f'0 0 0 1, got {array.tolist()}')
        return array
    return pose_matrix(list(array.ravel()), 'aux_to_rgb')


def _matrix3(value: Any, key: str, where: str) -> Optional[np.ndarray]:
    if value is None:
        return None
    try:
        matrix = np.asarray(value, np.float64).reshape(3, 3)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{where}{key} must be a 3x3 camera matrix, got {value!r}') from err
    if not np.isfinite(matrix).all() or matrix[0, 0] <= 0 or matrix[1, 1] <= 0:
        raise ValueError(f'{where}{key} is not a camera matrix (fx, fy > 0): '
                         f'{matrix.ravel().tolist()}')
    return matrix
