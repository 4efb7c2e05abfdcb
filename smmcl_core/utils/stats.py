"""Summary statistics of timing samples."""

from typing import Optional, Sequence

import numpy as np


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """The ``q``-th percentile of ``values``, interpolated linearly; ``None`` for none.

    Args:
        values: Samples (any sequence of numbers).
        q: Percentile in [0, 100].
    """
    if len(values) == 0:
        return None
    return float(np.percentile(np.asarray(values, np.float64), q))
