"""Scan dataset splits for damaged samples before training: every bad file, with its reason.

Used by ``smmcl-check-data`` and at the start of ``smmcl-train``. Each sample is read the way
training reads it (``RGBXDataset.problems``): missing or unreadable files, images of the
wrong kind (e.g. a 16-bit RGB file, a colour label without a colour table), sizes that differ
within a sample, label ids outside the classes, aux images the preprocessing cannot convert,
pseudo-colour thermal that does not match the named colour map. Split-level problems are
reported too: a name listed twice, and names shared by two splits (a leak between training
and validation).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from tqdm import tqdm

from smmcl_core.data.datasets import RGBXDataset


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


def check_datasets(datasets: Mapping[str, RGBXDataset], progress: bool = True
                   ) -> Dict[str, Any]:
    """Check several splits; also report samples shared between splits.

    Returns:
        ``{'splits': {split: {'samples': n, 'bad_samples': k}}, 'problems': [...]}``.
    """
    problems: List[Dict[str, str]] = []
    splits: Dict[str, Dict[str, int]] = {}
    for split, dataset in datasets.items():
        found = check_dataset(dataset, split, progress)
        problems += found
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
    return {'splits': splits, 'problems': problems}


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
    if problems:
        lines.insert(0, f'data check found {len(problems)} problem(s):')
    else:
        lines.insert(0, 'data check: no problems')
    return '\n'.join(lines)
