"""diagnostic_msgs/DiagnosticArray from the node's counters (one status, key/value pairs)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping


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
    load_error: str,
    counters: Mapping[str, Any],
    problems: Mapping[str, int],
    input_rate: float,
) -> DiagnosticsSnapshot:
    """Level and message from the lifecycle state, the load error and recent input."""
    if load_error:
        level, message = 2, f'model failed to load: {load_error}'
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
