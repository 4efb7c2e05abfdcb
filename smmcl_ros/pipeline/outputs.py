"""Per-frame outputs, computed in one place from (frame, prepared aux, labels, confidence).

:data:`OUTPUTS` is the table of what a segmented frame can yield; :class:`Outputs` computes an
entry on first request and keeps it (``overlay`` reuses ``color``), so a consumer asks only for
what it publishes or writes. ``points`` is the semantic point cloud
(:mod:`smmcl_ros.pipeline.cloud`: ``result.aux.raw`` + its ``K`` + the mask; raises
:class:`~smmcl_ros.pipeline.cloud.NoCloud` for a frame without one); ``confidence`` is encoded
as ``confidence_encoding`` says (:mod:`smmcl_ros.pipeline.confidence`).
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

import numpy as np

from smmcl_core.visualize import colorize_labels, overlay
from smmcl_ros.pipeline.aux import PreparedAux
from smmcl_ros.pipeline.cloud import CloudSource, optional_cloud
from smmcl_ros.pipeline.confidence import check_confidence_encoding, encode_confidence
from smmcl_ros.pipeline.frame import Frame


@dataclass(frozen=True)
class Result:
    """What inference made of one frame.

    Attributes:
        frame: The input frame (its header goes on every output).
        aux: The aux input the model saw, with the raw aux at RGB size.
        labels: ``uint8 (H,W)`` train ids.
        confidence: ``float32 (H,W)`` max softmax probability, when asked for.
        inference_s: Seconds spent in ``Segmenter.predict``.
    """

    frame: Frame
    aux: PreparedAux
    labels: np.ndarray
    confidence: Optional[np.ndarray]
    inference_s: float


class Outputs:
    """The outputs of one :class:`Result`, computed on demand and memoised.

    Args:
        result: The segmented frame.
        palette: ``uint8 (K,3)`` class colours.
        overlay_alpha: Weight of the colour mask in ``overlay``.
        cloud: Builds the ``points`` output (None: no cloud).
        confidence_encoding: ``32FC1`` or ``mono8`` for the ``confidence`` output.
    """

    def __init__(self, result: Result, palette: np.ndarray, overlay_alpha: float,
                 cloud: Optional[CloudSource] = None,
                 confidence_encoding: str = '32FC1') -> None:
        self.result = result
        self.palette = palette
        self.overlay_alpha = overlay_alpha
        self.cloud = cloud
        self.confidence_encoding = check_confidence_encoding(confidence_encoding)
        self._done: Dict[str, Any] = {}

    def encoding(self, name: str) -> str:
        """ROS encoding of image output ``name``."""
        return self.confidence_encoding if name == 'confidence' else ENCODINGS[name]

    def get(self, name: str) -> Any:
        """Output ``name`` (see :data:`OUTPUTS`).

        Raises:
            KeyError: Unknown name (the message lists the valid ones).
        """
        if name not in self._done:
            if name not in OUTPUTS:
                raise KeyError(f'unknown output {name!r}; valid: {list(OUTPUTS)}')
            self._done[name] = OUTPUTS[name](self)
        return self._done[name]


def _confidence(outputs: Outputs) -> np.ndarray:
    confidence = outputs.result.confidence
    if confidence is None:
        raise ValueError("output 'confidence' needs FrameProcessor.run(..., confidence=True)")
    return encode_confidence(confidence, outputs.confidence_encoding)


# name -> compute(outputs); image outputs are (H,W) or (H,W,3) arrays at RGB size.
OUTPUTS: Dict[str, Callable[[Outputs], Any]] = {
    'mask': lambda o: o.result.labels,  # uint8 (H,W)
    'color': lambda o: colorize_labels(o.result.labels, o.palette),  # uint8 (H,W,3)
    'overlay': lambda o: overlay(o.result.frame.rgb, o.get('color'), o.overlay_alpha),
    'confidence': _confidence,  # float32 (H,W), or uint8 (H,W) for mono8
    'points': lambda o: optional_cloud(o.cloud, o.result),  # SemanticCloud (h,w) points
}
# ROS encodings of the image outputs (confidence: see Outputs.encoding).
ENCODINGS: Dict[str, str] = {'mask': 'mono8', 'color': 'rgb8', 'overlay': 'rgb8',
                             'confidence': '32FC1'}
