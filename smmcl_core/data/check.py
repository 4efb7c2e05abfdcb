"""Scan dataset splits for damaged samples before training: every bad file, with its reason.

Used by ``smmcl-check-data`` and at the start of ``smmcl-train``. Each sample is read the way
training reads it (``RGBXDataset.problems``): missing or unreadable files, images of the
wrong kind (e.g. a 16-bit RGB file, a colour label without a colour table), sizes that differ
within a sample, label ids outside the classes, aux images the preprocessing cannot convert,
pseudo-colour thermal that does not match the named colour map. Split-level problems are
reported too: a name listed twice, and names shared by two splits (a leak between training
and validation).

Notes (``report['notes']``, printed but not counted as problems): the colour map
``thermal_colormap: auto`` chose and how well it fits; the ranking of every colour map when
the named one does not fit the files; frames whose aspect ratio an exact ``data.resize:
[H, W]`` would distort.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from tqdm import tqdm

from smmcl_core.data.datasets import RGBXDataset
from smmcl_core.data.resize import aspect_note, ResizeSpec
from smmcl_core.data.thermal import MISMATCH_DISTANCE
from smmcl_core.data.thermal_fit import fit_folder, sample_evenly

# Frames whose size is read for the aspect-ratio note, per split.
SIZE_SAMPLES = 16
# Words of the per-file reason FolderDataset.problems gives for a map that does not fit.
_MISMATCH_WORDS = 'colour map on average'


def check_dataset(dataset: RGBXDataset, split: str = '', progress: bool = True
                  ) -> List[Dict[str, str]]:
    """Problems of one split: ``[{'split', 'sample', 'reason'}, ...]`` (``[]`` = clean)."""
    names = list(getattr(dataset, 'names', range(len(dataset))))
    found: List[Dict[str, str]] = []
    seen = set()
    for name in names:
        if name in seen:
            found.append({'split': split, 'sample': str(name),
                          'reason': f'sample {name!r} is listed more than once'})
        seen.add(name)
    for index in tqdm(range(len(dataset)), desc=f'check {split}'.strip(), leave=False,
                      dynamic_ncols=True, disable=not progress):
        for reason in dataset.problems(index):
            found.append({'split': split, 'sample': str(names[index]), 'reason': reason})
    return found


def _frame_sizes(dataset: RGBXDataset) -> List[Tuple[int, int]]:
    sizes = []
    for index in sample_evenly(range(len(dataset)), SIZE_SAMPLES):
        try:
            sizes.append(tuple(dataset.raw_sample(index)[0].shape[:2]))
        except (OSError, ValueError, KeyError):
            continue  # reported as a problem already
    return sizes


def _mismatch_note(dataset: RGBXDataset, counts: Dict[str, int]) -> str:
    """The ranking of every map on the folder whose named map did not fit ``counts`` files."""
    named = dataset.info.aux_ranges.get('thermal_colormap', '')
    ranking = fit_folder(Path(dataset.root) / 'aux')
    where = ', '.join(f'{split} {n}' for split, n in counts.items())
    return (f'thermal_colormap {named!r} does not fit {sum(counts.values())} file(s) '
            f'({where}); mean RGB distance of each map over {ranking.files} sampled colour '
            f'file(s) of {ranking.folder} (lower is better, above {MISMATCH_DISTANCE:g} = not '
            f'that map): {ranking.ranking_text(len(ranking.ranking))}; thermal_colormap: auto '
            f'uses the best within {MISMATCH_DISTANCE:g} ({ranking.name!r} here)')


def _unique(items: List[str]) -> List[str]:
    return list(dict.fromkeys(items))


def check_datasets(datasets: Mapping[str, RGBXDataset], progress: bool = True,
                   resize: Optional[ResizeSpec] = None) -> Dict[str, Any]:
    """Check several splits; also report samples shared between splits.

    Args:
        datasets: Split label -> dataset.
        progress: Show a progress bar.
        resize: The checked ``data.resize`` (``check_resize``); an exact ``(H, W)`` adds a
            note when sampled frames have another aspect ratio.

    Returns:
        ``{'splits': {split: {'samples': n, 'bad_samples': k}}, 'problems': [...],
        'notes': [...]}``.
    """
    notes: List[str] = []
    sizes: List[Tuple[int, int]] = []
    # Folder root -> (a dataset of it, split -> files whose named colour map did not fit).
    mismatches: Dict[str, Tuple[RGBXDataset, Dict[str, int]]] = {}
    problems: List[Dict[str, str]] = []
    splits: Dict[str, Dict[str, int]] = {}
    for split, dataset in datasets.items():
        found = check_dataset(dataset, split, progress)
        problems += found
        fit = getattr(dataset, 'colormap_fit', None)  # FolderDataset, thermal_colormap: auto
        if fit is not None:
            notes.append(fit.describe())
        mismatched = sum(_MISMATCH_WORDS in p['reason'] for p in found)
        if mismatched and getattr(dataset, 'root', None) is not None:
            entry = mismatches.setdefault(str(dataset.root), (dataset, {}))
            entry[1][split] = mismatched
        if isinstance(resize, tuple):
            sizes += _frame_sizes(dataset)
        splits[split] = {'samples': len(dataset),
                         'bad_samples': len({p['sample'] for p in found})}
    items = list(datasets.items())
    for i, (split_a, a) in enumerate(items):
        for split_b, b in items[i + 1:]:
            if getattr(a, 'root', None) is None or getattr(a, 'root', None) != \
                    getattr(b, 'root', None):
                continue
            for name in sorted(set(a.names) & set(b.names)):
                problems.append({'split': f'{split_a}+{split_b}', 'sample': name,
                                 'reason': f'sample {name!r} is in both {split_a!r} and '
                                           f'{split_b!r}'})
    notes += [_mismatch_note(dataset, counts) for dataset, counts in mismatches.values()]
    note = aspect_note(sizes, resize)
    if note:
        notes.append(note)
    return {'splits': splits, 'problems': problems, 'notes': _unique(notes)}


def format_report(report: Mapping[str, Any], limit: Optional[int] = None) -> str:
    """Readable summary: one line per split, then one line per problem."""
    lines = []
    for split, counts in report['splits'].items():
        lines.append(f'{split}: {counts["samples"]} samples, {counts["bad_samples"]} bad')
    problems = report['problems']
    shown = problems if limit is None else problems[:limit]
    for p in shown:
        lines.append(f'  [{p["split"]}] {p["sample"]}: {p["reason"]}')
    if len(shown) < len(problems):
        lines.append(f'  ... and {len(problems) - len(shown)} more problem(s)')
    lines += [f'note: {note}' for note in report.get('notes', ())]
    if problems:
        lines.insert(0, f'data check found {len(problems)} problem(s):')
    else:
        lines.insert(0, 'data check: no problems')
    return '\n'.join(lines)
