"""Reading rosbag2 bags (sqlite3 and MCAP) with ``rosbags``, no ROS installation needed.

Shared by ``smmcl-bag-eval``, ``smmcl-demo`` and ``smmcl-replay``. A bag that ``rosbags``
cannot open is read by the recovery readers (:mod:`smmcl_ros.bags.recovery`): iteration then
stops with a :class:`~smmcl_ros.bags.errors.BagReadError` at the first unreadable record, after
yielding every message before it; :attr:`BagReader.damage` tells why.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Tuple

from rosbags.rosbag2 import Reader

from smmcl_ros.bags.errors import BagOpenError, BagReadError, MessageDecodeError, UnknownTopicError
from smmcl_ros.bags.messages import new_typestore
from smmcl_ros.bags.recovery import (Damage, RecoveryMcap, RecoverySqlite, storage_files,
                                     STORAGE_SUFFIXES)


@dataclass(frozen=True)
class BagMessage:
    """One serialised message read from a bag.

    Attributes:
        topic: Topic name.
        msgtype: ROS type, e.g. ``sensor_msgs/msg/Image``.
        timestamp: Bag (receive) time in int nanoseconds.
        raw: CDR bytes, as published.
    """

    topic: str
    msgtype: str
    timestamp: int
    raw: bytes


class BagReader:
    """Read a rosbag2 bag (directory, ``.db3`` or ``.mcap``), recovering from damage.

    Args:
        path: Bag directory (with ``metadata.yaml``) or a single storage file.
        typestore: rosbags type store used by :meth:`deserialize` (default ROS 2 Jazzy).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        BagOpenError: Not a bag, or damaged beyond recovery.

    Attributes:
        path: The bag path.
        topics: ``{topic: msgtype}``.
        counts: ``{topic: message count}`` (readable messages only in recovery mode).
        storage: ``'sqlite3'`` or ``'mcap'``.
        damage: ``None``, or why the bag could only be opened in recovery mode.
    """

    def __init__(self, path: Path, typestore: Any = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f'bag not found: {self.path}')
        self.typestore = typestore if typestore is not None else new_typestore()
        self.damage: Optional[str] = None
        self._reader: Optional[Reader] = None
        self._recovery: List[Any] = []
        files = storage_files(self.path)
        if not files:
            raise BagOpenError(f'{self.path} holds no .db3 or .mcap storage file')
        self.storage = STORAGE_SUFFIXES.get(files[0].suffix, files[0].suffix.lstrip('.'))
        try:
            reader = Reader(self.path)
            reader.open()
        except Exception as exc:  # noqa: B902 - rosbags raises several types on damage
            self.damage = f'{type(exc).__name__}: {exc}'
            self._open_recovery(files, exc)
        else:
            self._reader = reader
            self.topics = {t: info.msgtype or '' for t, info in reader.topics.items()}
            self.counts = {t: info.msgcount for t, info in reader.topics.items()}

    def _open_recovery(self, files: List[Path], cause: Exception) -> None:
        self.topics, self.counts = {}, {}
        for file in files:
            kind = STORAGE_SUFFIXES.get(file.suffix)
            if kind is None:
                raise BagOpenError(f'cannot open bag {self.path}: {cause}') from cause
            part = RecoveryMcap(file) if kind == 'mcap' else RecoverySqlite(file)
            self._recovery.append(part)
            for topic, msgtype in part.topics.items():
                self.topics.setdefault(topic, msgtype)
                self.counts[topic] = self.counts.get(topic, 0) + part.counts[topic]
        if not self.topics:
            raise BagOpenError(f'cannot open bag {self.path}: {cause}') from cause

    def __enter__(self) -> 'BagReader':
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Release the storage files."""
        if self._reader is not None and self._reader.is_open:
            self._reader.close()
        for part in self._recovery:
            if hasattr(part, 'close'):
                part.close()

    def describe_topics(self) -> str:
        """``'/a (type, N msgs), /b (...)'`` for error messages."""
        if not self.topics:
            return '(none)'
        return ', '.join(f'{t} ({self.topics[t]}, {self.counts.get(t, 0)} msgs)'
                         for t in sorted(self.topics))

    def require_topics(self, topics: Iterable[str], msgtype: Optional[str] = None) -> None:
        """Check that every topic exists (and has ``msgtype`` when given).

        Raises:
            UnknownTopicError: Naming the missing topic and listing the bag's topics.
        """
        for topic in topics:
            if topic not in self.topics:
                raise UnknownTopicError(
                    f'topic {topic!r} not found in bag {self.path}; the bag has: '
                    f'{self.describe_topics()}')
            if msgtype is not None and self.topics[topic] != msgtype:
                raise UnknownTopicError(
                    f'topic {topic!r} in bag {self.path} has type {self.topics[topic]!r}, '
                    f'expected {msgtype!r}')

    def messages(self, topics: Optional[Iterable[str]] = None) -> Iterator[BagMessage]:
        """Yield messages of ``topics`` (default all) in storage order.

        Raises:
            BagReadError: At the first damaged record, after yielding everything before it.
        """
        wanted = set(self.topics if topics is None else topics)
        count = 0
        source = self._raw_messages(wanted)
        while True:
            try:
                topic, timestamp, raw = next(source)
            except StopIteration:
                return
            except Exception as exc:  # noqa: B902 - storage backends raise many types
                cause = str(exc) if isinstance(exc, Damage) else f'{type(exc).__name__}: {exc}'
                raise BagReadError(
                    f'bag {self.path} is damaged: reading stopped after {count} messages '
                    f'({cause})', count) from exc
            count += 1
            yield BagMessage(topic, self.topics.get(topic, ''), timestamp, raw)

    def _raw_messages(self, wanted: set) -> Iterator[Tuple[str, int, bytes]]:
        if self._reader is not None:
            connections = [c for c in self._reader.connections if c.topic in wanted]
            if not connections:
                return
            for connection, timestamp, raw in self._reader.messages(connections):
                yield connection.topic, int(timestamp), bytes(raw)
            return
        for part in self._recovery:
            for topic, timestamp, raw in part.messages():
                if topic in wanted:
                    yield topic, timestamp, raw
        if self.damage is not None:
            # The scan reached the end of what is readable without hitting a bad record
            # (e.g. only the MCAP footer/summary is missing): still a damaged bag.
            raise Damage(f'bag could not be opened normally ({self.damage})')

    def deserialize(self, message: BagMessage) -> Any:
        """Deserialise a :class:`BagMessage` with the type store.

        Raises:
            MessageDecodeError: Unknown type or corrupt bytes (names topic and type).
        """
        try:
            return self.typestore.deserialize_cdr(message.raw, message.msgtype)
        except Exception as exc:  # noqa: B902 - rosbags raises KeyError/struct/ValueError
            raise MessageDecodeError(
                f'cannot deserialise {message.msgtype or "untyped"} message on '
                f'{message.topic} at t={message.timestamp}: {type(exc).__name__}: {exc}'
            ) from exc


def topics_of(bag: Path) -> Mapping[str, str]:
    """``{topic: msgtype}`` of a bag (convenience for tools and tests)."""
    with BagReader(bag) as reader:
        return dict(reader.topics)
