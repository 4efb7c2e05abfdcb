"""Which colour map were these pseudo-colour thermal files rendered with?

``thermal_colormap: auto`` in ``classes.yaml``: every named map of ``smmcl_core.data.thermal``
is fitted on a sample of the folder's colour aux files (the mean RGB distance of the pixels
to the map's colours, as ``invert_colormap`` measures it). The best map is used when it is
within :data:`~smmcl_core.data.thermal.MISMATCH_DISTANCE`; when none is (a camera palette
that is in no table), ``luminance`` is used, which is right only when the palette's
brightness rises with temperature. The choice is stored under ``thermal_colormap`` like a
named map (``info.aux_ranges`` and the checkpoint meta), so every later conversion uses
the same map; :meth:`ColormapFit.describe` says which and how well.

``smmcl-check-data`` prints the same ranking when a named map does not fit the files.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from smmcl_core.data.io import AUX_EXTENSIONS, read_aux
from smmcl_core.data.thermal import (check_colormap, COLORMAPS, invert_colormap, LUMINANCE,
                                     MISMATCH_DISTANCE)

AUTO = 'auto'
SAMPLE_FILES = 16  # colour files the fit reads, spread evenly over the sorted names

# Maps that are fitted: luminance has no colours to compare with (its distance is always 0).
FITTED_MAPS: Tuple[str, ...] = tuple(name for name in COLORMAPS if name != LUMINANCE)


@dataclass(frozen=True)
class ColormapFit:
    """Result of fitting every map on a sample of files.

    Attributes:
        name: The map to use: the best fitting one, or ``luminance`` when none fits.
        ranking: ``(map, mean RGB distance)`` best first, over the sampled files.
        files: Colour files the fit used (0: none was a colour image).
        folder: Where the files came from ('' if not from a folder).
    """

    name: str
    ranking: Tuple[Tuple[str, float], ...]
    files: int
    folder: str = ''

    @property
    def distance(self) -> float:
        """Mean distance of the chosen map (0 for luminance, which has no colours)."""
        return dict(self.ranking).get(self.name, 0.0)

    def ranking_text(self, count: int = 6) -> str:
        """``'jet 4.1, turbo 12.0, ...'``: the best ``count`` maps with their distances."""
        shown = ', '.join(f'{name} {dist:.1f}' for name, dist in self.ranking[:count])
        return shown + (', ...' if len(self.ranking) > count else '')

    def describe(self) -> str:
        """One line: which map, how well, and the runners-up."""
        where = f' in {self.folder}' if self.folder else ''
        if not self.files:
            return (f'thermal_colormap auto: no colour thermal file{where}; '
                    f'using {LUMINANCE!r} (unused for grey files)')
        sample = f'{self.files} colour file(s){where}'
        if self.name == LUMINANCE:
            best, dist = self.ranking[0]
            return (f'thermal_colormap auto: no colour map fits {sample} (best {best!r}, '
                    f'{dist:.1f} RGB units from its colours on average; limit '
                    f'{MISMATCH_DISTANCE:g}): using {LUMINANCE!r}, the grey level, which is '
                    'right only when the palette gets brighter with temperature; ranking: '
                    f'{self.ranking_text()}')
        return (f'thermal_colormap auto: {self.name!r} fits {sample}, {self.distance:.1f} RGB '
                f'units from its colours on average (limit {MISMATCH_DISTANCE:g}); ranking: '
                f'{self.ranking_text()}')


def rank_colormaps(images: Sequence[np.ndarray]) -> List[Tuple[str, float]]:
    """Mean distance of each map over ``uint8 (H,W,3)`` RGB images (each image weighs the same).

    Returns:
        ``[(map, distance), ...]`` sorted best (smallest) first; ties keep the table order.
    """
    if not images:
        return []
    totals = {name: 0.0 for name in FITTED_MAPS}
    for rgb in images:
        for name in FITTED_MAPS:
            totals[name] += invert_colormap(rgb, name)[1]
    ranking = [(name, totals[name] / len(images)) for name in FITTED_MAPS]
    return sorted(ranking, key=lambda item: item[1])


def choose_colormap(images: Sequence[np.ndarray], folder: str = '') -> ColormapFit:
    """The best map for ``images``, or ``luminance`` when none is within the mismatch limit."""
    ranking = tuple(rank_colormaps(images))
    if ranking and ranking[0][1] <= MISMATCH_DISTANCE:
        name = ranking[0][0]
    else:
        name = LUMINANCE
    return ColormapFit(name, ranking, len(images), folder)


def sample_evenly(items: Sequence, count: int) -> list:
    """Up to ``count`` items spread evenly over ``items`` (first and last included)."""
    if len(items) <= count:
        return list(items)
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in sorted(set(picks.tolist()))]


def _colour_images(paths: Sequence[Path]) -> List[np.ndarray]:
    images = []
    for path in paths:
        try:
            image = read_aux(path, 'thermal')
        except (OSError, ValueError):
            continue  # damaged files are the data check's business, not the fit's
        if image.ndim == 3 and image.dtype == np.uint8:
            images.append(image[:, :, :3])
    return images


@functools.lru_cache(maxsize=32)
def _fit_cached(folder: str, files: Tuple[Tuple[str, int, int], ...]) -> ColormapFit:
    del files  # part of the cache key only: a changed file means a new fit
    paths = sorted(p for p in Path(folder).iterdir()
                   if p.is_file() and p.suffix.lower() in AUX_EXTENSIONS)
    return choose_colormap(_colour_images(sample_evenly(paths, SAMPLE_FILES)), folder)


def fit_folder(folder: Path) -> ColormapFit:
    """Fit every map on up to :data:`SAMPLE_FILES` aux files of ``folder`` (sorted names).

    The same folder gives the same answer for every split (the sample does not depend on
    the split file); the fit is cached per process until a file of the folder changes.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'aux folder not found: {folder}')
    stats = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in AUX_EXTENSIONS:
            st = path.stat()
            stats.append((path.name, st.st_size, st.st_mtime_ns))
    return _fit_cached(str(folder), tuple(stats))


def check_colormap_spec(name: str) -> str:
    """``thermal_colormap`` of ``classes.yaml``: a known map, ``auto`` or '' (none).

    Raises:
        ValueError: Anything else (the message lists the valid names).
    """
    if name == AUTO:
        return name
    try:
        return check_colormap(name)
    except ValueError:
        raise ValueError(f'unknown thermal_colormap {name!r}; valid: {AUTO} (fit every map on '
                         f'the files), {", ".join(COLORMAPS)}') from None


def resolve_auto_colormap(aux_ranges: Mapping[str, Any], aux_folder: Path
                          ) -> Tuple[Dict[str, Any], Optional[ColormapFit]]:
    """Replace ``thermal_colormap: auto`` in ``aux_ranges`` by the map fitted on ``aux_folder``.

    Returns:
        ``(aux_ranges with the chosen name, the fit)``; unchanged ranges and None without
        ``auto``.
    """
    ranges = dict(aux_ranges)
    if ranges.get('thermal_colormap') != AUTO:
        return ranges, None
    fit = fit_folder(aux_folder)
    ranges['thermal_colormap'] = fit.name
    return ranges, fit
