"""Approximate-time synchronisation with the semantics of message_filters' Python policy.

message_filters cannot be installed here, so this is a pure-Python implementation of the
algorithm its ``ApproximateTimeSynchronizer`` (ros2/message_filters, Python) runs, on integer
nanosecond stamps and without rclpy:

- Each input port keeps a queue ``{stamp: message}`` of at most ``queue_size`` entries; when
  it overflows the *oldest stamp* is evicted. A second message with an identical stamp on the
  same port replaces the first.
- When a message arrives on port ``i``, for every other port the candidates are the queued
  stamps with ``|s - stamp| <= slop``, ordered by that distance (closest first). If some port
  has no candidate, nothing is emitted.
- Candidate combinations are tried in ``itertools.product`` order (closest first); the first
  whose spread ``max - min`` is strictly below ``slop`` is emitted, and its messages are
  removed from their queues, so no message is ever used twice. At most one set is emitted
  per arrival.

Thread-safe: ``add`` holds a lock while matching; callbacks run under that lock, so keep them
short (the node only stores the newest pair there). Stamps come from
:func:`smmcl_ros.pipeline.stamps.header_ns`.
"""

import itertools
import threading
from typing import Any, Callable, Dict, List, Sequence


class ApproximateTimeSynchronizer:
    """Pairs messages from ``num_inputs`` ports whose stamps lie within ``slop``.

    Args:
        num_inputs: Number of input ports (>= 2).
        queue_size: Messages kept per port (>= 1).
        slop: Allowed stamp spread in seconds (> 0).
        callback: Called as ``callback(msg_0, ..., msg_{n-1})`` for each synchronised set.
    """

    def __init__(self, num_inputs: int, queue_size: int, slop: float,
                 callback: Callable[..., None]) -> None:
        if num_inputs < 2:
            raise ValueError(f'num_inputs must be >= 2, got {num_inputs}')
        if queue_size < 1:
            raise ValueError(f'queue_size must be >= 1, got {queue_size}')
        if not slop > 0:
            raise ValueError(f'slop must be > 0 seconds, got {slop}')
        self.queue_size = int(queue_size)
        self.slop_ns = int(round(slop * 1e9))
        self._callback = callback
        self._queues: List[Dict[int, Any]] = [{} for _ in range(num_inputs)]
        self._lock = threading.Lock()

    def add(self, port: int, stamp_ns: int, msg: Any) -> bool:
        """Add ``msg`` stamped ``stamp_ns`` (int nanoseconds) to ``port``.

        Returns:
            True if this arrival completed and emitted a synchronised set.
        """
        with self._lock:
            matched = self._add_locked(port, int(stamp_ns), msg)
            if matched is None:
                return False
            self._callback(*matched)
            return True

    def _add_locked(self, port: int, stamp: int, msg: Any):
        queue = self._queues[port]
        queue[stamp] = msg
        while len(queue) > self.queue_size:
            del queue[min(queue)]
        candidates: List[Sequence[int]] = []
        for other, other_queue in enumerate(self._queues):
            if other == port:
                continue
            near = [(abs(s - stamp), s) for s in other_queue if abs(s - stamp) <= self.slop_ns]
            if not near:
                return None
            near.sort(key=lambda item: item[0])  # stable: equal distances keep queue order
            candidates.append([s for _, s in near])
        for combo in itertools.product(*candidates):
            stamps = list(combo)
            stamps.insert(port, stamp)
            if max(stamps) - min(stamps) < self.slop_ns:
                return tuple(q.pop(s) for q, s in zip(self._queues, stamps))
        return None

    def clear(self) -> None:
        """Drop every queued message (e.g. after stamps jumped backwards)."""
        with self._lock:
            for queue in self._queues:
                queue.clear()

    def discard_after(self, stamp_ns: int) -> int:
        """Drop queued messages stamped later than ``stamp_ns + slop``; returns how many.

        For a timeline that jumped backwards (looping bag, restarted driver): messages from the
        old timeline could otherwise block or mis-pair, while messages already on the new
        timeline (the other input's first new frame) are kept.
        """
        limit = int(stamp_ns) + self.slop_ns
        dropped = 0
        with self._lock:
            for queue in self._queues:
                for stamp in [s for s in queue if s > limit]:
                    del queue[stamp]
                    dropped += 1
        return dropped

    def queued(self) -> List[int]:
        """Number of messages waiting on each port."""
        with self._lock:
            return [len(q) for q in self._queues]
