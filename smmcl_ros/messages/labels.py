"""The class names and colours as JSON, for the latched ``segmentation/labels`` topic."""

import json
from typing import Sequence

import numpy as np


def labels_json(class_names: Sequence[str], palette: np.ndarray) -> str:
    """``{"0": {"name": ..., "color": [r, g, b]}, ...}`` for the latched labels topic."""
    palette = np.asarray(palette, np.uint8)
    return json.dumps({str(i): {'name': str(name), 'color': [int(c) for c in palette[i]]}
                       for i, name in enumerate(class_names)})
