"""Summary statistics of timing samples."""

from typing import Optional, Sequence

import numpy as np


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """``q``-th percentile (linear interpolation, 0 <= q <= 100); ``None`` for no values."""
    if len(values) == 0:
        return None
    return float(np.percentile(np.asarray(values, np.float64), q))
