"""Colour-coded label images to class ids: the ``label_colors`` table of ``classes.yaml``.

Every colour of a label image must be in the table, unless ``label_color_tolerance`` is set:
then a colour within that Euclidean RGB distance of a table colour takes the id of the
nearest one (ties: the colour listed first in ``label_colors``), which is what label images
resized with interpolation need (a crack drawn as (128, 0, 0) on black becomes (1, 0, 0) ...
(127, 0, 0) at its edges). Colours farther than the tolerance from every table colour stay an
error naming the file, the colours and their pixel counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Tuple, Union

import numpy as np

Colour = Tuple[int, int, int]


@dataclass(frozen=True)
class LabelColorTable:
    """``label_colors`` with its tolerance.

    Attributes:
        colours: ``((r, g, b), id)`` pairs in the order of ``classes.yaml``.
        tolerance: Largest RGB distance snapped to the nearest table colour (0 = exact only).
    """

    colours: Tuple[Tuple[Colour, int], ...]
    tolerance: float = 0.0

    def __len__(self) -> int:
        return len(self.colours)


TableLike = Union[LabelColorTable, Mapping[Colour, int]]


def check_tolerance(value: Any, where: str) -> float:
    """``label_color_tolerance``: a number >= 0 (``None`` = 0).

    Raises:
        ValueError: Anything else (the message names ``where``).
    """
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f'{where}: label_color_tolerance must be a number >= 0 (an RGB '
                         f'distance), got {value!r}')
    return float(value)


def label_color_table(table: Optional[Mapping[Colour, int]], tolerance: Any, path: Path
                      ) -> Optional[LabelColorTable]:
    """Combine the parsed ``label_colors`` and ``label_color_tolerance`` of ``path``.

    Raises:
        ValueError: A bad tolerance, or a tolerance without ``label_colors``.
    """
    value = check_tolerance(tolerance, str(path))
    if not table:
        if tolerance is not None:
            raise ValueError(f'{path}: label_color_tolerance needs label_colors (the table '
                             'of colours it snaps to)')
        return None
    return LabelColorTable(tuple((tuple(int(v) for v in c), int(i)) for c, i in table.items()),
                           value)


def as_table(label_colors: TableLike) -> LabelColorTable:
    """A plain ``{(r, g, b): id}`` mapping as an exact (tolerance 0) table."""
    if isinstance(label_colors, LabelColorTable):
        return label_colors
    return LabelColorTable(tuple((tuple(int(v) for v in c), int(i))
                                 for c, i in label_colors.items()))


def colour_codes(rgb: np.ndarray) -> np.ndarray:
    """``uint8 (..., 3)`` RGB -> int32 ``r << 16 | g << 8 | b``."""
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _rgb_of(code: int) -> Colour:
    return code >> 16, (code >> 8) & 255, code & 255


def _listed(items, limit: int = 8) -> str:
    shown = ', '.join(f'{_rgb_of(c)} x{n}' for c, n in items[:limit])
    return shown + (' ...' if len(items) > limit else '')


def colours_to_ids(rgb: np.ndarray, label_colors: TableLike, path: Path) -> np.ndarray:
    """Map a colour-coded label ``uint8 (H,W,3)`` RGB to ``uint8 (H,W)`` ids.

    Raises:
        ValueError: A colour is not in the table, or (with a tolerance) farther than it from
            every table colour; the message lists them with pixel counts and names
            ``label_color_tolerance``.
    """
    table = as_table(label_colors)
    table_rgb = np.array([c for c, _ in table.colours], np.float64)  # (T,3)
    table_ids = np.array([i for _, i in table.colours], np.uint8)
    by_code = {}
    for (colour, label) in table.colours:
        by_code.setdefault(int(colour_codes(np.array(colour))), label)
    codes = colour_codes(rgb)  # (H,W)
    found, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    ids = np.empty(len(found), np.uint8)
    far = []  # (code, pixels, distance to the nearest table colour)
    for k, code in enumerate(found.tolist()):
        if code in by_code:
            ids[k] = by_code[code]
            continue
        dist = np.sqrt(((table_rgb - np.array(_rgb_of(code), np.float64)) ** 2).sum(1))
        nearest = int(dist.argmin())  # first of equal distances: the earlier table entry
        if dist[nearest] <= table.tolerance:
            ids[k] = table_ids[nearest]
        else:
            far.append((code, int(counts[k]), float(dist[nearest])))
    if far:
        items = [(c, n) for c, n, _ in far]
        needed = max(d for _, _, d in far)
        if table.tolerance > 0:
            raise ValueError(
                f'label image {path} has colours farther than label_color_tolerance '
                f'{table.tolerance:g} from every label_colors colour: {_listed(items)} (the '
                f'farthest is {needed:.1f} RGB units from its nearest table colour)')
        raise ValueError(
            f'label image {path} has colours not in label_colors: {_listed(items)}; if they '
            f'are blended edges (e.g. from resizing), label_color_tolerance: {np.ceil(needed):g}'
            ' in classes.yaml maps every colour within that RGB distance to the nearest table '
            'colour')
    return ids[inverse.reshape(codes.shape)]
