"""The ``points`` output: a segmented frame's depth, its ``K`` and mask -> :class:`SemanticCloud`.

The depth is the raw aux at RGB size that :class:`~smmcl_ros.pipeline.aux.AuxPreparer` kept
(``PreparedAux.raw``). Its ``K`` is ``PreparedAux.K`` when the aux step had one (HHA encoding,
registration), else the aux camera's intrinsics for the aux image as received, scaled to the
RGB size when the aux image was resized. A frame without depth (RGB-only, an HHA image received
as such) or without intrinsics has no cloud: :class:`NoCloud` says why (``reason`` is a short
token for diagnostics). No ROS import.
"""

from typing import Any, Optional

import numpy as np

from smmcl_ros.pipeline.intrinsics import CameraInfoError
from smmcl_ros.pipeline.points import CloudBuilder, SemanticCloud


class NoCloud(ValueError):
    """This frame has no point cloud; ``reason``: ``no_depth`` or a camera_info reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f'{reason}: {detail}')
        self.reason = reason
        self.detail = detail


class CloudSource:
    """Builds the cloud of a segmented frame.

    Args:
        builder: Palette and ``points_*`` settings.
        intrinsics: Aux camera intrinsics by stamp (``at(stamp_ns, h, w)``), or None.
    """

    def __init__(self, builder: CloudBuilder, intrinsics: Any = None) -> None:
        self.builder = builder
        self.intrinsics = intrinsics

    def cloud(self, result: Any) -> SemanticCloud:
        """The cloud of ``result`` (a :class:`~smmcl_ros.pipeline.outputs.Result`).

        Raises:
            NoCloud: No depth in this frame, or no intrinsics for it.
            ValueError: The confidence was not computed.
        """
        frame, prepared = result.frame, result.aux
        depth = prepared.raw
        if depth is None or depth.ndim != 2 or depth.dtype.kind not in 'uf':
            raise NoCloud('no_depth', 'this frame has no depth image (RGB-only frame or HHA '
                                      'received as an image)')
        if result.confidence is None:
            raise ValueError("output 'points' needs FrameProcessor.run(..., confidence=True)")
        return self.builder.build(depth, self._K(frame, prepared), result.labels,
                                  result.confidence)

    def _K(self, frame: Any, prepared: Any) -> np.ndarray:
        if prepared.K is not None:
            return prepared.K
        if self.intrinsics is None:
            raise NoCloud('no_camera_info', 'no aux camera intrinsics source')
        aux_size = frame.aux.shape[:2]
        stamp = frame.aux_stamp_ns if frame.aux_stamp_ns is not None else frame.stamp_ns
        try:
            K = self.intrinsics.at(stamp, *aux_size)
        except CameraInfoError as err:
            raise NoCloud(err.reason, err.detail) from err
        if tuple(aux_size) != tuple(prepared.raw.shape[:2]):
            from smmcl_core.data.hha import scale_intrinsics  # imports torch: only when needed
            K = scale_intrinsics(K, aux_size, prepared.raw.shape[:2])
        return K


def optional_cloud(source: Optional[CloudSource], result: Any) -> SemanticCloud:
    """``source.cloud(result)``; :class:`NoCloud` when there is no source."""
    if source is None:
        raise NoCloud('points_disabled', 'no cloud source configured')
    return source.cloud(result)
