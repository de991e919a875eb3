"""ROS 1 bags (``.bag``, format 2.0, plain or bz2/lz4 chunks) read and written as ROS 2 CDR.

Everything downstream of ``bagio`` works on ROS 2 CDR bytes (offline deserialises them, live
publishes them), so a ROS 1 bag is converted message by message while it is read, with
rosbags' byte-level ``Typestore.ros1_to_cdr`` (what ``rosbags-convert`` does for types whose
wire format is unchanged): std_msgs/Header loses ROS 1's ``seq``, ``time`` becomes
builtin_interfaces/Time (same bytes), and field names that differ only in spelling
(CameraInfo's ``D K R P`` vs ``d k r p``) do not matter on the wire.  rosbags names the
types the ROS 2 way (``sensor_msgs/Image`` -> ``sensor_msgs/msg/Image``).

A topic whose ROS 1 definition (stored in the bag) has another wire format than the ROS 2
type of that name, or whose type ROS 2 Jazzy does not know, cannot be read: ``messages``
raises ``ReplayError`` naming it before yielding anything from it.

Writing (test and sample bags): ``Ros1BagWriter`` takes ROS 2 CDR like ``bagio.BagWriter``
and stores ROS 1 messages (``cdr_to_ros1``; ``seq`` is 0) with ROS 1 (Noetic) definitions.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from evf_sam_ros.replay.errors import ReplayError
from evf_sam_ros.replay.salvage import ScannedBag

#: First bytes of a ROS 1 bag file.
ROS1_MAGIC = b'#ROSBAG V'
#: Compressions ``Ros1BagWriter`` writes: none or lz4 chunks (``rosbag record --lz4``);
#: rosbags reads bz2 chunks too.
ROS1_COMPRESSIONS = ('none', 'chunk')


def is_ros1_bag(path: Path) -> bool:
    """True when ``path`` is a file that starts like a ROS 1 bag (``#ROSBAG V``)."""
    if not path.is_file():
        return False
    with path.open('rb') as stream:
        return stream.read(len(ROS1_MAGIC)) == ROS1_MAGIC


@functools.lru_cache(maxsize=1)
def noetic_typestore() -> Any:
    """The rosbags typestore of ROS 1 Noetic (Header with seq, CameraInfo with D K R P)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS1_NOETIC)


def _same_wire_format(src: Any, dst: Any, msgtype: str) -> bool:
    from rosbags.convert.converter import is_same_wireformat

    return msgtype in dst.fielddefs and is_same_wireformat(src, dst, msgtype, msgtype)


def _ros1_definition(connection: Any) -> Any:
    """A typestore holding the ROS 1 definition of ``connection``'s type (from the bag)."""
    from rosbags.interfaces import MessageDefinitionFormat
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.EMPTY)
    msgdef = connection.msgdef
    if msgdef.format != MessageDefinitionFormat.MSG or not msgdef.data:
        return noetic_typestore()  # no definition stored: assume Noetic's
    store.register(get_types_from_msg(msgdef.data, connection.msgtype))
    return store


def _to_cdr(connection: Any, store: Any) -> Callable[[bytes], bytes]:
    """The ROS 1 -> CDR converter of ``connection``. Raises ReplayError when there is none."""
    from rosbags.typesys import TypesysError

    msgtype = connection.msgtype
    try:
        same = _same_wire_format(_ros1_definition(connection), store, msgtype)
    except (TypesysError, KeyError, ValueError) as exc:
        raise ReplayError(
            f'topic {connection.topic!r}: cannot read the ROS 1 definition of '
            f'{msgtype} stored in the bag: {exc}'
        ) from exc
    if not same:
        raise ReplayError(
            f'topic {connection.topic!r}: the ROS 1 type {msgtype} has no ROS 2 '
            f'(Jazzy) counterpart with the same fields; convert the bag with '
            f'rosbags-convert and a typestore that has the type'
        )
    return functools.partial(store.ros1_to_cdr, typename=msgtype)


class Ros1Reader:
    """A ROS 1 bag seen like a rosbags rosbag2 ``Reader``: ``topics``, ``connections`` and
    ``messages(connections)`` yielding (connection, log time ns, ROS 2 CDR bytes).
    """

    def __init__(self, path: Path, store: Any, scanned: Any = None):
        """scanned: a ``salvage.Ros1Scan`` of a bag cut off mid-write, already open (None:
        rosbags reads the bag through its index).
        """
        from rosbags.rosbag1 import Reader

        self._reader = scanned if scanned is not None else Reader(path)
        self._store = store
        self._converters: dict[int, Callable[[bytes], bytes]] = {}

    def open(self) -> None:
        """Open the bag and read its index (rosbags' ReaderError on damage)."""
        if not isinstance(self._reader, ScannedBag):
            self._reader.open()

    def close(self) -> None:
        """Close the bag."""
        self._reader.close()

    @property
    def topics(self) -> dict[str, Any]:
        """Topic name -> rosbags TopicInfo (``msgtype``, ``msgcount``)."""
        return self._reader.topics

    @property
    def connections(self) -> list[Any]:
        """Rosbags Connections (``topic``, ``msgtype``, ``id``)."""
        return self._reader.connections

    def messages(
        self, connections: Iterable[Any], start: int | None = None, stop: int | None = None
    ) -> Iterator[tuple[Any, int, bytes]]:
        """Messages of ``connections`` in time order (``start`` <= log time ns < ``stop``),
        converted to CDR.

        Raises:
            ReplayError: a connection's type cannot be converted (before any message).
        """
        connections = list(connections)
        for connection in connections:
            if connection.id not in self._converters:
                self._converters[connection.id] = _to_cdr(connection, self._store)
        for connection, timestamp, raw in self._reader.messages(connections, start, stop):
            # bytes, as rosbag2 readers give: rclpy's deserialize and publish take no memoryview
            yield connection, timestamp, bytes(self._converters[connection.id](raw))


class Ros1BagWriter:
    """A ROS 1 bag file being written from ROS 2 CDR bytes (interface of bagio.BagWriter).

    ``compression``: one of ``ROS1_COMPRESSIONS`` (chunk: lz4).  The file must not
    exist yet.  Types must be known to ROS 1 Noetic with the wire format of Jazzy's.
    """

    def __init__(self, path: str | Path, store: Any, compression: str = 'none'):
        from rosbags.rosbag1 import Writer

        if compression not in ROS1_COMPRESSIONS:
            raise ReplayError(
                f'ROS 1 bags have no {compression!r} compression; use one of '
                f'{", ".join(ROS1_COMPRESSIONS)} (chunk: lz4)'
            )
        self.path = Path(path)
        self._store = store
        self._writer = Writer(self.path)
        if compression != 'none':
            self._writer.set_compression(Writer.CompressionFormat.LZ4)
        self._writer.open()
        self._connections: dict[str, Any] = {}

    def add_topic(self, topic: str, msgtype: str) -> Any:
        """Declare ``topic`` (done by ``write`` on first use); returns its connection."""
        connection = self._connections.get(topic)
        if connection is None:
            if not _same_wire_format(self._store, noetic_typestore(), msgtype):
                raise ReplayError(
                    f'cannot write {msgtype} to a ROS 1 bag: ROS 1 Noetic has no '
                    f'such type with the same fields'
                )
            connection = self._writer.add_connection(topic, msgtype, typestore=noetic_typestore())
            self._connections[topic] = connection
        return connection

    def write(self, topic: str, msgtype: str, time_ns: int, data: bytes) -> None:
        """Append ROS 2 CDR bytes ``data`` of ``msgtype`` on ``topic`` at bag time ``time_ns``."""
        connection = self.add_topic(topic, msgtype)
        self._writer.write(connection, int(time_ns), self._store.cdr_to_ros1(data, msgtype))

    def close(self) -> None:
        """Finish the bag (writes the index)."""
        self._writer.close()

    def __enter__(self) -> Ros1BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
