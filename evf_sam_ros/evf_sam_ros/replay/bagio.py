"""Reading and writing bags with the pure-Python ``rosbags`` package (no ROS install).

Bags are rosbag2 directories (``metadata.yaml`` + ``.mcap`` or ``.db3`` files, optionally
zstd-compressed per file, per message or per mcap chunk) or ROS 1 ``.bag`` files (plain, bz2
or lz4 chunks; see ``ros1bag``: their
messages are converted to ROS 2 CDR as they are read).  Messages are ROS 2 CDR bytes
whatever the bag; ``deserialize`` turns them into rosbags
message objects, whose field names equal those of the ROS 2 Python classes (``header``,
``height``, ``encoding``, ``data`` ...), so ``evf_sam_ros.codecs`` reads them directly.
Errors become ``ReplayError`` (unusable bag), ``BagReadError`` (failed part-way) or
``MessageError`` (one bad message).
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from evf_sam_ros.replay.errors import BagReadError, MessageError, ReplayError
from evf_sam_ros.replay.salvage import REPAIR

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
STRING = 'std_msgs/msg/String'
POINT_STAMPED = 'geometry_msgs/msg/PointStamped'
POSE_STAMPED = 'geometry_msgs/msg/PoseStamped'
POINT_CLOUD2 = 'sensor_msgs/msg/PointCloud2'
MARKER_ARRAY = 'visualization_msgs/msg/MarkerArray'
SEGMENTATION = 'evf_sam_msgs/msg/Segmentation'
SEGMENTATION_ARRAY = 'evf_sam_msgs/msg/SegmentationArray'
GRASP_CANDIDATE_ARRAY = 'evf_sam_msgs/msg/GraspCandidateArray'
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
STORAGES = ('mcap', 'sqlite3')
#: Bag formats ``open_writer`` writes; both are read.
BAG_FORMATS = ('rosbag2', 'ros1')
#: rosbag2 compressions, all zstd: none, each storage file, each message (rosbag2's
#: compression modes), or each mcap chunk (mcap's own; sqlite3 has none).
COMPRESSIONS = ('none', 'file', 'message', 'chunk')
#: rosbag2 metadata version written (8 = Jazzy's).
BAG_VERSION = 8

# What rosbags and its storage back ends raise on damaged files and bytes.
_READ_ERRORS = (
    OSError,
    sqlite3.Error,
    struct.error,
    ValueError,
    KeyError,
    IndexError,
    EOFError,
    AssertionError,
)


@functools.lru_cache(maxsize=1)
def storage_errors() -> tuple[type[BaseException], ...]:
    """What reading a damaged storage raises: _READ_ERRORS plus rosbags' ReaderErrors,
    SerdeError (a ROS 1 message that does not convert) and apsw's errors (its sqlite3 back
    end).
    """
    from rosbags.rosbag1 import ReaderError as Ros1ReaderError
    from rosbags.rosbag2 import ReaderError
    from rosbags.serde import SerdeError

    errors: list[type[BaseException]] = [ReaderError, Ros1ReaderError, SerdeError, *_READ_ERRORS]
    with contextlib.suppress(ImportError):
        import apsw

        errors.append(apsw.Error)
    return tuple(errors)


@functools.lru_cache(maxsize=1)
def typestore() -> Any:
    """The rosbags typestore of ROS 2 Jazzy plus the evf_sam_msgs messages (if found)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    for name, text in evf_msg_texts(required=False).items():
        store.register(get_types_from_msg(text, name))
    return store


def _msg_file_candidates() -> Iterator[Path]:
    with contextlib.suppress(LookupError, OSError, ImportError):
        from ament_index_python.packages import get_package_share_directory

        yield Path(get_package_share_directory('evf_sam_msgs'))
    yield Path(sys.prefix) / 'share' / 'evf_sam_msgs'  # the pip/wheel layout (a venv prefix)
    yield Path(__file__).resolve().parents[3] / 'evf_sam_msgs'  # a source checkout


def _nested_first(path: Path) -> tuple[bool, bool, str]:
    """Sort key: messages used inside others (Instance, GraspCandidate) first."""
    return path.stem.endswith('Array'), path.stem == 'Segmentation', path.stem


def evf_msg_texts(required: bool = True) -> dict[str, str]:
    """'evf_sam_msgs/msg/<Name>' -> .msg text, from the ament index, the Python prefix's
    share/, or the source checkout, in that order (nested types before the types that use
    them). Raises ReplayError when ``required`` and none is found.
    """
    for share in _msg_file_candidates():
        files = sorted((share / 'msg').glob('*.msg'), key=_nested_first)
        if (share / 'msg' / 'Segmentation.msg').is_file():
            return {f'evf_sam_msgs/msg/{f.stem}': f.read_text() for f in files}
    if required:
        raise ReplayError(
            'cannot find evf_sam_msgs/msg/Segmentation.msg: build and install '
            'evf_sam_msgs (make setup) or source its install space'
        )
    return {}


@dataclass(frozen=True)
class TopicInfo:
    """A topic of a bag: name, message type ("pkg/msg/Type") and message count."""

    name: str
    msgtype: str
    count: int


@contextlib.contextmanager
def open_bag(path: str | Path) -> Iterator[Any]:
    """Open a bag for reading, closed on exit: an ``archive.BagReader`` over the bag's storage
    (rosbag2 directory, its metadata.yaml, a bare .db3 / .mcap, a directory of them without
    metadata.yaml, a ROS 1 .bag; what is left of a file cut off mid-write), messages as
    ROS 2 CDR, types as ``pkg/msg/Type``.

    Raises:
        ReplayError: missing path, not a bag, unsupported or unreadable storage (the message
            says what to pass or how to repair).
    """
    from evf_sam_ros.replay.archive import open_reader

    reader = open_reader(path, typestore())
    try:
        yield reader
    finally:
        reader.close()


def list_topics(reader: Any) -> dict[str, TopicInfo]:
    """Topics of an open bag by name."""
    return {
        name: TopicInfo(name, info.msgtype or '?', int(info.msgcount))
        for name, info in reader.topics.items()
    }


def read_messages(
    reader: Any, topics: Iterable[str], start: int | None = None, stop: int | None = None
) -> Iterator[tuple[str, str, int, bytes]]:
    """Messages of ``topics`` in bag-time order as (topic, msgtype, log time ns, CDR bytes),
    those with ``start`` <= log time < ``stop`` (ns; None: no bound).

    Raises:
        BagReadError: the storage failed part-way (messages before it were yielded).
    """
    wanted = set(topics)
    connections = [c for c in reader.connections if c.topic in wanted]
    if not connections:
        return
    try:
        for connection, timestamp, raw in reader.messages(connections, start, stop):
            yield connection.topic, connection.msgtype, int(timestamp), raw
    except storage_errors() as exc:
        raise BagReadError(
            f'reading the bag failed part-way (truncated or corrupt?): {type(exc).__name__}: '
            f'{exc}; the messages before it were replayed. Repair the bag with '
            f'{" / ".join(REPAIR.values())}'
        ) from exc


def deserialize(raw: bytes, msgtype: str) -> Any:
    """CDR bytes to a rosbags message object.  Raises MessageError("corrupt_message")."""
    from rosbags.serde import SerdeError

    try:
        return typestore().deserialize_cdr(raw, msgtype)
    except (SerdeError, *_READ_ERRORS, TypeError) as exc:
        raise MessageError(
            'corrupt_message', f'cannot deserialize a {msgtype} ({len(raw)} bytes): {exc}'
        ) from exc


class BagWriter:
    """A rosbag2 bag being written: topics added on first use, custom types registered.

    ``storage`` is "mcap" or "sqlite3"; ``compression`` one of ``COMPRESSIONS`` (zstd of
    each storage file, written at close; of each message; or of each mcap chunk).  The bag
    directory must not exist yet.
    """

    def __init__(self, path: str | Path, storage: str = 'mcap', compression: str = 'none'):
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

        if storage not in STORAGES:
            raise ReplayError(f'unknown storage {storage!r}; use one of {", ".join(STORAGES)}')
        if compression not in COMPRESSIONS:
            raise ReplayError(
                f'unknown rosbag2 compression {compression!r}; use one of '
                f'{", ".join(COMPRESSIONS)}'
            )
        if compression == 'chunk' and storage != 'mcap':
            raise ReplayError(
                f'chunk compression needs mcap storage ({storage} has no chunks); '
                f'use file or message compression'
            )
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self.path = Path(path)
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=plugin)
        mode = 'storage' if compression == 'chunk' else compression
        self._writer.set_compression(CompressionMode[mode.upper()], CompressionFormat.ZSTD)
        self._writer.open()
        self._connections: dict[str, Any] = {}

    def add_topic(self, topic: str, msgtype: str) -> Any:
        """Declare ``topic`` (done by ``write`` on first use); returns its connection."""
        connection = self._connections.get(topic)
        if connection is None:
            if msgtype.startswith('evf_sam_msgs/'):
                evf_msg_texts()  # a clear error when the .msg files cannot be found
            connection = self._writer.add_connection(topic, msgtype, typestore=typestore())
            self._connections[topic] = connection
        return connection

    def write(self, topic: str, msgtype: str, time_ns: int, data: bytes) -> None:
        """Append CDR bytes ``data`` of type ``msgtype`` on ``topic`` at bag time ``time_ns``."""
        self._writer.write(self.add_topic(topic, msgtype), int(time_ns), data)

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml)."""
        self._writer.close()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_writer(
    path: str | Path, bag_format: str = 'rosbag2', storage: str = 'mcap', compression: str = 'none'
) -> Any:
    """A new bag taking ROS 2 CDR bytes: a ``BagWriter`` (rosbag2 directory ``path``;
    ``storage`` and ``compression`` as there) or, for ``bag_format`` "ros1", a
    ``ros1bag.Ros1BagWriter`` (file ``path``; ``compression`` none or chunk (lz4)).

    Raises:
        ReplayError: unknown format, storage or compression, or ``path`` exists.
    """
    if Path(path).exists():
        raise ReplayError(f'{str(path)!r} already exists; choose a new path')
    if bag_format == 'rosbag2':
        return BagWriter(path, storage, compression)
    if bag_format == 'ros1':
        from evf_sam_ros.replay.ros1bag import Ros1BagWriter

        return Ros1BagWriter(path, typestore(), compression)
    raise ReplayError(f'unknown bag format {bag_format!r}; use one of {", ".join(BAG_FORMATS)}')
