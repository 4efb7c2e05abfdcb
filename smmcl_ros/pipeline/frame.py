"""One decoded input image (:class:`Stamped`) and one frame to segment (:class:`Frame`)."""

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True)
class Stamped:
    """One decoded image as it arrived.

    Attributes:
        image: The decoded array (a view of the message buffer where possible).
        stamp_ns: Header stamp in int nanoseconds.
        header: The message header (rclpy or rosbags), copied to the outputs unchanged.
        received: Monotonic time (s) the message arrived (bag tools: bag time in ns).
    """

    image: np.ndarray
    stamp_ns: int
    header: Any = None
    received: float = 0.0


@dataclass(frozen=True)
class Frame:
    """A synchronised RGB + aux pair (or RGB alone) waiting for inference.

    Attributes:
        rgb: ``uint8 (H,W,3)`` RGB image.
        aux: Raw aux as decoded, at its own size: depth ``(H',W')`` uint16 mm / float32 m,
            thermal ``(H',W')``, HHA ``(H',W',3)`` uint8; ``None`` in RGB-only mode.
        stamp_ns: RGB header stamp (ns); every output carries it.
        header: RGB header, copied to every output.
        received: When the RGB message arrived (monotonic s), for the latency figures.
        aux_header: Aux header (its ``frame_id`` names the aux camera for registration).
        aux_stamp_ns: Aux header stamp (ns).
    """

    rgb: np.ndarray
    aux: Optional[np.ndarray]
    stamp_ns: int
    header: Any = None
    received: float = 0.0
    aux_header: Any = None
    aux_stamp_ns: Optional[int] = None

    @classmethod
    def pair(cls, rgb: Stamped, aux: Optional[Stamped]) -> 'Frame':
        """The frame of an RGB image and its synchronised aux image (``None``: RGB only)."""
        if aux is None:
            return cls(rgb.image, None, rgb.stamp_ns, rgb.header, rgb.received)
        return cls(rgb.image, aux.image, rgb.stamp_ns, rgb.header, rgb.received,
                   aux.header, aux.stamp_ns)

    @property
    def size(self) -> tuple:
        """``(height, width)`` of the RGB image, the size of every output."""
        return tuple(self.rgb.shape[:2])
