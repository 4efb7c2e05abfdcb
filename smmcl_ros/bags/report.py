"""``smmcl-bag-eval``'s report: the JSON summary of a :class:`BagEvaluator` run, and its output.

Report keys: message counts, frames paired / evaluated / unpaired / rejected with reasons,
warnings (input problems by the node's reason names), metrics (per-class IoU, mIoU,
accuracies; with labels), inference latency percentiles, and ``truncated`` + ``error`` for
damaged bags.
"""

import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from smmcl_core.utils.stats import percentile


def percentile_ms(values: Sequence[float], q: float) -> Optional[float]:
    """``q``-th percentile of seconds ``values`` in milliseconds (``None`` when empty)."""
    value = percentile(values, q)
    return None if value is None else value * 1000.0


def evaluator_report(evaluator: Any) -> Dict[str, Any]:
    """The JSON-ready summary of everything fed to ``evaluator`` (a ``BagEvaluator``)."""
    e = evaluator
    unpaired = {role: e.received[role] - e.used[role] - sum(e.rejected[role].values())
                for role in e.ports}
    rejected = {e.topics[role]: dict(reasons) for role, reasons in e.rejected.items() if reasons}
    frames = {
        'paired': e.paired,
        'evaluated': e.evaluated,
        'with_label': e.with_label,
        'unpaired': unpaired,
        'rejected': sum(sum(r.values()) for r in e.rejected.values()),
        'rejected_reasons': rejected,
    }
    if e.has_labels:
        frames['labels_unmatched'] = e.labels_unmatched
    metrics = None
    if e.confusion is not None and e.with_label:
        metrics = e.confusion.to_dict(list(e.segmenter.class_names))
    return {
        'messages': {e.topics[role]: e.received[role] for role in e.topics},
        'frames': frames,
        'warnings': dict(e.warnings),
        'metrics': metrics,
        'miou': None if metrics is None else metrics['miou'],
        'latency_ms': {
            'count': len(e.latencies),
            'p50': percentile_ms(e.latencies, 50),
            'p95': percentile_ms(e.latencies, 95),
            'mean': float(np.mean(e.latencies) * 1000.0) if e.latencies else None,
        },
    }


def write_report(report: Dict[str, Any], path: Optional[Path]) -> None:
    """The report as indented JSON to ``path`` (stdout when None)."""
    text = json.dumps(report, indent=2)
    if path is None:
        print(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + '\n')


def summary(report: Dict[str, Any]) -> str:
    """One line: frames, mIoU and latency."""
    frames = report['frames']
    latency = report['latency_ms']
    parts = [f"{frames['evaluated']} frames evaluated ({frames['paired']} paired, "
             f"{frames['rejected']} rejected)"]
    if report['miou'] is not None:
        parts.append(f"mIoU {report['miou']:.4f} over {frames['with_label']} labelled frames")
    if latency['p50'] is not None:
        parts.append(f"latency p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms")
    return '; '.join(parts)
