"""One frame through the model: aux preparation -> ``Segmenter.predict`` -> :class:`Outputs`.

The node's inference thread and ``smmcl-bag-eval`` both call :meth:`FrameProcessor.run`.
"""

import time
from typing import Any, Optional

import numpy as np

from smmcl_ros.pipeline.aux import AuxPreparer
from smmcl_ros.pipeline.cloud import CloudSource
from smmcl_ros.pipeline.frame import Frame
from smmcl_ros.pipeline.outputs import Outputs, Result
from smmcl_ros.pipeline.stats import NodeStats


class FrameProcessor:
    """Segments frames.

    Args:
        segmenter: A ``smmcl_core.Segmenter`` (``predict``; ``palette`` unless given).
        aux: The aux step.
        overlay_alpha: Weight of the colour mask in the ``overlay`` output.
        palette: ``uint8 (K,3)`` class colours (default: the segmenter's).
        stats: Counts ``rgb_only`` frames when given.
        cloud: Builds the ``points`` output (None: no cloud).
        confidence_encoding: Encoding of the ``confidence`` output.
    """

    def __init__(self, segmenter: Any, aux: AuxPreparer, overlay_alpha: float = 0.5,
                 palette: Optional[np.ndarray] = None,
                 stats: Optional[NodeStats] = None, cloud: Optional[CloudSource] = None,
                 confidence_encoding: str = '32FC1') -> None:
        self.segmenter = segmenter
        self.aux = aux
        self.overlay_alpha = float(overlay_alpha)
        self.palette = np.asarray(segmenter.palette if palette is None else palette,
                                  np.uint8)  # (K,3)
        self.stats = stats
        self.cloud = cloud
        self.confidence_encoding = confidence_encoding

    def run(self, frame: Frame, confidence: bool = False) -> Optional[Outputs]:
        """Segment ``frame``; None when its aux cannot be prepared (reported by the aux step).

        Args:
            frame: The frame.
            confidence: Also compute the per-pixel confidence (outputs ``confidence`` and
                ``points``).
        """
        if frame.aux is None and self.stats is not None:
            self.stats.count('rgb_only')
        prepared = self.aux.prepare(frame)
        if prepared is None:
            return None
        start = time.monotonic()
        if confidence:
            labels, conf = self.segmenter.predict(frame.rgb, prepared.image,
                                                  return_confidence=True)
        else:
            labels, conf = self.segmenter.predict(frame.rgb, prepared.image), None
        result = Result(frame, prepared, labels, conf, time.monotonic() - start)
        return Outputs(result, self.palette, self.overlay_alpha, self.cloud,
                       self.confidence_encoding)
