"""Open a bag in any state an archive holds it: what the user passed resolved to storage files,
each opened with rosbags (or, cut off mid-write, with a ``salvage`` scanner), as one reader.

Accepted: a rosbag2 directory (metadata.yaml + storage files), its metadata.yaml, a bare .db3
or .mcap file, a directory of storage files without metadata.yaml (the metadata is recreated
in memory from the files, as ``ros2 bag reindex`` recreates it: topics, types, counts), a ROS 1
.bag file.  Message types of old bags (``sensor_msgs/Image``, before ROS 2 Dashing and in
ROS 1) are normalised to ``pkg/msg/Type``.  Anything else is a ``ReplayError`` that says what
to pass instead.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any, Iterable, Iterator

from evf_sam_ros.replay.errors import ReplayError
from evf_sam_ros.replay.salvage import REPAIR, scanner_for

STORAGE_SUFFIXES = ('.db3', '.mcap')
_SPLIT_INDEX = re.compile(r'_(\d+)$')
_BAG_KINDS = 'a rosbag2 directory, its metadata.yaml, a .db3 or .mcap file, or a ROS 1 .bag file'


class BagReader:
    """Readers of a bag's storage files as one rosbags-like reader.

    ``topics`` (name -> rosbags TopicInfo, counts summed), ``connections`` (types normalised),
    ``messages(connections, start, stop)`` (files in order).  ``notes``: how the bag was
    read (shown in the report); ``problems``: (kind, detail, count) the report counts
    (a cut-off file: kind "bag_truncated", count = messages lost).
    """

    def __init__(self, readers: list[Any], notes: list[str], problems: list[tuple]):
        self.readers, self.notes, self.problems = readers, notes, problems
        self._originals: dict[int, tuple[Any, Any]] = {}  # id(ours) -> (reader, theirs)
        self.connections: list[Any] = []
        for reader in readers:
            for theirs in reader.connections:
                ours = theirs._replace(msgtype=normalize_type(theirs.msgtype))
                self._originals[id(ours)] = (reader, theirs)
                self.connections.append(ours)

    @property
    def topics(self) -> dict[str, Any]:
        """Topic name -> rosbags TopicInfo (normalised type, message count)."""
        from rosbags.interfaces import TopicInfo

        topics: dict[str, Any] = {}
        for connection in self.connections:
            old = topics.get(connection.topic)
            count = connection.msgcount + (old.msgcount if old else 0)
            members = [*(old.connections if old else []), connection]
            topics[connection.topic] = TopicInfo(
                connection.msgtype, connection.msgdef, count, members
            )
        return topics

    def messages(
        self, connections: Iterable[Any] = (), start: int | None = None, stop: int | None = None
    ) -> Iterator[tuple[Any, int, bytes]]:
        """Messages of ``connections`` (ours), file after file, ``start`` <= time < ``stop``."""
        wanted = list(connections) or self.connections
        for reader in self.readers:
            mine = {
                id(self._originals[id(c)][1]): c
                for c in wanted
                if self._originals[id(c)][0] is reader
            }
            if not mine:
                continue
            theirs = [self._originals[id(c)][1] for c in mine.values()]
            for connection, time_ns, raw in reader.messages(theirs, start, stop):
                yield mine.get(id(connection), connection), time_ns, raw

    def first_time_ns(self) -> int | None:
        """Log time of the bag's first message (ns; None when it has none)."""
        firsts = []
        for reader in self.readers:
            for _, time_ns, _ in reader.messages(reader.connections):
                firsts.append(time_ns)
                break
        return min(firsts) if firsts else None

    def close(self) -> None:
        """Close every storage reader."""
        for reader in self.readers:
            with contextlib.suppress(Exception):
                reader.close()


def normalize_type(msgtype: str | None) -> str:
    """``pkg/Type`` (ROS 1, ROS 2 before Dashing) -> ``pkg/msg/Type``; others unchanged."""
    if not msgtype:
        return '?'
    parts = msgtype.split('/')
    return f'{parts[0]}/msg/{parts[1]}' if len(parts) == 2 else msgtype


def _storage_files(directory: Path) -> list[Path]:
    """The storage files of a bag directory, in split order (``name_0``, ``name_1`` ...)."""

    def order(path: Path) -> tuple[int, str]:
        match = _SPLIT_INDEX.search(path.stem)
        return (int(match.group(1)) if match else 0, path.name)

    return sorted((p for p in directory.iterdir() if p.suffix in STORAGE_SUFFIXES), key=order)


def resolve(path: Path) -> tuple[Path, list[str]]:
    """The bag ``path`` names (metadata.yaml -> its directory) and notes on that."""
    if not path.exists():
        raise ReplayError(f'bag {str(path)!r} does not exist')
    if path.is_file() and path.name == 'metadata.yaml':
        return path.parent, [f'given metadata.yaml: replaying its bag directory {path.parent}']
    if path.is_file() and path.suffix in ('.yaml', '.yml'):
        raise ReplayError(
            f'{str(path)!r} is a YAML file, not a bag: pass the bag directory (the one '
            f'holding metadata.yaml and the .db3 / .mcap files)'
        )
    return path, []


def _metadata_counts(directory: Path) -> tuple[int | None, str]:
    """(message_count, compression_mode) of a bag directory's metadata.yaml ((None, '') when
    it cannot be read).
    """
    import yaml

    try:
        info = yaml.safe_load((directory / 'metadata.yaml').read_text())
        info = info['rosbag2_bagfile_information']
        return int(info['message_count']), str(info.get('compression_mode') or '').lower()
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return None, ''


def _open_file(
    path: Path, store: Any, expected: int | None, problems: list, unzip: bool = False
) -> Any:
    """A reader of one storage file, or of what is left of it when it is cut off (then a
    "bag_truncated" problem).  unzip: messages are zstd-compressed one by one.
    """
    from rosbags.rosbag2 import Reader

    from evf_sam_ros.replay.bagio import storage_errors
    from evf_sam_ros.replay.ros1bag import Ros1Reader, is_ros1_bag

    ros1 = is_ros1_bag(path)
    try:
        reader = Ros1Reader(path, store) if ros1 else Reader(path)
        reader.open()
        return reader
    except storage_errors() as exc:
        error = exc
    scan = scanner_for(path, expected)
    if scan is not None:
        scan.unzip = unzip
    if scan is None:
        raise ReplayError(f'cannot open bag {str(path)!r} (truncated or corrupt?): {error}')
    try:
        scan.open()
    except storage_errors() as exc:
        raise ReplayError(
            f'cannot open bag {str(path)!r} (truncated or corrupt?): {exc}; repair it with '
            f'{REPAIR[scan.storage]}'
        ) from exc
    if not scan.read:
        raise ReplayError(
            f'cannot open bag {str(path)!r}: no readable message ({error}); repair it with '
            f'{REPAIR[scan.storage]}'
        )
    problems.append(('bag_truncated', scan.warning(), scan.lost()[0]))
    return Ros1Reader(path, store, scan) if ros1 else scan


def _open_directory(directory: Path, store: Any, notes: list, problems: list) -> list[Any]:
    """Readers of a rosbag2 directory's storage files."""
    from rosbags.rosbag2 import Reader

    from evf_sam_ros.replay.bagio import storage_errors

    files = _storage_files(directory)
    if (directory / 'metadata.yaml').is_file():
        reader = Reader(directory)
        try:
            reader.open()
            return [reader]
        except storage_errors() as exc:
            if not files:
                zipped = any(directory.glob('*.zstd'))
                raise ReplayError(
                    f'cannot open bag {str(directory)!r}: {exc}; '
                    + (
                        'its files are zstd-compressed, which needs a complete bag: decompress '
                        'them (zstd -d FILE), then run ros2 bag reindex on the directory'
                        if zipped
                        else 'restore the storage files metadata.yaml lists, or pass a .db3 / '
                        '.mcap file directly'
                    )
                ) from exc
            notes.append(f'the bag could not be opened whole ({exc}): files read one by one')
        expected, mode = _metadata_counts(directory) if len(files) == 1 else (None, '')
        return [_open_file(f, store, expected, problems, mode == 'message') for f in files]
    if not files:
        compressed = sorted(p.name for p in directory.glob('*.zstd'))
        if compressed:
            raise ReplayError(
                f'{str(directory)!r} has no metadata.yaml and its storage is zstd-compressed '
                f'({", ".join(compressed)}): decompress the files (zstd -d FILE) and replay '
                f'the directory again, or restore metadata.yaml'
            )
        raise ReplayError(
            f'{str(directory)!r} is not a bag: no metadata.yaml and no .db3 / .mcap file in '
            f'it; pass {_BAG_KINDS}'
        )
    notes.append(
        f'no metadata.yaml in {directory}: topics and counts recreated from '
        f'{", ".join(f.name for f in files)} (as ros2 bag reindex would)'
    )
    return [_open_file(f, store, None, problems) for f in files]


def open_reader(path: str | Path, store: Any) -> BagReader:
    """An open BagReader of the bag at ``path``.  Raises ReplayError (with what to pass or
    how to repair) when it cannot be read at all.
    """
    path, notes = resolve(Path(path))
    problems: list[tuple] = []
    if path.is_dir():
        return BagReader(_open_directory(path, store, notes, problems), notes, problems)
    if path.suffix in ('.zstd', '.zst'):
        raise ReplayError(
            f'{str(path)!r} is a zstd-compressed storage file: pass its bag directory (with '
            f'metadata.yaml), or decompress it (zstd -d FILE) and pass the .db3 / .mcap'
        )
    if path.suffix not in (*STORAGE_SUFFIXES, '.bag') and scanner_for(path) is None:
        raise ReplayError(f'{str(path)!r} is not a bag; pass {_BAG_KINDS}')
    if path.suffix in STORAGE_SUFFIXES:
        notes.append(f'bare {path.suffix} file: topics and counts read from the file itself')
    return BagReader([_open_file(path, store, None, problems)], notes, problems)
