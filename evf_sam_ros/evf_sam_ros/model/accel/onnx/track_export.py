"""Export the four SAM2 track-mode graphs (``track_graphs``) of a loaded model to ONNX.

Run on the CPU (sam2 moves its rotary tables to CUDA when a GPU exists): the exporter traces
the float32 model with sam2's rotary encoding in real arithmetic (``rotary.real_rotary``),
opset 18, dynamic batch (targets), memory frames and object pointers. ``track.json`` next to
the graphs holds the SAM2 settings the runtime needs to feed them (memory sizes, image size).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evf_sam_ros.model.accel.onnx.rotary import real_rotary
from evf_sam_ros.model.accel.onnx.track_graphs import (
    GroundHeads,
    MemoryEncoder,
    TrackHeads,
    TrackMemoryAttention,
)

OPSET = 18
#: Most targets one graph call takes (the dynamic batch's upper bound).
MAX_TARGETS = 64
HEADS_OUTPUTS = ['low_res', 'ious', 'obj_ptr', 'object_score']
TRACK_SETTINGS_FILE = 'track.json'
#: Graph name -> file name.
TRACK_GRAPHS = {
    'ground_heads': 'sam2_ground_heads.onnx',
    'track_memory_attention': 'sam2_track_memory_attention.onnx',
    'track_heads': 'sam2_track_heads.onnx',
    'memory_encoder': 'sam2_memory_encoder.onnx',
}


@dataclass(frozen=True)
class TrackSettings:
    """SAM2 settings the track runtime needs (sizes in pixels / feature cells)."""

    image_size: int
    hidden_dim: int
    mem_dim: int
    num_maskmem: int
    max_obj_ptrs_in_encoder: int

    @classmethod
    def of(cls, sam2: Any) -> 'TrackSettings':
        """Read from a loaded SAM2Base."""
        return cls(
            int(sam2.image_size),
            int(sam2.hidden_dim),
            int(sam2.mem_dim),
            int(sam2.num_maskmem),
            int(sam2.max_obj_ptrs_in_encoder),
        )

    @classmethod
    def load(cls, directory: Path) -> 'TrackSettings':
        """Read ``track.json`` from an export directory."""
        return cls(**json.loads((Path(directory) / TRACK_SETTINGS_FILE).read_text()))


def _examples(sam2: Any, s: TrackSettings) -> dict[str, tuple]:
    """Example inputs per graph: 2 targets, 2 memory frames, 3 pointers (no 0/1 sizes, which
    the exporter would specialise).
    """
    h, c, m = s.image_size // 16, s.hidden_dim, s.mem_dim
    batch = 2
    image = (
        torch.randn(1, c, h, h),
        torch.randn(1, c // 8, 4 * h, 4 * h),
        torch.randn(1, c // 4, 2 * h, 2 * h),
    )
    low_res = torch.randn(batch, 1, 4 * h, 4 * h)
    return {
        'ground_heads': (*image, torch.randn(batch, 1, c)),
        'track_memory_attention': (
            image[0],
            torch.randn(batch, 2, m, h, h),
            torch.tensor([s.num_maskmem - 1, s.num_maskmem - 2]),
            torch.randn(batch, 3, c),
        ),
        'track_heads': (torch.randn(batch, c, h, h), image[1], image[2]),
        'memory_encoder': (image[0], low_res, torch.randn(batch, 1), torch.tensor(True)),
    }


def _dynamic_shapes(s: TrackSettings) -> dict[str, dict[str, Any]]:
    dim = torch.export.Dim
    batch = dim('targets', min=1, max=MAX_TARGETS)
    frames = dim('memory_frames', min=1, max=s.num_maskmem)
    pointers = dim('pointers', min=1, max=s.max_obj_ptrs_in_encoder)
    return {
        'ground_heads': {'image_embed': {}, 'high_s4': {}, 'high_s8': {}, 'text': {0: batch}},
        'track_memory_attention': {
            'image_embed': {},
            'memory': {0: batch, 1: frames},
            'memory_tpos': {0: frames},
            'obj_ptrs': {0: batch, 1: pointers},
        },
        'track_heads': {'pix_feat': {0: batch}, 'high_s4': {}, 'high_s8': {}},
        'memory_encoder': {
            'image_embed': {},
            'low_res': {0: batch},
            'object_score': {0: batch},
            'binarize': {},
        },
    }


def track_modules(sam2: nn.Module) -> dict[str, nn.Module]:
    """The four graph modules of a loaded SAM2Base, by graph name."""
    return {
        'ground_heads': GroundHeads(sam2),
        'track_memory_attention': TrackMemoryAttention(sam2),
        'track_heads': TrackHeads(sam2),
        'memory_encoder': MemoryEncoder(sam2),
    }


def export_track_graphs(sam2: nn.Module, out_dir: str | Path) -> dict[str, Path]:
    """Write the four track graphs and ``track.json`` into ``out_dir``; returns their paths.

    ``sam2`` must be float32 on the CPU (RuntimeError otherwise).
    """
    parameter = next(sam2.parameters())
    if parameter.device.type != 'cpu' or parameter.dtype != torch.float32:
        raise RuntimeError(
            f'export the track graphs from a float32 CPU model, got {parameter.dtype} on '
            f'{parameter.device} (load with device="cpu", dtype="float32")'
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = TrackSettings.of(sam2)
    examples, shapes = _examples(sam2, settings), _dynamic_shapes(settings)
    paths = {}
    with torch.no_grad(), real_rotary(sam2):
        for name, module in track_modules(sam2).items():
            module.eval()
            paths[name] = out / TRACK_GRAPHS[name]
            outputs = ['memory'] if name == 'memory_encoder' else HEADS_OUTPUTS
            if name == 'track_memory_attention':
                outputs = ['pix_feat']
            torch.onnx.export(
                module,
                examples[name],
                paths[name],
                dynamo=True,
                dynamic_shapes=shapes[name],
                opset_version=OPSET,
                output_names=outputs,
                external_data=False,
                verbose=False,
            )
    (out / TRACK_SETTINGS_FILE).write_text(json.dumps(asdict(settings), indent=1))
    return paths
