"""Registered samples as an unregistered aux camera sees them (``smmcl-make-bag``).

Two virtual aux cameras, the inverses of ``aux_registration`` ``homography`` and ``depth``
(:mod:`smmcl_core.data.registration`):

- :class:`HomographyCamera` (``--aux-homography H11 .. H33 --aux-size H W``): a thermal core
  beside the RGB camera; the registered aux warped with the inverse of the homography (aux
  pixel -> RGB pixel) into ``H x W`` pixels.
- :class:`DepthCamera` (``--aux-depth-camera FX FY CX CY --aux-size H W [--aux-to-rgb X Y Z
  QX QY QZ QW]``): a depth camera beside the RGB camera, as a RealSense without
  ``align_depth`` publishes it. Each registered depth image (the RGB camera's ``K``) is
  re-projected into the depth camera by ``register_depth`` run the other way (source ``K`` =
  the RGB ``K``, target ``K`` = the depth camera's, transform = the inverse of ``aux_to_rgb``):
  nearest surface on collisions (z-buffer), pixels no RGB pixel reaches are holes (0 in
  integer millimetres, NaN in float metres, REP 118).

Each names its ``frame_id`` and the ``smmcl-bag-eval`` flags that register the bag back.
"""

import argparse
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from smmcl_core.data.fixed_registration import registration_modality
from smmcl_core.data.hha.intrinsics import camera_matrix
from smmcl_core.data.registration import (check_homography, pose_matrix, register_depth,
                                          warp_homography)
from smmcl_ros import topics

AUX_FRAME_ID = 'camera_aux_optical_frame'  # the frame of an unregistered thermal camera
DEPTH_FRAME_ID = 'camera_depth_optical_frame'  # ... of an unregistered depth camera
IDENTITY_POSE = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)

RawSample = Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]
Intrinsics = Callable[[int, int], np.ndarray]  # (height, width) -> the RGB camera's K


def _floats(values: Sequence[float]) -> str:
    return ' '.join(repr(float(v)) for v in values)


@dataclass(frozen=True)
class HomographyCamera:
    """An aux camera related to the RGB image by a homography (thermal beside RGB).

    Attributes:
        homography: ``(3,3)`` aux pixel -> RGB pixel (``aux_homography``).
        size: ``(h, w)`` of the aux camera.
    """

    homography: np.ndarray
    size: Tuple[int, int]
    default_frame_id = AUX_FRAME_ID

    def samples(self, samples: Iterator[RawSample], modality: str,
                rgb_K: Optional[Intrinsics] = None) -> Iterator[RawSample]:
        """Registered samples -> the aux image as the aux camera sees it.

        The inverse homography warps the registered aux into the aux camera (nearest for depth
        and HHA, linear for thermal); ``rgb_K`` is not needed.
        """
        to_aux = np.linalg.inv(self.homography)
        kind = registration_modality(modality)
        for rgb, aux, label in samples:
            yield rgb, warp_homography(aux, to_aux, self.size, kind), label

    def eval_flags(self) -> str:
        """The ``smmcl-bag-eval`` flags that register the aux back."""
        return f'--aux-registration homography --aux-homography {_floats(self.homography.ravel())}'


@dataclass(frozen=True)
class DepthCamera:
    """A depth camera beside the RGB camera: its intrinsics, size and extrinsic.

    Attributes:
        K: ``(3,3)`` intrinsics of the depth camera at ``size``.
        size: ``(h, w)`` of the depth camera.
        pose: ``aux_to_rgb`` ``(x, y, z, qx, qy, qz, qw)``, the quaternion normalised: the
            depth optical frame in the RGB optical frame (``p_rgb = T @ p_depth``).
        info_topic: The depth camera's ``camera_info`` topic.
    """

    K: np.ndarray
    size: Tuple[int, int]
    pose: Tuple[float, ...]
    info_topic: str = topics.CAMERA_DEPTH_INFO
    default_frame_id = DEPTH_FRAME_ID

    @property
    def aux_to_rgb(self) -> np.ndarray:
        """``(4,4)`` depth optical frame -> RGB optical frame."""
        return pose_matrix(self.pose)

    def samples(self, samples: Iterator[RawSample], modality: str,
                rgb_K: Optional[Intrinsics] = None) -> Iterator[RawSample]:
        """Registered samples -> the depth image as the depth camera measures it.

        Args:
            samples: Registered raw samples; the aux is depth (integer millimetres or float
                metres, 0/NaN = no measurement), already in its ROS encoding.
            modality: Must be ``depth``.
            rgb_K: The RGB camera's ``K`` of a ``(height, width)`` frame (the ``K`` of the
                RGB camera_info written beside it).

        Raises:
            ValueError: Another modality (the message names ``--aux-depth-camera``).
        """
        check_depth_modality(modality)
        if rgb_K is None:
            raise ValueError('--aux-depth-camera needs the RGB camera intrinsics')
        to_depth = np.linalg.inv(self.aux_to_rgb)
        for rgb, aux, label in samples:
            K = rgb_K(*rgb.shape[:2])
            depth = register_depth(aux, K, self.K, to_depth, self.size)
            if depth.dtype.kind == 'f':
                depth[depth == 0] = np.nan  # float depth: NaN = no measurement
            yield rgb, depth, label

    def eval_flags(self, info_topic: str = topics.CAMERA_RGB_INFO) -> str:
        """The ``smmcl-bag-eval`` flags that register the depth back.

        ``--aux-to-rgb`` is given; the bag's ``/tf_static`` holds the same transform.

        Args:
            info_topic: The RGB camera_info topic of the bag.
        """
        flags = f'--aux-registration depth --aux-camera-info-topic {self.info_topic}'
        if info_topic != topics.CAMERA_RGB_INFO:
            flags += f' --camera-info-topic {info_topic}'
        return f'{flags} --aux-to-rgb {_floats(self.pose)}'

    def static_transforms(self, rgb_frame: str, depth_frame: str
                          ) -> List[Tuple[str, str, Tuple[float, ...]]]:
        """``/tf_static`` of the rig: parent ``rgb_frame``, child ``depth_frame``.

        A ``TransformStamped`` maps points of its child frame into its parent frame, so this
        one is ``aux_to_rgb`` itself; ``StaticTransforms.lookup(rgb_frame, depth_frame)`` (the
        node and ``smmcl-bag-eval`` without ``--aux-to-rgb``) returns it.
        """
        return [(rgb_frame, depth_frame, self.pose)]


AuxCamera = Union[HomographyCamera, DepthCamera]


def check_depth_modality(modality: str) -> str:
    """Return ``depth``; anything else is a ``ValueError`` naming ``--aux-depth-camera``."""
    if modality != 'depth':
        raise ValueError(f'--aux-depth-camera re-projects depth images; the aux modality is '
                         f'{modality!r} (use --aux-homography for a thermal camera, and a '
                         'depth --aux-modality for HHA datasets)')
    return modality


def depth_intrinsics(values: Sequence[float], key: str = '--aux-depth-camera') -> np.ndarray:
    """``(fx, fy, cx, cy)`` -> ``(3,3)`` ``K``.

    Raises:
        ValueError: Not 4 finite numbers, or a focal length that is not positive (named).
    """
    numbers = np.asarray(values, np.float64).ravel()
    if numbers.size != 4 or not np.isfinite(numbers).all():
        raise ValueError(f'{key} must be 4 finite numbers FX FY CX CY, got {list(values)}')
    fx, fy, cx, cy = (float(v) for v in numbers)
    if fx <= 0 or fy <= 0:
        raise ValueError(f'{key}: the focal lengths must be positive, got FX {fx} FY {fy}')
    return camera_matrix(fx, fy, cx, cy)


def normalised_pose(values: Sequence[float], key: str = '--aux-to-rgb') -> Tuple[float, ...]:
    """``(x, y, z, qx, qy, qz, qw)`` checked by ``pose_matrix``, the quaternion normalised.

    Raises:
        ValueError: Not 7 finite numbers, or a zero quaternion; the message names ``key``.
    """
    pose_matrix(values, key)
    numbers = np.asarray(values, np.float64).reshape(7)
    norm = np.linalg.norm(numbers[3:])
    if abs(norm - 1.0) > 1e-12:  # a unit quaternion is kept as given, to the last digit
        numbers[3:] /= norm
    return tuple(float(v) for v in numbers)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--aux-homography`` | ``--aux-depth-camera`` [``--aux-to-rgb``], ``--aux-size``."""
    camera = parser.add_mutually_exclusive_group()
    camera.add_argument('--aux-homography', type=float, nargs=9, default=None,
                        metavar='H', help='write the aux unregistered: the raw aux camera of '
                        '--aux-size under this homography (aux pixel -> RGB pixel, row-major)')
    camera.add_argument('--aux-depth-camera', type=float, nargs=4, default=None,
                        metavar=('FX', 'FY', 'CX', 'CY'),
                        help='write the depth unregistered: a depth camera of these intrinsics '
                        'at --aux-size, at --aux-to-rgb; with its camera_info and /tf_static')
    parser.add_argument('--aux-size', type=int, nargs=2, metavar=('H', 'W'), default=None,
                        help='image size of the unregistered aux camera')
    parser.add_argument('--aux-to-rgb', type=float, nargs=7, default=None,
                        metavar=('X', 'Y', 'Z', 'QX', 'QY', 'QZ', 'QW'),
                        help='--aux-depth-camera: the depth optical frame in the RGB optical '
                        'frame (metres; as smmcl-bag-eval --aux-to-rgb; None = identity)')
    parser.add_argument('--aux-info-topic', default=topics.CAMERA_DEPTH_INFO,
                        help='--aux-depth-camera: topic of its camera_info')


def from_arguments(args: argparse.Namespace) -> Optional[AuxCamera]:
    """The virtual aux camera of the parsed options, or None (the aux stays registered).

    Raises:
        ValueError: An option missing its partner or a bad value; the message names it.
    """
    given = '--aux-homography' if args.aux_homography is not None else (
        '--aux-depth-camera' if args.aux_depth_camera is not None else None)
    if given is None:
        for name in ('aux_size', 'aux_to_rgb'):
            if getattr(args, name) is not None:
                option = '--' + name.replace('_', '-')
                raise ValueError(f'{option} describes an unregistered aux camera: give '
                                 '--aux-homography or --aux-depth-camera with it')
        return None
    if args.aux_size is None:
        raise ValueError(f'{given} and --aux-size go together (the unregistered aux camera: '
                         'its projection and its size H W)')
    if min(args.aux_size) < 1:
        raise ValueError(f'--aux-size must be positive, got {args.aux_size}')
    size = (int(args.aux_size[0]), int(args.aux_size[1]))
    if args.aux_homography is not None:
        if args.aux_to_rgb is not None:
            raise ValueError('--aux-to-rgb is the extrinsic of --aux-depth-camera; a homography '
                             'camera has none')
        return HomographyCamera(check_homography(args.aux_homography, '--aux-homography'), size)
    if not args.aux_info_topic:
        raise ValueError('--aux-depth-camera writes the depth camera_info: --aux-info-topic '
                         'must not be empty')
    pose = normalised_pose(IDENTITY_POSE if args.aux_to_rgb is None else args.aux_to_rgb)
    return DepthCamera(depth_intrinsics(args.aux_depth_camera), size, pose, args.aux_info_topic)
