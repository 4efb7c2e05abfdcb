"""Writing rosbag2 directory bags (``metadata.yaml`` + one ``.db3`` or ``.mcap``)."""

from pathlib import Path
from typing import Any, Dict

from rosbags.rosbag2 import StoragePlugin, Writer

from smmcl_ros.bags.messages import new_typestore, STORAGES


class BagWriter:
    """Write a rosbag2 directory bag (``metadata.yaml`` + one ``.db3`` or ``.mcap``).

    Message definitions come from the type store, so ROS 2 tools (``ros2 bag info/play``)
    and rosbags read the result.

    Args:
        path: Output directory; must not exist.
        storage: ``'sqlite3'`` or ``'mcap'``.
        typestore: rosbags type store (default ROS 2 Jazzy).

    Raises:
        ValueError: Unknown storage.
        FileExistsError: ``path`` exists.
    """

    def __init__(self, path: Path, storage: str = 'sqlite3', typestore: Any = None) -> None:
        if storage not in STORAGES:
            raise ValueError(f'unknown storage {storage!r}; valid: {", ".join(STORAGES)}')
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f'output bag {self.path} exists already; not overwriting')
        self.typestore = typestore if typestore is not None else new_typestore()
        self._writer = Writer(self.path, version=9,
                              storage_plugin=StoragePlugin[storage.upper()])
        self._writer.open()
        self._connections: Dict[str, Any] = {}
        self.counts: Dict[str, int] = {}

    def __enter__(self) -> 'BagWriter':
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare ``topic`` with ROS type ``msgtype`` (idempotent)."""
        if topic in self._connections:
            return
        if msgtype not in self.typestore.types:
            raise ValueError(f'unknown message type {msgtype!r} for topic {topic}')
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self.typestore)
        self.counts[topic] = 0

    def write(self, topic: str, msg: Any, timestamp: int) -> None:
        """Serialise ``msg`` (a rosbags message) to ``topic`` at bag time ``timestamp`` ns."""
        self.add_topic(topic, msg.__msgtype__)
        raw = self.typestore.serialize_cdr(msg, msg.__msgtype__)
        self._writer.write(self._connections[topic], int(timestamp), raw)
        self.counts[topic] += 1

    def close(self) -> None:
        """Finish the storage file and write ``metadata.yaml``."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
