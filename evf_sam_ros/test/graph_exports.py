"""Graph exports for the ONNX tests, in processes of their own: the installed `evf-sam-export`
console script writes a checkpoint's graphs while the test process exports another (the
machine has two cores; an export is mostly single-threaded tracing).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from evf_sam_ros.install_layout import executable


def background_export(checkpoint: Path, out_dir: Path) -> subprocess.Popen:
    """`evf-sam-export CHECKPOINT OUT_DIR` started in a process of its own (one CPU thread)."""
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = [str(executable('evf-sam-export')), str(checkpoint), str(out_dir)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finished(proc: subprocess.Popen, timeout_s: float = 900.0) -> None:
    """Wait for a background export; fail with its output unless it exited 0."""
    output = proc.communicate(timeout=timeout_s)[0].decode(errors='replace')
    assert proc.returncode == 0, output[-3000:]


def stop(proc: subprocess.Popen) -> None:
    """End an export the tests no longer wait for (a test failed before using it)."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate()
