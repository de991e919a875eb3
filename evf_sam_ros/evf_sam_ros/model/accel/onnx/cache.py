"""Hash-keyed cache directories for exported graphs and TensorRT engines.

Exported graphs: ``<root>/onnx/<key>`` with key = checkpoint hash + variant + export format.
Engines: ``<engine_cache_dir>/<gpu>-trt<version>/<graph>-<key>.engine`` with the key from the
graph's hash and the build settings. The root is ``$EVF_SAM_CACHE`` or
``$XDG_CACHE_HOME/evf_sam_ros`` (``~/.cache/evf_sam_ros``). Directories are written under a
temporary name and renamed when complete, so a crash never leaves a half cache entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

CACHE_ENV = 'EVF_SAM_CACHE'
EXPORT_FORMAT = 1  # bump when the graphs' inputs/outputs or export settings change
_CHUNK = 1 << 22
_HASH_MEMO = 'file_hashes.json'


def default_cache_root() -> Path:
    """$EVF_SAM_CACHE, else $XDG_CACHE_HOME (or ~/.cache)/evf_sam_ros."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(base) / 'evf_sam_ros'


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes (symlinks followed)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _memo_path() -> Path:
    return default_cache_root() / _HASH_MEMO


def _memo_hash(path: Path, memo: dict[str, str]) -> str:
    """sha256 of ``path``, reused from ``memo`` while its size and mtime are unchanged."""
    real = path.resolve()
    stat = real.stat()
    key = f'{real}|{stat.st_size}|{stat.st_mtime_ns}'
    if key not in memo:
        memo[key] = file_sha256(real)
    return memo[key]


def checkpoint_hash(directory: Path) -> str:
    """One sha256 over a checkpoint directory: every regular file's name and content hash.

    Hidden files and directories (``.cache``, ``.git``) are skipped. File hashes are memoised
    by (path, size, mtime) in the cache root, so a 2.5 GB checkpoint is read once, not at
    every start.
    """
    files = sorted(
        p
        for p in Path(directory).rglob('*')
        if p.is_file() and not any(part.startswith('.') for part in p.relative_to(directory).parts)
    )
    memo_file = _memo_path()
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    digest = hashlib.sha256()
    for path in files:
        digest.update(f'{path.relative_to(directory).as_posix()}\0'.encode())
        digest.update(_memo_hash(path, memo).encode())
    with contextlib.suppress(OSError):
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        _write_text_atomic(memo_file, json.dumps(memo, indent=0))
    return digest.hexdigest()


def export_key(checkpoint_sha: str, variant: str, opset: int) -> str:
    """Directory name of one checkpoint's exported graphs (variant: decoding regime)."""
    return f'{checkpoint_sha[:16]}-{variant}-op{opset}-f{EXPORT_FORMAT}'


def export_cache_dir(checkpoint_sha: str, variant: str, opset: int) -> Path:
    """Where graphs exported on first use for this checkpoint and variant live."""
    return default_cache_root() / 'onnx' / export_key(checkpoint_sha, variant, opset)


def default_engine_cache_dir() -> Path:
    """Default ``engine_cache_dir``: <cache root>/tensorrt."""
    return default_cache_root() / 'tensorrt'


def _slug(text: str) -> str:
    """File-name-safe lower-case form: 'NVIDIA H200 NVL' -> 'nvidia-h200-nvl'."""
    return re.sub(r'[^a-z0-9.]+', '-', text.lower()).strip('-') or 'unknown'


def engine_path(
    cache_dir: Path, gpu_name: str, trt_version: str, graph_name: str, graph_sha: str, build: dict
) -> Path:
    """Engine file for one graph: engines are specific to the GPU model and TensorRT version,
    and to the graph and the build settings (precision, optimisation profiles), all in the key.
    """
    settings = json.dumps(build, sort_keys=True)
    key = hashlib.sha256(f'{graph_sha}\0{settings}'.encode()).hexdigest()[:16]
    folder = Path(cache_dir) / f'{_slug(gpu_name)}-trt{_slug(trt_version)}'
    return folder / f'{graph_name}-{key}.engine'


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.')
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target`` to fill; renamed to ``target`` on success,
    removed on error. If another process completed ``target`` meanwhile, theirs is kept.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f'.{target.name}.'))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.rename(tmp, target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
