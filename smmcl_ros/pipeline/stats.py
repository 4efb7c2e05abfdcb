"""Thread-safe counters of the frame pipeline and their diagnostics key/value summary.

Pure Python (no rclpy): the subscription callbacks and the inference thread update one
:class:`NodeStats`; the 1 Hz diagnostics timer calls :meth:`NodeStats.snapshot`, which turns the
counts since the previous snapshot into rates and summarises latencies.
"""

from collections import Counter
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

from smmcl_core.utils.stats import percentile

# How the pipeline stages report an input problem: ``report(source, reason, detail, once)``;
# ``source`` is a topic of :mod:`smmcl_ros.topics` (or ``model``), ``reason`` a short token
# counted in diagnostics / the bag report, ``once`` asks for a single log line.
Report = Callable[[str, str, str, bool], None]

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels

# Counter names whose growth means frames were discarded (the rest were handled and used).
REJECTING_REASONS = ('unknown_encoding', 'wrong_encoding', 'zero_size', 'bad_step',
                     'short_data', 'inference_error', 'no_camera_info', 'malformed_camera_info',
                     # aux registration refusals (smmcl_core.data.registration.REFUSALS)
                     'aspect_mismatch', 'unregistered_size', 'no_homography', 'no_intrinsics',
                     'no_extrinsics', 'bad_depth')


class NodeStats:
    """Counters, rates and latency windows shared by the node's threads."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: Counter = Counter()  # rgb_in, aux_in, pairs, outputs, dropped, rgb_only
        self._issues: Counter = Counter()  # (topic, reason) -> count
        self._latency_ms: List[float] = []  # receive -> published, this window
        self._inference_ms: List[float] = []  # Segmenter.predict only, this window
        self._stage_ms: Dict[str, List[float]] = {}  # e.g. points: cloud build, this window
        self._last_counts: Counter = Counter()
        self._last_issues: Counter = Counter()
        self._last_time = clock()

    def count(self, name: str, n: int = 1) -> None:
        """Increment a flow counter (``rgb_in``, ``aux_in``, ``pairs``, ``outputs``, ...)."""
        with self._lock:
            self._counts[name] += n

    def issue(self, topic: str, reason: str) -> None:
        """Record one input problem on ``topic`` (rejected or repaired input)."""
        with self._lock:
            self._issues[(topic, reason)] += 1

    def frame_done(self, latency_s: float, inference_s: float) -> None:
        """Record one published frame's end-to-end and inference latency."""
        with self._lock:
            self._counts['outputs'] += 1
            self._latency_ms.append(latency_s * 1e3)
            self._inference_ms.append(inference_s * 1e3)

    def stage_done(self, name: str, seconds: float) -> None:
        """Record the time of one optional output stage (``points``), in ``{name}_ms_*``."""
        with self._lock:
            self._stage_ms.setdefault(name, []).append(seconds * 1e3)

    def totals(self) -> Tuple[Dict[str, int], Dict[Tuple[str, str], int]]:
        """Copies of the cumulative flow counters and input-problem counters."""
        with self._lock:
            return dict(self._counts), dict(self._issues)

    def snapshot(self, aux_age_s: Optional[float], aux_stale: bool, device: str
                 ) -> Tuple[int, str, List[Tuple[str, str]]]:
        """Summarise the window since the previous snapshot and start a new one.

        Args:
            aux_age_s: Seconds since the last valid aux image (None: never received).
            aux_stale: RGB is arriving but aux has been silent longer than its timeout.
            device: Inference device, reported as is.

        Returns:
            ``(level, message, [(key, value), ...])`` for a ``DiagnosticStatus``.
        """
        with self._lock:
            now = self._clock()
            period = max(now - self._last_time, 1e-9)
            counts = Counter(self._counts)
            window = counts - self._last_counts
            latency, inference = self._latency_ms, self._inference_ms
            self._latency_ms, self._inference_ms = [], []
            stages = self._stage_ms  # a stage seen once stays listed ('nan' when idle)
            self._stage_ms = {name: [] for name in stages}
            self._last_counts, self._last_time = counts, now
            issues = Counter(self._issues)
            new_issues = issues - self._last_issues
            self._last_issues = issues
        values = [
            ('device', device),
            ('rgb_rate_hz', f"{window['rgb_in'] / period:.2f}"),
            ('aux_rate_hz', f"{window['aux_in'] / period:.2f}"),
            ('pair_rate_hz', f"{window['pairs'] / period:.2f}"),
            ('output_rate_hz', f"{window['outputs'] / period:.2f}"),
            ('latency_ms_p50', _percentile(latency, 50)),
            ('latency_ms_max', _percentile(latency, 100)),
            ('inference_ms_p50', _percentile(inference, 50)),
            ('inference_ms_max', _percentile(inference, 100)),
        ]
        for name, times in sorted(stages.items()):
            values += [(f'{name}_ms_p50', _percentile(times, 50)),
                       (f'{name}_ms_max', _percentile(times, 100))]
        values += [
            ('pairs_total', str(counts['pairs'])),
            ('frames_out_total', str(counts['outputs'])),
            ('frames_dropped_total', str(counts['dropped'])),
            ('frames_rgb_only_total', str(counts['rgb_only'])),
            ('inputs_rejected_total', str(sum(
                n for (_, reason), n in issues.items() if reason in REJECTING_REASONS))),
            ('aux_age_s', 'never' if aux_age_s is None else f'{aux_age_s:.3f}'),
        ]
        values += [(f'input.{topic}.{reason}', str(n))
                   for (topic, reason), n in sorted(issues.items())]
        # The level describes this window, so it recovers once the problem stops; the totals
        # above keep the history.
        rejected_now = sum(n for (_, reason), n in new_issues.items()
                           if reason in REJECTING_REASONS and reason != 'inference_error')
        if new_issues.get(('model', 'inference_error')):
            level, message = ERROR, 'inference errors'
        elif aux_stale:
            level, message = WARN, 'aux stream silent'
        elif rejected_now:
            level, message = WARN, f'rejecting inputs ({rejected_now} in the last period)'
        elif window['dropped']:
            level, message = OK, 'running; dropping frames (model slower than input)'
        else:
            level, message = OK, 'running'
        return level, message, values


def _percentile(values: List[float], q: float) -> str:
    value = percentile(values, q)
    return 'nan' if value is None else f'{value:.2f}'
