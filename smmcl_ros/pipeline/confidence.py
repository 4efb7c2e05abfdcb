"""Encodings of the per-pixel confidence image (``confidence_encoding`` parameter).

``32FC1`` publishes the model's probability of the chosen class as float32 in [0, 1];
``mono8`` publishes ``round(255 * p)`` (ties to even, as Python's ``round``), the 0-255
format Nav2's semantic segmentation layer reads. No ROS import.
"""

from typing import Tuple

import numpy as np

CONFIDENCE_ENCODINGS: Tuple[str, ...] = ('32FC1', 'mono8')


def check_confidence_encoding(encoding: str) -> str:
    """``encoding`` if it is one of :data:`CONFIDENCE_ENCODINGS`.

    Raises:
        ValueError: Naming the parameter and the valid encodings.
    """
    if encoding not in CONFIDENCE_ENCODINGS:
        raise ValueError(f"parameter 'confidence_encoding' = {encoding!r} is invalid; valid: "
                         f'{list(CONFIDENCE_ENCODINGS)}')
    return encoding


def encode_confidence(probability: np.ndarray, encoding: str) -> np.ndarray:
    """The confidence image to publish with ``encoding``.

    Args:
        probability: ``(H, W)`` probabilities in [0, 1].
        encoding: ``32FC1`` (float32 as is) or ``mono8`` (``round(255 * p)`` as uint8).

    Raises:
        ValueError: Unknown encoding.
    """
    check_confidence_encoding(encoding)
    p = np.asarray(probability, np.float32)
    if encoding == '32FC1':
        return p
    scaled = p.astype(np.float64) * 255.0  # exact product of the float32 p, then rounded
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)
