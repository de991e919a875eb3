"""Bags cut off mid-write (a recorder killed, a copy or upload that stopped): every message up
to the damage, read without the index the file never got.

A complete bag ends with an index (ROS 1: connection and chunk records after the last chunk;
mcap: the summary and footer; sqlite3: the last pages of the b-trees).  A cut file has none, so
rosbags refuses it whole.  The scanners here walk the records from the start instead and stop
at the first one that is cut, also inside a chunk (an uncompressed chunk's records, or what
its lz4 / bz2 / zstd stream gives up to the cut); sqlite3 is read row by row until the first
page that is missing.  Each scanner counts what it read and says how many messages were lost:
exactly when the bag says how many it holds (rosbag2's metadata.yaml, sqlite3's row count),
else estimated from the bytes cut off; and which tool repairs the file (``REPAIR``).

Each is a reader like rosbags' (``topics``, ``connections``, ``messages(connections, start,
stop)``); ROS 1 messages come as ROS 1 bytes (``ros1bag.Ros1Reader`` converts them).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Iterable, Iterator

from evf_sam_ros.replay.salvage_records import mapped, mcap_records, ros1_records

#: The tool that repairs a damaged file of each storage, for the warnings and errors.
REPAIR = {
    'ros1': 'rosbag reindex (ROS 1)',
    'mcap': 'mcap recover (the mcap CLI)',
    'sqlite3': 'sqlite3 BAG.db3 ".recover" | sqlite3 FIXED.db3, then ros2 bag reindex',
}


class ScannedBag:
    """A damaged storage file read record by record.  ``storage`` is a key of ``REPAIR``.

    After ``open``: ``connections``, ``topics`` (with the counts read), ``read`` (messages
    read), ``expected`` (messages the bag says it holds, None when unknown), ``lost_bytes``.
    """

    storage = ''

    def __init__(self, path: Path, expected: int | None = None):
        self.path, self.expected = Path(path), expected
        self.connections: list[Any] = []
        self.read = 0
        self.lost_bytes = 0
        self.unzip = False  # rosbag2 message compression: each message is a zstd frame
        self.chunks = [0, 0, 0]
        self.topics: dict[str, Any] = {}

    def scan(self) -> Iterator[tuple[int, int, bytes]]:
        """(connection id, log time ns, bytes) of every readable message, in file order."""
        raise NotImplementedError

    def open(self) -> None:
        """Scan the file once for its connections and message counts."""
        from rosbags.interfaces import TopicInfo

        counts: dict[int, int] = {}
        for conn_id, _, _ in self.scan():
            counts[conn_id] = counts.get(conn_id, 0) + 1
        self.read = sum(counts.values())
        self.connections = [c._replace(msgcount=counts.get(c.id, 0)) for c in self.connections]
        for connection in self.connections:
            info = self.topics.get(connection.topic)
            count = connection.msgcount + (info.msgcount if info else 0)
            members = [*(info.connections if info else []), connection]
            self.topics[connection.topic] = TopicInfo(
                connection.msgtype, connection.msgdef, count, members
            )

    def close(self) -> None:
        """Nothing stays open between scans."""

    def messages(
        self, connections: Iterable[Any] = (), start: int | None = None, stop: int | None = None
    ) -> Iterator[tuple[Any, int, bytes]]:
        """Messages of ``connections`` with ``start`` <= log time < ``stop`` (ns)."""
        by_id = {c.id: c for c in (connections or self.connections)}
        for conn_id, time_ns, raw in self.scan():
            if conn_id in by_id and (start is None or time_ns >= start):
                if stop is None or time_ns < stop:
                    yield by_id[conn_id], time_ns, _unzip(raw) if self.unzip else raw

    def lost(self) -> tuple[int, bool]:
        """(messages lost, exact?): exact from ``expected``, else estimated from the bytes
        cut off at the rate of the bytes read.
        """
        if self.expected is not None:
            return max(self.expected - self.read, 0), True
        size = max(self.path.stat().st_size, 1)  # what is left; lost_bytes are beyond it
        return max(round(self.read * self.lost_bytes / size), 1), False

    def warning(self) -> str:
        """What was read, what was lost, and the tool that repairs the file."""
        lost, exact = self.lost()
        how_many = f'{lost}' if exact else f'about {lost} (estimated from the cut-off bytes)'
        return (
            f'{self.path.name} is cut off (truncated mid-write): replayed the {self.read} '
            f'messages before the cut; {how_many} lost. Repair the file with '
            f'{REPAIR[self.storage]}'
        )


class McapScan(ScannedBag):
    """An mcap file without its summary and footer (``mcap recover`` repairs it)."""

    storage = 'mcap'

    def scan(self) -> Iterator[tuple[int, int, bytes]]:
        """Messages of the mcap's records up to the cut (see ``mcap_records``)."""
        known = {c.id for c in self.connections}
        schemas: dict[int, str] = {}
        with self.path.open('rb') as stream, mapped(stream) as data:
            for kind, value in mcap_records(data):
                if kind == 'schema':
                    schemas[value[0]] = value[1]
                elif kind == 'channel' and value[0] not in known:
                    known.add(value[0])
                    self.connections.append(_connection(value[0], value[2], schemas.get(value[1])))
                elif kind == 'message':
                    yield value
                elif kind == 'cut':
                    self.lost_bytes = value


class Ros1Scan(ScannedBag):
    """A ROS 1 bag without its index (``rosbag reindex`` repairs it).  Messages are ROS 1
    bytes; topics are normalised as rosbags normalises them.
    """

    storage = 'ros1'

    def scan(self) -> Iterator[tuple[int, int, bytes]]:
        """Messages of the bag's records up to the cut (see ``ros1_records``)."""
        from rosbags.interfaces import MessageDefinition, MessageDefinitionFormat
        from rosbags.typesys.msg import normalize_msgtype

        known = {c.id for c in self.connections}
        self.chunks = [0, 0, 0]  # expected (bag header), complete, messages in complete ones
        complete = False
        with self.path.open('rb') as stream, mapped(stream) as data:
            for kind, value in ros1_records(data):
                if kind == 'chunks_expected':
                    self.chunks[0] = int(value)
                elif kind == 'chunk':
                    complete = bool(value)
                    self.chunks[1] += complete
                elif kind == 'connection' and value[0] not in known:
                    conn_id, topic, msgtype, definition = value
                    known.add(conn_id)
                    msgdef = MessageDefinition(MessageDefinitionFormat.MSG, definition)
                    self.connections.append(
                        _connection(conn_id, topic, normalize_msgtype(msgtype), msgdef)
                    )
                elif kind == 'message':
                    self.chunks[2] += complete
                    yield value
                elif kind == 'cut':
                    self.lost_bytes = value

    def lost(self) -> tuple[int, bool]:
        """Estimated from the chunks the bag header counts (a cut copy of a finished bag),
        else from the bytes cut off.
        """
        expected, complete, in_complete = self.chunks
        if expected > complete and complete:
            missing = round(in_complete / complete * expected) - self.read
            return max(missing, 1), False
        return super().lost()


class Sqlite3Scan(ScannedBag):
    """A rosbag2 .db3 whose last pages are missing: rows read in insertion order until the
    first missing page (``writable_schema`` lets SQLite open a file shorter than its header
    says; the connection is read-only).
    """

    storage = 'sqlite3'

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(f'file:{self.path}?mode=ro', uri=True)
        db.execute('PRAGMA writable_schema=ON')
        return db

    def scan(self) -> Iterator[tuple[int, int, bytes]]:
        """Rows of the messages table up to the first unreadable page."""
        db = self._connect()
        try:
            if not self.connections:
                rows = db.execute('SELECT id, name, type FROM topics ORDER BY id').fetchall()
                self.connections = [_connection(i, name, str(t)) for i, name, t in rows]
                if self.expected is None:
                    self.expected = _row_count(db)
            cursor = db.execute('SELECT topic_id, timestamp, data FROM messages ORDER BY id')
            while True:
                try:
                    row = cursor.fetchone()
                except sqlite3.DatabaseError:
                    return
                if row is None:
                    return
                yield int(row[0]), int(row[1]), bytes(row[2])
        finally:
            db.close()


def _unzip(raw: bytes) -> bytes:
    from backports import zstd

    return zstd.decompress(raw)


def _row_count(db: sqlite3.Connection) -> int | None:
    """The messages table's row count when its pages allow counting (else None)."""
    try:
        return int(db.execute('SELECT count(*) FROM messages').fetchone()[0])
    except sqlite3.DatabaseError:
        return None


def _connection(conn_id: int, topic: str, msgtype: str | None, msgdef: Any = None) -> Any:
    """A rosbags Connection (message count filled in by ``ScannedBag.open``)."""
    from rosbags.interfaces import (
        Connection,
        ConnectionExtRosbag2,
        MessageDefinition,
        MessageDefinitionFormat,
    )

    if msgdef is None:
        msgdef = MessageDefinition(MessageDefinitionFormat.NONE, '')
    return Connection(
        conn_id, topic, msgtype or '?', msgdef, '', 0, ConnectionExtRosbag2('cdr', []), None
    )


def scanner_for(path: Path, expected: int | None = None) -> ScannedBag | None:
    """The scanner of a storage file by its first bytes (None: no storage it knows)."""
    with path.open('rb') as stream:
        head = stream.read(16)
    if head.startswith(b'#ROSBAG V2.0'):
        return Ros1Scan(path, expected)
    if head.startswith(b'\x89MCAP0\r\n'):
        return McapScan(path, expected)
    if head.startswith(b'SQLite format 3\x00'):
        return Sqlite3Scan(path, expected)
    return None
