"""The node's counters and statistics (``NodeStats``) and the diagnostic_msgs/DiagnosticArray
made from them (one status, key/value pairs).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

from evf_sam_ros.node.runtime import LatencyStats, ThrottledWarnings

#: Counters of NodeStats, all starting at 0.
COUNTERS = (
    'frames_processed',
    'frames_skipped_no_prompt',
    'frames_bad',
    'commands',
    'prompts_rejected',
    'clicks_applied',
)


class NodeStats:
    """Counters, latency statistics and problems by kind (throttled warnings), shared by the
    node's callbacks and its worker (thread-safe).
    """

    def __init__(self, log_warning: Callable[[str], None]) -> None:
        self.counters = dict.fromkeys(COUNTERS, 0)
        self._lock = threading.Lock()
        self.warnings = ThrottledWarnings(log_warning)
        self.inference_ms, self.latency_ms = LatencyStats(), LatencyStats()
        self.overhead_ms = LatencyStats()

    def count(self, key: str) -> None:
        """Add one to counter ``key``."""
        with self._lock:
            self.counters[key] += 1

    def warn(self, kind: str, message: str) -> None:
        """Count a problem of ``kind``; log ``message`` unless throttled."""
        self.warnings.warn(kind, message)

    def values(self) -> dict[str, Any]:
        """The counters and the p50/p95 of each statistic (ms)."""
        stats = {
            'inference_ms': self.inference_ms,
            'stamp_to_publish_ms': self.latency_ms,
            'node_overhead_ms': self.overhead_ms,
        }
        with self._lock:
            counters = dict(self.counters)
        return {
            **counters,
            **{f'{k}_p{q}': v.percentile(q) for k, v in stats.items() for q in (50, 95)},
        }


@dataclass
class DiagnosticsSnapshot:
    """What /diagnostics reports; level: 0 OK, 1 WARN, 2 ERROR."""

    state: str
    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return 'nan' if math.isnan(value) else f'{value:.2f}'
    return str(value)


def summarize(
    state: str,
    error: str,
    counters: Mapping[str, Any],
    problems: Mapping[str, int],
    input_rate: float,
) -> DiagnosticsSnapshot:
    """Level and message from the lifecycle state, the last error (a failed load or
    transition: ERROR until the next configure succeeds) and recent input.
    """
    if error:
        level, message = 2, error
    elif state != 'active':
        level, message = 1, f'{state}: not processing'
    elif input_rate == 0.0:
        level, message = 1, 'active, no images arriving'
    elif not counters.get('prompt'):
        level, message = 0, 'active, idle: no prompt'
    else:
        level, message = 0, 'active'
    values = {
        'state': state,
        'input_rate_hz': _fmt(input_rate),
        **{k: _fmt(v) for k, v in counters.items()},
        **{f'problem.{k}': str(v) for k, v in sorted(problems.items())},
    }
    return DiagnosticsSnapshot(state, level, message, values)


def diagnostic_array(
    snapshot: DiagnosticsSnapshot, node_name: str, hardware_id: str, stamp: Any
) -> Any:
    """A DiagnosticArray holding one DiagnosticStatus named '<node>: text segmentation'."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus()
    status.level = bytes([snapshot.level])
    status.name = f'{node_name}: text segmentation'
    status.message = snapshot.message[:500]
    status.hardware_id = hardware_id
    status.values = [KeyValue(key=k, value=v) for k, v in snapshot.values.items()]
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [status]
    return array


def node_status(
    state: str, error: str, stats: NodeStats, targets: Any, inputs: Any, model: dict[str, Any]
) -> DiagnosticsSnapshot:
    """The node's status: ``targets`` a pipeline.TargetList, ``inputs`` its CameraInputs,
    ``model`` its ``model_values``.
    """
    frames = inputs.frames
    values = {
        **stats.values(),
        'prompt': targets.primary_prompt,
        'targets': len(targets.snapshot()),
        'frames_received': frames.received,
        'frames_dropped': frames.dropped,
        **model,
    }
    problems = dict(stats.warnings.counts)
    return summarize(state, error, values, problems, inputs.rate.rate())


def model_values(predictor: Any, settings: Any, segmenter: Any) -> dict[str, Any]:
    """What /diagnostics says of the model: checkpoint, variant, device, dtype, mode and, in
    track mode, the tracker's counters. ``predictor`` None: not loaded (the checkpoint
    parameter is named).
    """
    from evf_sam_ros.pipeline.track import TrackSegmenter

    p = predictor
    values: dict[str, Any] = {
        'model': p.name if p else settings.checkpoint,
        'variant': p.regime.name if p else '',
        'device': str(p.device) if p else '',
        'dtype': dtype_name(p.dtype) if p else '',
        'mode': settings.mode,
    }
    if isinstance(segmenter, TrackSegmenter):
        c = segmenter.counters
        values.update(
            track_groundings=c.groundings, track_lost=c.lost, track_regrounded=c.regrounded
        )
    return values


def dtype_name(dtype: Any) -> str:
    """'float16' for torch.float16."""
    return str(dtype).replace('torch.', '')
