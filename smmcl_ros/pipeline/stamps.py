"""Header stamps as int nanoseconds, and the guard against stamps that go backwards.

Works on any ``builtin_interfaces/Time``-like object (rclpy or rosbags): ``sec`` + ``nanosec``.
"""

from typing import Any, Callable, Dict, Hashable, NamedTuple, Optional, Tuple

NS_PER_S = 1_000_000_000


def to_ns(stamp: Any) -> int:
    """``sec`` + ``nanosec`` of a time message in int nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def header_ns(msg: Any) -> int:
    """Header stamp of a message (rclpy or rosbags) in int nanoseconds."""
    return to_ns(msg.header.stamp)


def split_ns(ns: int) -> Tuple[int, int]:
    """``(sec, nanosec)`` of int nanoseconds (non-negative)."""
    return divmod(int(ns), NS_PER_S)


def set_stamp(stamp: Any, ns: int) -> None:
    """Write int nanoseconds ``ns`` into a time message."""
    stamp.sec, stamp.nanosec = split_ns(ns)


class StampJump(NamedTuple):
    """A stamp earlier than the previous one on the same input."""

    back_ns: int  # how far it went back
    dropped: int  # queued messages of the old timeline discarded

    def describe(self) -> str:
        """One log line."""
        return (f'stamp went back {self.back_ns / 1e9:.3f} s; dropped {self.dropped} queued '
                'message(s) from the old timeline')


class StampGuard:
    """Detects backwards stamps per input and lets the new timeline in.

    A looping bag or a restarted driver starts its stamps again: instead of stalling, the
    guard calls ``discard_after(stamp)`` (the synchroniser's, which drops the old timeline's
    queued messages but keeps those already on the new one) and reports the jump.

    Args:
        discard_after: Called with the new stamp on a jump; returns how many messages it
            dropped.
    """

    def __init__(self, discard_after: Callable[[int], int]) -> None:
        self._discard_after = discard_after
        self._last: Dict[Hashable, int] = {}

    def check(self, key: Hashable, stamp_ns: int) -> Optional[StampJump]:
        """Record ``stamp_ns`` on input ``key``; the jump when it went backwards."""
        last = self._last.get(key)
        self._last[key] = stamp_ns
        if last is None or stamp_ns >= last:
            return None
        return StampJump(last - stamp_ns, self._discard_after(stamp_ns))
