"""scripts/clean_dds_shm.py removes the Fast DDS shared-memory files of dead processes only: a
port or segment whose files a process maps, or whose lock file a process holds, stays.

Real files in a temporary directory stand in for /dev/shm; this test process maps one of them
(mmap, as Fast DDS maps its ports) and holds another's lock (flock, as Fast DDS holds ``_el``).
"""

from __future__ import annotations

import fcntl
import importlib.util
import mmap
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / 'scripts' / 'clean_dds_shm.py'


@pytest.fixture(scope='module')
def cleaner():
    if not SCRIPT.is_file():
        pytest.skip('scripts/clean_dds_shm.py is in the repository, not in this install')
    spec = importlib.util.spec_from_file_location('clean_dds_shm', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(directory: Path, *names: str) -> list[Path]:
    paths = [directory / name for name in names]
    for path in paths:
        path.write_bytes(b'\0' * mmap.PAGESIZE)
    return paths


def test_only_unused_ports_and_segments_are_removed(cleaner, tmp_path):
    dead_port = _files(
        tmp_path, 'fastrtps_port26911', 'fastrtps_port26911_el', 'sem.fastrtps_port26911_mutex'
    )
    dead_unlocked = _files(tmp_path, 'fastrtps_port26913', 'sem.fastrtps_port26913_mutex')
    dead_segment = _files(tmp_path, 'fastdds_0123456789abcdef', 'fastdds_0123456789abcdef_sl')
    mapped = _files(tmp_path, 'fastrtps_port7000', 'sem.fastrtps_port7000_mutex')
    locked = _files(tmp_path, 'fastdds_port7411', 'fastdds_port7411_el')
    other = _files(tmp_path, 'lttng-ust-wait-6', 'fastrtps_port7000.bak')
    with mapped[0].open('r+b') as m, locked[1].open('ab') as lock:
        view = mmap.mmap(m.fileno(), 0)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            assert cleaner.main(['clean_dds_shm.py', str(tmp_path)]) == 0
        finally:
            view.close()
    gone = dead_port + dead_unlocked + dead_segment
    assert not [p.name for p in gone if p.exists()]
    assert all(p.exists() for p in mapped + locked + other)
    assert cleaner.main(['clean_dds_shm.py', str(tmp_path / 'absent')]) == 0
