"""A node parameter's declaration: ``ParamSpec`` (what the node declares, the README and
config/evf_sam.yaml are tested against) and ``param``, which makes a settings field a
parameter; ``field_specs`` reads them back from a settings dataclass, in declaration order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: ``name`` as ROS spells it (dots for groups), ``field`` its NodeSettings
    attribute. runtime: may change while configured; otherwise only while unconfigured (it
    takes effect at the next configure). choices / low / high: allowed values.
    """

    name: str
    field: str
    default: Any
    description: str
    runtime: bool = False
    choices: Sequence[str] | None = None
    low: float | None = None
    high: float | None = None


def param(
    default: Any,
    description: str,
    *,
    name: str | None = None,
    runtime: bool = False,
    choices: Sequence[str] | None = None,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    """A NodeSettings field that is a node parameter (``name``: the ROS name when it is not
    the field's, e.g. ``image_qos.depth``).
    """
    spec = dict(
        name=name, description=description, runtime=runtime, choices=choices, low=low, high=high
    )
    return dataclasses.field(default=default, metadata={'param': spec})


BIG = 1_000_000  # the upper bound of counts that have no natural one


def field_specs(settings_class: type) -> tuple[ParamSpec, ...]:
    """The ParamSpec of every field of ``settings_class`` (a dataclass of ``param`` fields),
    base classes' fields first, each in declaration order.
    """
    specs = []
    for f in dataclasses.fields(settings_class):
        meta = dict(f.metadata['param'])
        specs.append(
            ParamSpec(name=meta.pop('name') or f.name, field=f.name, default=f.default, **meta)
        )
    return tuple(specs)
