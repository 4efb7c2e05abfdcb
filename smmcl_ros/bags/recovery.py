"""Recovery readers for damaged bags (a robot that lost power mid-record).

``rosbags`` refuses to open a truncated ``.db3`` (SQLite notices the file is shorter than its
header says) or a ``.mcap`` without its footer/summary. These readers get the messages recorded
before the damage: SQLite rows are read in insertion order with ``PRAGMA writable_schema``
(which makes SQLite accept the short file), MCAP records are scanned sequentially from the
start. Both raise :class:`Damage` at the first unreadable record, after yielding everything
before it; :class:`smmcl_ros.bags.reader.BagReader` turns that into a ``BagReadError``.
"""

import io
from pathlib import Path
import sqlite3
import struct
from typing import Dict, Iterator, List, Optional, Tuple

import yaml

from smmcl_ros.bags.errors import BagOpenError

_MCAP_MAGIC = b'\x89MCAP0\r\n'
STORAGE_SUFFIXES = {'.db3': 'sqlite3', '.mcap': 'mcap'}


class Damage(Exception):
    """The recovery scanner hit an unreadable record."""


def _read_exact(stream: io.RawIOBase, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise Damage(f'truncated {what}: expected {size} bytes, got {len(data)}')
    return data


def _mcap_string(buf: memoryview, pos: int) -> Tuple[str, int]:
    (size,) = struct.unpack_from('<I', buf, pos)
    end = pos + 4 + size
    if end > len(buf):
        raise Damage('string runs past its record')
    return bytes(buf[pos + 4:end]).decode('utf-8'), end


def _mcap_records(stream, limit: Optional[int]) -> Iterator[Tuple[int, memoryview]]:
    """Yield ``(opcode, content)`` records from ``stream`` (until ``limit`` bytes or EOF)."""
    start = stream.tell()
    while limit is None or stream.tell() - start < limit:
        op = stream.read(1)
        if not op:
            if limit is None:
                raise Damage('file ends without an MCAP footer')
            raise Damage('chunk ends early')
        (size,) = struct.unpack('<Q', _read_exact(stream, 8, 'record length'))
        yield op[0], memoryview(_read_exact(stream, size, f'record 0x{op[0]:02x}'))


def _decompress(data: bytes, compression: str, size: int) -> bytes:
    if compression == '':
        return data
    try:
        from rosbags.rosbag2.storage_mcap import decompress  # zstd / lz4 as rosbags reads them
    except ImportError as exc:  # pragma: no cover - depends on the rosbags version
        raise Damage(f'cannot decompress {compression!r} chunks: {exc}') from exc
    try:
        return decompress(data, compression, size, 0)
    except Exception as exc:  # noqa: B902 - any decoder failure is damage
        raise Damage(f'bad {compression!r} chunk: {exc}') from exc


def _scan_mcap(path: Path) -> Iterator[Tuple[str, Tuple]]:
    """Sequentially scan an MCAP file, yielding schema/channel/message events.

    Events: ``('schema', (id, name))``, ``('channel', (id, schema_id, topic))``,
    ``('message', (channel_id, log_time, bytes))``. Raises ``Damage`` at the first bad
    record; everything before it has been yielded.
    """
    with open(path, 'rb') as stream:
        if stream.read(8) != _MCAP_MAGIC:
            raise Damage('bad MCAP magic')
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
                    raise Damage('chunk payload runs past its record')
                inner = io.BytesIO(_decompress(payload, compression, raw_size))
                yield from _scan_mcap_stream(inner, len(inner.getvalue()))
        except struct.error as exc:
            raise Damage(f'malformed record 0x{op:02x}: {exc}') from exc


class RecoveryMcap:
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
        except Damage:
            pass  # reported when iteration reaches it
        except OSError as exc:
            raise BagOpenError(f'cannot read {path}: {exc}') from exc

    def messages(self) -> Iterator[Tuple[str, int, bytes]]:
        """``(topic, log time, CDR bytes)`` in file order; :class:`Damage` at a bad record."""
        channel_topic: Dict[int, str] = {}
        try:
            for kind, event in _scan_mcap(self.path):
                if kind == 'channel':
                    channel_topic[event[0]] = event[2]
                elif kind == 'message' and event[0] in channel_topic:
                    yield channel_topic[event[0]], event[1], event[2]
        except Damage as exc:
            raise Damage(f'{self.path}: {exc}') from exc


class RecoverySqlite:
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
        """``(topic, timestamp, CDR bytes)`` in insertion order; :class:`Damage` at the damage."""
        try:
            # Insertion (rowid) order: the frames recorded before the damage come first.
            for topic_id, timestamp, data in self._conn.execute(
                    'SELECT topic_id, timestamp, data FROM messages ORDER BY id'):
                if topic_id in self._topic_of:
                    yield self._topic_of[topic_id], int(timestamp), bytes(data)
        except sqlite3.DatabaseError as exc:
            raise Damage(f'{self.path}: {exc}') from exc

    def close(self) -> None:
        """Close the database."""
        self._conn.close()


def storage_files(path: Path) -> List[Path]:
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
    return sorted(p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES)
