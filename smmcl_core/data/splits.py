"""Validation split rules: which samples choose ``best.pth``, never the test set by default.

``data.val_split``:

- ``auto`` (default): the dataset's own ``val`` split when it has one (MFNet, the synthetic
  scenes, a folder with ``val.txt``); otherwise ``data.val_fraction`` of ``data.train_split``
  is carved out and removed from training (:func:`carve_validation`). The carve depends only
  on the sorted sample names, the fraction and ``data.split_seed``, so it is the same in
  every run, rank and ``smmcl-evaluate`` call, and training seeds do not move it.
- any other name: that split of the dataset, as is (e.g. ``test`` for the authors' protocol,
  which the paper configs name explicitly).
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

AUTO = 'auto'


def carve_validation(names: Sequence[str], fraction: float, seed: int
                     ) -> Tuple[List[str], List[str]]:
    """Split ``names`` into ``(train, val)`` reproducibly.

    ``round(fraction * N)`` samples (at least one, leaving at least one) go to ``val``;
    both lists keep the order of ``names``.

    Raises:
        ValueError: ``fraction`` outside (0, 1) or fewer than two names.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f'data.val_fraction must be in (0, 1), got {fraction}')
    unique = sorted(set(names))
    if len(unique) < 2:
        raise ValueError(f'cannot carve a validation split from {len(unique)} sample(s)')
    count = min(max(1, int(round(fraction * len(unique)))), len(unique) - 1)
    order = np.random.default_rng(int(seed)).permutation(len(unique))
    chosen = {unique[i] for i in order[:count]}
    return [n for n in names if n not in chosen], [n for n in names if n in chosen]
