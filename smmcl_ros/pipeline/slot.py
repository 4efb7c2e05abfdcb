"""The latest-frame slot and the inference thread that empties it.

Frames are never queued: :meth:`LatestFrameWorker.offer` replaces a frame the thread has not
taken yet (counted as dropped), so latency stays bounded by one inference when the model is
slower than the cameras.
"""

import threading
from typing import Callable, Optional

from smmcl_ros.pipeline.frame import Frame


class LatestFrameWorker:
    """A one-frame mailbox and the thread that processes what it holds.

    Args:
        process: Called with each frame taken, in the worker thread.
        on_error: Called with an exception ``process`` raised; return False to stop the thread
            (e.g. the process is shutting down), True to go on with the next frame.
        on_drop: Called when an untaken frame is replaced.
        name: Thread name.
    """

    def __init__(self, process: Callable[[Frame], None],
                 on_error: Callable[[Exception], bool],
                 on_drop: Callable[[], None] = lambda: None,
                 name: str = 'smmcl_inference') -> None:
        self._process, self._on_error, self._on_drop = process, on_error, on_drop
        self._name = name
        self._slot: Optional[Frame] = None
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def running(self) -> bool:
        """Started and not stopped."""
        return self._thread is not None

    @property
    def stopping(self) -> bool:
        """:meth:`stop` was called: results of the frame in progress must not be published."""
        return self._stop.is_set()

    def offer(self, frame: Frame) -> bool:
        """Put ``frame`` in the slot; True when it replaced an untaken one (dropped)."""
        with self._cv:
            dropped = self._slot is not None
            self._slot = frame
            self._cv.notify()
        if dropped:
            self._on_drop()
        return dropped

    def take(self, timeout: float = 0.0) -> Optional[Frame]:
        """The frame in the slot (waiting up to ``timeout`` s), emptying it; None if none."""
        with self._cv:
            if self._slot is None and timeout > 0:
                self._cv.wait(timeout)
            frame, self._slot = self._slot, None
        return frame

    def start(self) -> None:
        """Start the thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread after the frame in progress (waits up to ``timeout`` s)."""
        if self._thread is None:
            return
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            frame = self.take(timeout=0.1)
            if frame is None or self._stop.is_set():
                continue
            try:
                self._process(frame)
            except Exception as err:  # noqa: B902 - one bad frame must not kill the thread
                if not self._on_error(err):
                    break
