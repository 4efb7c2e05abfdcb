"""Run records: JSON-lines metrics files and the headline numbers of one evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Sequence

from smmcl_core.metrics import ConfusionMatrix


def metrics_record(matrix: ConfusionMatrix, class_names: Sequence[str]) -> Dict[str, Any]:
    """Headline numbers of one evaluation (fractions in [0, 1])."""
    iou = matrix.iou().tolist()
    return {
        'miou': matrix.miou(),
        'miou_no_background': matrix.miou_no_background(),
        'pixel_acc': matrix.pixel_accuracy(),
        'mean_acc': matrix.mean_accuracy(),
        'iou': {name: (None if value != value else value)
                for name, value in zip(class_names, iou)},
    }


def append_jsonl(path: Path, record: Dict[str, Any]) -> None:
    """Append one JSON line (flushed, so a killed run keeps every finished record)."""
    with open(path, 'a') as f:
        f.write(json.dumps(record, sort_keys=False) + '\n')
        f.flush()


def read_jsonl(path: Path) -> List[Dict[str, Any]]:
    """All records of a JSON-lines file ([] if it does not exist); a torn last line is skipped."""
    if not Path(path).is_file():
        return []
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
