#!/usr/bin/env python3
"""Remove Fast DDS shared-memory files that no live process uses (what `fastdds shm clean`
does, for machines without the fastdds tool, e.g. ROS 2 from PyPI wheels; it also finds stale
ports that have no lock file, which that tool leaves).

Why: a process killed without shutting down (SIGKILL, a crash, an OOM kill) leaves its Fast DDS
shared-memory ports and segments in /dev/shm. A later participant on the same DDS domain still
finds such a port and delivers to it, so on that domain services are discovered but their
answers are lost (seen here: `get_state` of a running node unanswered on domain 78 only, until
the stale port fastrtps_port26911 was removed).

A port or segment is stale when no process maps any of its files (/proc/PID/maps) and, where it
has a lock file (``_el`` / ``_sl``, held with flock(2) by its owner while it lives), that lock
is free. Only files of the current user are removed; files in use are never touched.

Usage: clean_dds_shm.py [DIR]   (DIR: /dev/shm by default). Prints how many it removed.
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

#: Files of one port (fastrtps_port7411, its _el lock, sem.fastrtps_port7411_mutex) or one
#: segment (fastdds_0123456789abcdef, its _el/_sl lock); Fast DDS 2.x (Humble, Jazzy) names
#: them fastrtps_, 3.x (Kilted) fastdds_.
DDS_FILE = re.compile(
    r'^(?:sem\.)?(?P<base>fast(?:rtps|dds)_(?:port\d{1,5}|[0-9a-z]{16}))(?:_el|_sl|_mutex)?$'
)


def is_unlocked(lock_file: Path) -> bool:
    """True when no process holds ``lock_file``'s flock (we could take it)."""
    try:
        with lock_file.open('ab') as stream:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(stream, fcntl.LOCK_UN)
    except OSError:
        return False
    return True


def mapped_paths() -> set[str]:
    """Paths of the files that readable processes have mapped (/proc/PID/maps)."""
    mapped = set()
    for maps in Path('/proc').glob('[0-9]*/maps'):
        try:
            lines = maps.read_text().splitlines()
        except OSError:  # gone, or another user's process
            continue
        for line in lines:  # address perms offset dev inode [path]
            fields = line.split(maxsplit=5)
            if len(fields) == 6:
                mapped.add(fields[5])
    return mapped


def stale_files(shm_dir: Path) -> list[Path]:
    """The files of every stale Fast DDS port and segment in ``shm_dir`` owned by this user."""
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in shm_dir.iterdir():
        match = DDS_FILE.match(path.name)
        if match and path.stat().st_uid == os.getuid():
            groups[match['base']].append(path)
    mapped = mapped_paths()
    stale = []
    for files in groups.values():
        if any(str(f) in mapped for f in files):
            continue
        locks = [f for f in files if f.name.endswith(('_el', '_sl'))]
        if all(is_unlocked(lock) for lock in locks):
            stale += files
    return sorted(stale)


def main(argv: list[str]) -> int:
    shm_dir = Path(argv[1]) if len(argv) > 1 else Path('/dev/shm')
    if not shm_dir.is_dir():
        return 0  # no POSIX shared memory here: nothing Fast DDS could have left
    removed = 0
    for path in stale_files(shm_dir):
        try:
            path.unlink()
            removed += 1
        except OSError as exc:  # removed meanwhile, or not ours to remove: carry on
            print(f'clean_dds_shm: cannot remove {path}: {exc}', file=sys.stderr)
    if removed:
        print(f'clean_dds_shm: removed {removed} stale Fast DDS files from {shm_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
