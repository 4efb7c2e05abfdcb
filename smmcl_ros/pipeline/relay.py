"""The ``rgb/camera_info`` relay store: recent messages by stamp, one picked per mask."""

import threading
from typing import Any, Dict, Optional

KEEP = 16  # messages kept, by stamp, to match the masks' stamps


class StampedStore:
    """The last ``keep`` messages by header stamp, safe to share between threads.

    Args:
        keep: How many stamps to keep (the oldest go first).
    """

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = int(keep)
        self._items: Dict[int, Any] = {}
        self._lock = threading.Lock()

    def add(self, stamp_ns: int, msg: Any) -> None:
        """Keep ``msg`` under ``stamp_ns`` (replacing one with the same stamp)."""
        with self._lock:
            self._items[stamp_ns] = msg
            while len(self._items) > self.keep:
                del self._items[min(self._items)]

    def for_stamp(self, stamp_ns: int) -> Optional[Any]:
        """The message with exactly ``stamp_ns``, else the newest one (None when empty)."""
        with self._lock:
            if not self._items:
                return None
            return self._items.get(stamp_ns, self._items[max(self._items)])
