"""rosbag2 reading and writing (sqlite3 and MCAP) with ``rosbags``, no ROS installation needed.

Shared by ``smmcl-bag-eval``, ``smmcl-make-bag`` and ``smmcl-replay``.

Reading damaged bags: ``rosbags`` refuses to open a truncated ``.db3`` (SQLite notices the
file is shorter than its header says) or a ``.mcap`` without its footer/summary. Evaluating
the frames recorded before the damage is still useful (a robot that lost power mid-record),
so :class:`BagReader` then falls back to a *recovery* reader: SQLite rows are read in
insertion order with ``PRAGMA writable_schema`` (which makes SQLite accept the short file),
MCAP records are scanned sequentially from the start. Either way iteration stops with a
:class:`BagReadError` at the first unreadable record, after yielding every message before it;
:attr:`BagReader.damage` tells whether the bag was opened in recovery mode and why.
"""

from dataclasses import dataclass
import io
from pathlib import Path
import sqlite3
import struct
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores
import yaml

from smmcl_ros.image_codec import pack_image

STORAGES: Tuple[str, ...] = ('sqlite3', 'mcap')
IMAGE_TYPE = 'sensor_msgs/msg/Image'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'

_MCAP_MAGIC = b'\x89MCAP0\r\n'
_STORAGE_SUFFIXES = {'.db3': 'sqlite3', '.mcap': 'mcap'}


class BagError(RuntimeError):
    """Base class of the bag errors; the message names the bag."""


class BagOpenError(BagError):
    """The bag (or its storage file) cannot be opened at all."""


class BagReadError(BagError):
    """Reading stopped at a damaged record; every message before it was yielded.

    Attributes:
        messages_read: Messages successfully read before the damage.
    """

    def __init__(self, message: str, messages_read: int) -> None:
        super().__init__(message)
        self.messages_read = messages_read


class UnknownTopicError(BagError):
    """A requested topic is not in the bag; the message lists the bag's topics."""


class MessageDecodeError(ValueError):
    """One serialised message cannot be deserialised (unknown type or corrupt bytes)."""


def new_typestore() -> Any:
    """The ROS 2 Jazzy type store (``sensor_msgs``, ``std_msgs``, ... definitions)."""
    return get_typestore(Stores.ROS2_JAZZY)


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


def make_header(typestore: Any, stamp: int, frame_id: str) -> Any:
    """A rosbags ``std_msgs/Header`` for int-nanosecond ``stamp``."""
    time_type = typestore.types['builtin_interfaces/msg/Time']
    header_type = typestore.types['std_msgs/msg/Header']
    sec, nanosec = divmod(int(stamp), 1_000_000_000)
    return header_type(stamp=time_type(sec=sec, nanosec=nanosec), frame_id=frame_id)


def image_message(typestore: Any, image: np.ndarray, encoding: str, header: Any) -> Any:
    """A rosbags ``sensor_msgs/Image`` holding ``image`` (packed rows, native byte order).

    rosbags serialises ``data`` from a ``uint8`` numpy array, so this builds the message
    directly instead of through ``image_codec.fill_image`` (which fills rclpy messages with an
    ``array.array``); both lay the array out with ``image_codec.pack_image``.

    Raises:
        ValueError: ``encoding`` unknown or not matching the array's dtype/channels.
    """
    packed = pack_image(image, encoding)
    return typestore.types[IMAGE_TYPE](
        header=header, height=packed.height, width=packed.width, encoding=encoding,
        is_bigendian=packed.is_bigendian, step=packed.step,
        data=packed.data.copy())  # the message must not alias the caller's array


def camera_info_message(typestore: Any, header: Any, height: int, width: int,
                        fx: float, fy: float, cx: float, cy: float) -> Any:
    """A rosbags ``sensor_msgs/CameraInfo`` for an undistorted pinhole camera."""
    info_type = typestore.types[CAMERA_INFO_TYPE]
    roi_type = typestore.types['sensor_msgs/msg/RegionOfInterest']
    k = np.array([fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0], np.float64)
    p = np.array([fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0], np.float64)
    return info_type(header=header, height=int(height), width=int(width),
                     distortion_model='plumb_bob', d=np.zeros(5, np.float64), k=k,
                     r=np.eye(3, dtype=np.float64).ravel(), p=p, binning_x=0, binning_y=0,
                     roi=roi_type(x_offset=0, y_offset=0, height=0, width=0,
                                  do_rectify=False))


# --- recovery readers -------------------------------------------------------------------
class _Damage(Exception):
    """Internal: the recovery scanner hit an unreadable record."""


def _read_exact(stream: io.RawIOBase, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise _Damage(f'truncated {what}: expected {size} bytes, got {len(data)}')
    return data


def _mcap_string(buf: memoryview, pos: int) -> Tuple[str, int]:
    (size,) = struct.unpack_from('<I', buf, pos)
    end = pos + 4 + size
    if end > len(buf):
        raise _Damage('string runs past its record')
    return bytes(buf[pos + 4:end]).decode('utf-8'), end


def _mcap_records(stream, limit: Optional[int]) -> Iterator[Tuple[int, memoryview]]:
    """Yield ``(opcode, content)`` records from ``stream`` (until ``limit`` bytes or EOF)."""
    start = stream.tell()
    while limit is None or stream.tell() - start < limit:
        op = stream.read(1)
        if not op:
            if limit is None:
                raise _Damage('file ends without an MCAP footer')
            raise _Damage('chunk ends early')
        (size,) = struct.unpack('<Q', _read_exact(stream, 8, 'record length'))
        yield op[0], memoryview(_read_exact(stream, size, f'record 0x{op[0]:02x}'))


def _decompress(data: bytes, compression: str, size: int) -> bytes:
    if compression == '':
        return data
    try:
        from rosbags.rosbag2.storage_mcap import decompress  # zstd / lz4 as rosbags reads them
    except ImportError as exc:  # pragma: no cover - depends on the rosbags version
        raise _Damage(f'cannot decompress {compression!r} chunks: {exc}') from exc
    try:
        return decompress(data, compression, size, 0)
    except Exception as exc:  # noqa: B902 - any decoder failure is damage
        raise _Damage(f'bad {compression!r} chunk: {exc}') from exc


def _scan_mcap(path: Path) -> Iterator[Tuple[str, Tuple]]:
    """Sequentially scan an MCAP file, yielding schema/channel/message events.

    Events: ``('schema', (id, name))``, ``('channel', (id, schema_id, topic))``,
    ``('message', (channel_id, log_time, bytes))``. Raises ``_Damage`` at the first bad
    record; everything before it has been yielded.
    """
    with open(path, 'rb') as stream:
        if stream.read(8) != _MCAP_MAGIC:
            raise _Damage('bad MCAP magic')
        yield from _scan_mcap_stream(stream, None)


def _scan_mcap_stream(stream, limit: Optional[int]) -> Iterator[Tuple[str, Tuple]]:
    for op, rec in _mcap_records(stream, limit):
        try:
            if op == 0x02:  # footer: a complete file
                return
            if op == 0x03:
                (schema_id,) = struct.unpack_from('<H', rec, 0)
                name, _ = _mcap_string(rec, 2)
                yield 'schema', (schema_id, name)
            elif op == 0x04:
                channel_id, schema_id = struct.unpack_from('<HH', rec, 0)
                topic, _ = _mcap_string(rec, 4)
                yield 'channel', (channel_id, schema_id, topic)
            elif op == 0x05:
                channel_id, _, log_time, _ = struct.unpack_from('<HIQQ', rec, 0)
                yield 'message', (channel_id, log_time, bytes(rec[22:]))
            elif op == 0x06:
                _, _, raw_size, _ = struct.unpack_from('<QQQI', rec, 0)
                compression, pos = _mcap_string(rec, 28)
                (size,) = struct.unpack_from('<Q', rec, pos)
                payload = bytes(rec[pos + 8:pos + 8 + size])
                if len(payload) != size:
                    raise _Damage('chunk payload runs past its record')
                inner = io.BytesIO(_decompress(payload, compression, raw_size))
                yield from _scan_mcap_stream(inner, len(inner.getvalue()))
        except struct.error as exc:
            raise _Damage(f'malformed record 0x{op:02x}: {exc}') from exc


class _RecoveryMcap:
    """Sequential reader of a (possibly truncated) MCAP file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.topics: Dict[str, str] = {}
        self.counts: Dict[str, int] = {}
        schemas: Dict[int, str] = {}
        channel_topic: Dict[int, str] = {}
        try:
            for kind, event in _scan_mcap(path):
                if kind == 'schema':
                    schemas[event[0]] = event[1]
                elif kind == 'channel':
                    channel_topic[event[0]] = event[2]
                    self.topics[event[2]] = schemas.get(event[1], '')
                    self.counts.setdefault(event[2], 0)
                elif event[0] in channel_topic:
                    self.counts[channel_topic[event[0]]] += 1
        except _Damage:
            pass  # reported when iteration reaches it
        except OSError as exc:
            raise BagOpenError(f'cannot read {path}: {exc}') from exc

    def messages(self) -> Iterator[Tuple[str, int, bytes]]:
        channel_topic: Dict[int, str] = {}
        try:
            for kind, event in _scan_mcap(self.path):
                if kind == 'channel':
                    channel_topic[event[0]] = event[2]
                elif kind == 'message' and event[0] in channel_topic:
                    yield channel_topic[event[0]], event[1], event[2]
        except _Damage as exc:
            raise _Damage(f'{self.path}: {exc}') from exc


class _RecoverySqlite:
    """Row-by-row reader of a (possibly truncated) rosbag2 ``.db3`` file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._conn = self._connect()
            rows = self._conn.execute('SELECT id, name, type FROM topics').fetchall()
        except sqlite3.DatabaseError as exc:
            raise BagOpenError(f'cannot read the topics of {path}: {exc}') from exc
        self._topic_of = {row[0]: row[1] for row in rows}
        self.topics = {row[1]: row[2] for row in rows}
        self.counts = {topic: 0 for topic in self.topics}
        try:
            for (topic_id,) in self._conn.execute('SELECT topic_id FROM messages ORDER BY id'):
                if topic_id in self._topic_of:
                    self.counts[self._topic_of[topic_id]] += 1
        except sqlite3.DatabaseError:
            pass  # reported when iteration reaches it

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(f'file:{self.path}?mode=ro&immutable=1', uri=True)
        # Lets SQLite accept a file shorter than its header's page count (a truncated bag);
        # harmless on a read-only connection.
        conn.execute('PRAGMA writable_schema=ON')
        return conn

    def messages(self) -> Iterator[Tuple[str, int, bytes]]:
        try:
            # Insertion (rowid) order: the frames recorded before the damage come first.
            for topic_id, timestamp, data in self._conn.execute(
                    'SELECT topic_id, timestamp, data FROM messages ORDER BY id'):
                if topic_id in self._topic_of:
                    yield self._topic_of[topic_id], int(timestamp), bytes(data)
        except sqlite3.DatabaseError as exc:
            raise _Damage(f'{self.path}: {exc}') from exc

    def close(self) -> None:
        self._conn.close()


def _storage_files(path: Path) -> List[Path]:
    """Storage files of a bag directory (from metadata.yaml when readable) or a file."""
    if not path.is_dir():
        return [path]
    try:
        meta = yaml.safe_load((path / 'metadata.yaml').read_text())
        names = meta['rosbag2_bagfile_information']['relative_file_paths']
        files = [path / name for name in names]
        if files and all(f.is_file() for f in files):
            return files
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        pass
    return sorted(p for p in path.iterdir() if p.suffix in _STORAGE_SUFFIXES)


# --- reader -------------------------------------------------------------------------------
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
        files = _storage_files(self.path)
        if not files:
            raise BagOpenError(f'{self.path} holds no .db3 or .mcap storage file')
        self.storage = _STORAGE_SUFFIXES.get(files[0].suffix, files[0].suffix.lstrip('.'))
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
            kind = _STORAGE_SUFFIXES.get(file.suffix)
            if kind is None:
                raise BagOpenError(f'cannot open bag {self.path}: {cause}') from cause
            part = _RecoveryMcap(file) if kind == 'mcap' else _RecoverySqlite(file)
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
                cause = str(exc) if isinstance(exc, _Damage) else f'{type(exc).__name__}: {exc}'
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
            raise _Damage(f'bag could not be opened normally ({self.damage})')

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


# --- writer -------------------------------------------------------------------------------
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


def topics_of(bag: Path) -> Mapping[str, str]:
    """``{topic: msgtype}`` of a bag (convenience for tools and tests)."""
    with BagReader(bag) as reader:
        return dict(reader.topics)
