"""The parameter table (``settings.PARAMS``) checked and applied: allowed values and
combinations, settings from a parameters file (the replay's), and on a node, declared with
descriptors (ranges, choices), checked on every change and kept as its NodeSettings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Callable

from evf_sam_ros.node.settings import PARAMS, SPECS, NodeSettings, ParamSpec


def check_value(spec: ParamSpec, value: Any) -> str | None:
    """Why ``value`` is not allowed for ``spec``, or None when it is."""
    if spec.choices is not None and value not in spec.choices:
        return f'{spec.name} must be one of {list(spec.choices)}, got {value!r}'
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            return f'{spec.name} must be finite, got {value}'
        if spec.low is not None and value < spec.low:
            return f'{spec.name} must be >= {spec.low}, got {value}'
        if spec.high is not None and value > spec.high:
            return f'{spec.name} must be <= {spec.high}, got {value}'
    return None


def check_combination(values: Mapping[str, Any]) -> str | None:
    """Why these parameter values do not fit together, or None when they do."""
    if values['min_depth'] > values['max_depth']:
        return (
            f'min_depth ({values["min_depth"]}) must not exceed max_depth ({values["max_depth"]})'
        )
    return None


def params_file_values(path: str) -> dict[str, Any]:
    """The values a ROS 2 parameters file gives evf_sam in any namespace (sections keyed
    ``/**/evf_sam``, ``/robot/evf_sam``, ``/**`` ...; ``launch_params.parameter_values``),
    checked as the node checks them. Raises ValueError for an unreadable file or a value
    that is not allowed.
    """
    from pathlib import Path

    from evf_sam_ros.node.launch_params import parameter_values

    values = parameter_values(Path(path))
    for name, value in values.items():
        spec = SPECS.get(name)
        reason = f'unknown parameter {name!r}' if spec is None else check_value(spec, value)
        if reason is not None:
            raise ValueError(f'{path}: {reason}')
    return values


def default_settings(overrides: Mapping[str, Any] | None = None) -> NodeSettings:
    """NodeSettings of the node's defaults with ``overrides`` (checked like the node does)."""
    settings = NodeSettings().updated(overrides or {})
    reason = check_combination(settings.values())
    if reason is not None:
        raise ValueError(reason)
    return settings


def descriptor(spec: ParamSpec) -> Any:
    """rcl_interfaces/ParameterDescriptor of ``spec``: its description, its range
    (FloatingPointRange / IntegerRange, shown by `ros2 param describe` and enforced by
    rclpy) and its choices as additional constraints.
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    desc = ParameterDescriptor(
        description=spec.description + ('' if spec.runtime else ' (applied at configure)')
    )
    if spec.low is not None and spec.high is not None:
        if isinstance(spec.default, float):
            desc.floating_point_range = [
                FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high), step=0.0)
            ]
        else:
            desc.integer_range = [
                IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=1)
            ]
    if spec.choices is not None:
        desc.additional_constraints = 'one of: ' + ', '.join(repr(c) for c in spec.choices)
    return desc


class NodeParameters:
    """Declares the PARAMS on a node (with ranges), keeps the NodeSettings snapshot and
    checks every change: ranges and choices, combinations, load-time parameters only while
    no model is loaded, and the prompt. A parameters file value that is refused (out of
    range, wrong type) is not applied: the default is declared instead and ``errors`` names
    the refused value, so configure fails with it until it is fixed (nothing silent).
    """

    def __init__(
        self,
        node: Any,
        on_change: Callable[[set[str]], None],
        loaded: Callable[[], bool],
        validate_prompt: Callable[[str], str],
    ):
        """on_change(names): called with the names of parameters just changed."""
        from rclpy.exceptions import ParameterException

        self._on_change, self._loaded, self._validate_prompt = on_change, loaded, validate_prompt
        self._refused: dict[str, str] = {}
        for spec in PARAMS:
            try:
                node.declare_parameter(spec.name, spec.default, descriptor(spec))
            except ParameterException as exc:
                self._refused[spec.name] = f'{spec.name}: {exc}; fix the parameters file'
                node.declare_parameter(
                    spec.name, spec.default, descriptor(spec), ignore_override=True
                )
        values = {p.name: node.get_parameter(p.name).value for p in PARAMS}
        for spec in PARAMS:
            reason = check_value(spec, values[spec.name])
            if reason is not None:
                self._refused[spec.name] = reason
        self.settings = NodeSettings.from_values(values)
        node.add_on_set_parameters_callback(self._on_set)

    @property
    def errors(self) -> list[str]:
        """Why the current parameters cannot be used (empty when they can)."""
        combination = check_combination(self.settings.values())
        return list(self._refused.values()) + ([combination] if combination else [])

    def _reason(self, param: Any) -> str | None:
        from evf_sam_ros.model.errors import PromptError

        spec = SPECS[param.name]
        reason = check_value(spec, param.value)
        if reason is None and not spec.runtime and self._loaded():
            reason = f'{param.name} applies at configure: cleanup the node first, then configure'
        if reason is None and param.name == 'prompt' and str(param.value).strip():
            try:
                self._validate_prompt(param.value)
            except PromptError as exc:
                reason = str(exc)
        return reason

    def _on_set(self, params: list[Any]) -> Any:
        from rcl_interfaces.msg import SetParametersResult

        ours = [p for p in params if p.name in SPECS]
        for param in ours:
            reason = self._reason(param)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        changed = {p.name: p.value for p in ours}
        reason = check_combination({**self.settings.values(), **changed})
        if reason is not None:
            return SetParametersResult(successful=False, reason=reason)
        self.settings = self.settings.updated(changed)
        for param in ours:
            self._refused.pop(param.name, None)
        self._on_change(set(changed))
        return SetParametersResult(successful=True)
