"""Per-frame outputs, computed in one place from (frame, prepared aux, labels, confidence).

:data:`OUTPUTS` is the table of what a segmented frame can yield; :class:`Outputs` computes an
entry on first request and keeps it (``overlay`` reuses ``color``), so a consumer asks only for
what it publishes or writes. Adding an output (e.g. a semantic point cloud from
``result.aux.raw`` + ``result.aux.K`` + the mask) is one more entry here plus its publisher.
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

import numpy as np

from smmcl_core.visualize import colorize, overlay
from smmcl_ros.pipeline.aux import PreparedAux
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
    """

    def __init__(self, result: Result, palette: np.ndarray, overlay_alpha: float) -> None:
        self.result = result
        self.palette = palette
        self.overlay_alpha = overlay_alpha
        self._done: Dict[str, Any] = {}

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
    return np.asarray(confidence, np.float32)


# name -> compute(outputs); image outputs are (H,W) or (H,W,3) arrays at RGB size.
OUTPUTS: Dict[str, Callable[[Outputs], Any]] = {
    'mask': lambda o: o.result.labels,  # uint8 (H,W)
    'color': lambda o: colorize(o.result.labels, o.palette),  # uint8 (H,W,3)
    'overlay': lambda o: overlay(o.result.frame.rgb, o.get('color'), o.overlay_alpha),
    'confidence': _confidence,  # float32 (H,W)
}
# ROS encodings of the image outputs.
ENCODINGS: Dict[str, str] = {'mask': 'mono8', 'color': 'rgb8', 'overlay': 'rgb8',
                             'confidence': '32FC1'}
