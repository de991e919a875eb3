"""Export the model as ONNX graphs, one per part, with a manifest.

A graph builder turns a loaded EvfSamModel (fp32, CPU) and its decoding regime into a
GraphSpec: a module whose forward takes named tensors, example inputs and the dynamic axes.
Builders register under a graph name and a mode (``image``: BEiT-3 fusion, image encoder,
prompt encoder + mask decoder, in graphs.py; ``track``: the SAM2 video-memory graphs, added
by their own module listed in GRAPH_MODULES). A builder returns None when its graph does not
apply to the checkpoint (no track graphs for SAM ViT).

Every graph is exported with ``torch.onnx.export(dynamo=True)`` at OPSET, weights as ONNX
external data (full-size parts exceed protobuf's 2 GB), fp32 inputs and outputs (token ids
int64, masks bool). manifest.json names the checkpoint, its hash, the variant, the opset and
each graph's file, sha256, inputs and outputs with shapes (a string = a dynamic axis).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from evf_sam_ros.model.accel.onnx.cache import EXPORT_FORMAT, file_sha256

OPSET = 18
MANIFEST = 'manifest.json'
# modules that register builders
GRAPH_MODULES = [
    'evf_sam_ros.model.accel.onnx.graphs',
    'evf_sam_ros.model.accel.onnx.track_export',
]
_LOG = logging.getLogger(__name__)


@dataclass
class GraphSpec:
    """One graph to export: module.forward(**inputs) -> tuple of tensors named ``outputs``.

    inputs: example tensors by argument name (in forward's order). dynamic: per input name,
    {axis: torch.export.Dim} (absent = every axis static); Dim names become the manifest's
    symbolic axis names. output_axes: per output name, {axis: Dim name} of its dynamic axes.
    """

    module: nn.Module
    inputs: dict[str, torch.Tensor]
    outputs: list[str]
    dynamic: dict[str, dict[int, Any]] = field(default_factory=dict)
    output_axes: dict[str, dict[int, str]] = field(default_factory=dict)


Builder = Callable[[Any, Any], 'GraphSpec | None']
GRAPH_BUILDERS: dict[str, tuple[str, Builder]] = {}


def register_graph(name: str, mode: str) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn(model, regime) -> GraphSpec | None`` as graph ``name``."""

    def add(fn: Builder) -> Builder:
        GRAPH_BUILDERS[name] = (mode, fn)
        return fn

    return add


def graph_builders(modes: tuple[str, ...] = ('image', 'track')) -> dict[str, Builder]:
    """The registered builders of these modes, in registration order."""
    for module in GRAPH_MODULES:
        importlib.import_module(module)
    return {name: fn for name, (mode, fn) in GRAPH_BUILDERS.items() if mode in modes}


def _axis_names(dims: dict[int, Any], shape: torch.Size) -> list[int | str]:
    names = {i: d if isinstance(d, str) else d.__name__ for i, d in dims.items()}
    return [names.get(i, int(n)) for i, n in enumerate(shape)]


def _tensor_entry(name: str, dtype: torch.dtype, shape: list[int | str]) -> dict:
    return {'name': name, 'dtype': str(dtype).removeprefix('torch.'), 'shape': shape}


def export_graph(name: str, spec: GraphSpec, out_dir: Path) -> dict:
    """Write ``<name>.onnx`` (+ ``<name>.onnx.data``) into out_dir; return its manifest entry."""
    path = Path(out_dir) / f'{name}.onnx'
    spec.module.eval()
    with torch.inference_mode(False), torch.no_grad():
        outputs = spec.module(**spec.inputs)
        program = torch.onnx.export(
            spec.module,
            (),
            kwargs=spec.inputs,
            input_names=list(spec.inputs),
            output_names=spec.outputs,
            dynamic_shapes={k: spec.dynamic.get(k) for k in spec.inputs} if spec.dynamic else None,
            opset_version=OPSET,
            dynamo=True,
            external_data=True,
            verbose=False,
        )
    program.save(str(path), external_data=True)
    data = path.with_name(path.name + '.data')
    dyn = {d.__name__ for dims in spec.dynamic.values() for d in dims.values()}
    return {
        'file': path.name,
        'data_file': data.name if data.exists() else None,
        'sha256': graph_sha256(path),
        'inputs': [
            _tensor_entry(k, v.dtype, _axis_names(spec.dynamic.get(k, {}), v.shape))
            for k, v in spec.inputs.items()
        ],
        'outputs': [
            _tensor_entry(k, v.dtype, _axis_names(spec.output_axes.get(k, {}), v.shape))
            for k, v in zip(spec.outputs, outputs)
        ],
        'dynamic_axes': sorted(dyn),
    }


def graph_sha256(path: Path) -> str:
    """sha256 of a graph: its .onnx file and, when present, its external data file."""
    path = Path(path)
    data = path.with_name(path.name + '.data')
    parts = [file_sha256(path)] + ([file_sha256(data)] if data.exists() else [])
    return hashlib.sha256('\0'.join(parts).encode()).hexdigest()


def export_model(
    model: Any,
    regime: Any,
    out_dir: Path,
    checkpoint: dict,
    modes: tuple[str, ...] = ('image', 'track'),
    log: Callable[[str], None] = _LOG.info,
) -> dict:
    """Export every applicable graph of ``model`` (fp32, CPU) into out_dir and write the
    manifest. checkpoint: {'name', 'sha256'} recorded in the manifest. Returns the manifest.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    graphs = {}
    for name, build in graph_builders(modes).items():
        spec = build(model, regime)
        if spec is None:
            continue
        log(f'exporting graph {name} ...')
        graphs[name] = export_graph(name, spec, out_dir)
    manifest = {
        'format': EXPORT_FORMAT,
        'checkpoint': checkpoint,
        'variant': regime.name,
        'sam_type': model.cfg.sam_type,
        'max_text_tokens': model.cfg.beit3.max_text_tokens,
        'opset': OPSET,
        'torch': torch.__version__,
        'graphs': graphs,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + '\n')
    return manifest


def read_manifest(directory: Path) -> dict:
    """The manifest of an exported directory. Raises FileNotFoundError / ValueError."""
    path = Path(directory) / MANIFEST
    manifest = json.loads(path.read_text())
    if manifest.get('format') != EXPORT_FORMAT:
        raise ValueError(
            f'{path} is export format {manifest.get("format")}, this code reads '
            f'{EXPORT_FORMAT}: export again with evf-sam-export'
        )
    return manifest
