"""Decoded inputs in, :class:`~smmcl_ros.pipeline.frame.Frame` out: stamp guard + synchroniser.

The node and ``smmcl-bag-eval`` feed their decoded images here, so both pair by the same rule
(:class:`~smmcl_ros.pipeline.sync.ApproximateTimeSynchronizer`) and treat a backwards stamp
the same way (:class:`~smmcl_ros.pipeline.stamps.StampGuard`). :class:`AuxWatch` decides when
the aux stream counts as silent (the node's ``aux_timeout`` / ``on_missing_aux``).
"""

import time
from typing import Callable, Optional, Sequence

from smmcl_ros.pipeline.frame import Frame, Stamped
from smmcl_ros.pipeline.stamps import StampGuard
from smmcl_ros.pipeline.stats import Report
from smmcl_ros.pipeline.sync import ApproximateTimeSynchronizer

RGB, AUX = 'rgb', 'aux'


class FrameAssembler:
    """Pairs RGB and aux images (and optional extra inputs) into frames.

    Args:
        slop: Synchroniser slop in seconds.
        queue_size: Messages kept per input.
        on_frame: Called as ``on_frame(frame, *extras)`` for every synchronised set, under the
            synchroniser lock (keep it short); ``extras`` are the :class:`Stamped` of the extra
            inputs, in order.
        report: Problem sink (``stamp_backwards``), see :data:`~smmcl_ros.pipeline.stats.Report`.
        sources: Names used in reports for the ``rgb`` / ``aux`` / extra inputs (topics).
        extras: Names of extra synchronised inputs (``smmcl-bag-eval``: ``label``).
    """

    def __init__(self, slop: float, queue_size: int, on_frame: Callable[..., None],
                 report: Report, sources: Optional[dict] = None,
                 extras: Sequence[str] = ()) -> None:
        self.roles = (RGB, AUX) + tuple(extras)
        self.sources = {role: role for role in self.roles}
        self.sources.update(sources or {})
        self._on_frame = on_frame
        self._report = report
        self.sync = ApproximateTimeSynchronizer(len(self.roles), queue_size, slop,
                                                self._on_set)
        self.guard = StampGuard(self.sync.discard_after)

    def check_stamp(self, role: str, stamp_ns: int) -> None:
        """Run the stamp guard for ``role`` (also for inputs that bypass the synchroniser)."""
        jump = self.guard.check(role, stamp_ns)
        if jump is not None:
            self._report(self.sources[role], 'stamp_backwards', jump.describe(), False)

    def add(self, role: str, item: Stamped) -> None:
        """Feed one decoded image of ``role``; may emit a frame."""
        self.check_stamp(role, item.stamp_ns)
        self.sync.add(self.roles.index(role), item.stamp_ns, item)

    def add_rgb_only(self, rgb: Stamped) -> None:
        """Emit ``rgb`` as a frame without aux (RGB-only mode), after the stamp guard."""
        self.check_stamp(RGB, rgb.stamp_ns)
        self._on_frame(Frame.pair(rgb, None))

    def _on_set(self, rgb: Stamped, aux: Stamped, *extras: Stamped) -> None:
        self._on_frame(Frame.pair(rgb, aux), *extras)


class AuxWatch:
    """When the aux stream is silent: no valid aux image for longer than ``timeout``.

    Args:
        timeout: Seconds (the node parameter ``aux_timeout``).
        clock: Monotonic clock.
    """

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = float(timeout)
        self._clock = clock
        self._start = clock()
        self.last_aux: Optional[float] = None
        self.last_rgb: Optional[float] = None
        self._was_silent = False

    def rgb_arrived(self, now: float) -> None:
        """An RGB message arrived at ``now``."""
        self.last_rgb = now

    def aux_arrived(self, now: float) -> None:
        """A valid aux image arrived at ``now``."""
        self.last_aux = now

    def stale(self, now: float) -> bool:
        """No valid aux for longer than the timeout (counted from start-up before the first)."""
        since = self.last_aux if self.last_aux is not None else self._start
        return now - since > self.timeout

    def age(self, now: float) -> Optional[float]:
        """Seconds since the last valid aux image; None before the first one."""
        return None if self.last_aux is None else now - self.last_aux

    def silent(self, now: float) -> bool:
        """Stale while RGB flows (with no camera at all there is nothing to say)."""
        rgb_flowing = self.last_rgb is not None and now - self.last_rgb <= self.timeout
        return rgb_flowing and self.stale(now)

    def became_silent(self, now: float) -> bool:
        """Whether :meth:`silent` just turned true (once per silence, for one log line)."""
        silent = self.silent(now)
        edge = silent and not self._was_silent
        self._was_silent = silent
        return edge
