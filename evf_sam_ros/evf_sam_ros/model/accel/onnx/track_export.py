"""Graph builders of SAM2 track mode (``track_graphs``), registered with ``export``.

Four graphs per SAM2 checkpoint (none for SAM ViT): ground_heads, track_memory_attention,
track_heads, memory_encoder. Dynamic axes: ``targets`` (the batch of tracked targets),
``memory_frames`` (1 to num_maskmem) and ``pointers`` (1 to MAX_OBJ_PTRS). Export on the CPU:
sam2 moves its rotary tables to CUDA when a GPU exists. ``TrackSettings`` are the SAM2 sizes
the runtime needs to feed the graphs, read from the checkpoint's config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.export import Dim

from evf_sam_ros.model.accel.onnx.export import GraphSpec, register_graph
from evf_sam_ros.model.accel.onnx.track_graphs import (
    MAX_OBJ_PTRS,
    GroundHeads,
    MemoryEncoder,
    TrackHeads,
    TrackMemoryAttention,
)

#: Most targets in one call of a track graph (the TensorRT profile's upper bound).
MAX_TARGETS = 16
TRACK_GRAPHS = ('ground_heads', 'track_memory_attention', 'track_heads', 'memory_encoder')
HEADS_OUTPUTS = ['low_res', 'ious', 'obj_ptr', 'object_score']
_EXAMPLE_TARGETS = 2  # example sizes must not be 0 or 1 (torch.export specialises those)


@dataclass(frozen=True)
class TrackSettings:
    """SAM2 sizes the track runtime needs: image_size (pixels), num_maskmem (memory frames a
    frame reads, the conditioning one included), max_obj_ptrs_in_encoder (object pointers).
    """

    image_size: int
    num_maskmem: int
    max_obj_ptrs_in_encoder: int = MAX_OBJ_PTRS

    @classmethod
    def of(cls, cfg: Any) -> 'TrackSettings':
        """From a checkpoint's EvfConfig (``cfg.sam``: a Sam2Config)."""
        return cls(int(cfg.sam.image_size), int(cfg.sam.num_maskmem))

    @property
    def window(self) -> int:
        """Previous frames any later frame can read (``track_memory.memory_window``)."""
        return max(self.num_maskmem - 1, self.max_obj_ptrs_in_encoder - 1)

    def trt_ranges(self) -> dict[str, tuple[int, int, int]]:
        """TensorRT optimisation-profile (min, opt, max) of the track graphs' dynamic axes."""
        return {
            'targets': (1, 1, MAX_TARGETS),
            'memory_frames': (1, self.num_maskmem, self.num_maskmem),
            'pointers': (1, self.max_obj_ptrs_in_encoder, self.max_obj_ptrs_in_encoder),
        }


def _dims(s: TrackSettings) -> tuple[Dim, Dim, Dim]:
    return (
        Dim('targets', min=1, max=MAX_TARGETS),
        Dim('memory_frames', min=1, max=s.num_maskmem),
        Dim('pointers', min=1, max=s.max_obj_ptrs_in_encoder),
    )


def _features(model: Any) -> dict[str, torch.Tensor]:
    """Example image-encoder outputs (1 frame) of a SAM2 model (random, seeded)."""
    sam2 = model.visual_model
    h, c = sam2.image_size // 16, sam2.hidden_dim
    gen = torch.Generator().manual_seed(2)
    return {
        'image_embed': torch.randn(1, c, h, h, generator=gen),
        'high_s4': torch.randn(1, c // 8, 4 * h, 4 * h, generator=gen),
        'high_s8': torch.randn(1, c // 4, 2 * h, 2 * h, generator=gen),
    }


def _heads_axes() -> dict[str, dict[int, str]]:
    return {name: {0: 'targets'} for name in HEADS_OUTPUTS}


@register_graph('ground_heads', 'track')
def ground_heads(model: Any, regime: Any) -> GraphSpec | None:
    """Mask decoder + object pointer of a grounding frame (text prompt, no memory)."""
    if model.cfg.sam_type != 'sam2':
        return None
    targets, _, _ = _dims(TrackSettings.of(model.cfg))
    feats = _features(model)
    text = torch.randn(_EXAMPLE_TARGETS, 1, feats['image_embed'].shape[1])
    return GraphSpec(
        module=GroundHeads(model.visual_model),
        inputs={**feats, 'text': text},
        outputs=HEADS_OUTPUTS,
        dynamic={'text': {0: targets}},
        output_axes=_heads_axes(),
    )


@register_graph('track_memory_attention', 'track')
def track_memory_attention(model: Any, regime: Any) -> GraphSpec | None:
    """Memory attention of a tracked frame over its memory frames and object pointers."""
    if model.cfg.sam_type != 'sam2':
        return None
    s = TrackSettings.of(model.cfg)
    targets, frames, pointers = _dims(s)
    sam2 = model.visual_model
    h = sam2.image_size // 16
    inputs = {
        'image_embed': _features(model)['image_embed'],
        'memory': torch.randn(_EXAMPLE_TARGETS, 2, sam2.mem_dim, h, h),
        'memory_tpos': torch.tensor([s.num_maskmem - 1, s.num_maskmem - 2]),
        'obj_ptrs': torch.randn(_EXAMPLE_TARGETS, 3, sam2.hidden_dim),
    }
    return GraphSpec(
        module=TrackMemoryAttention(sam2),
        inputs=inputs,
        outputs=['pix_feat'],
        dynamic={
            'memory': {0: targets, 1: frames},
            'memory_tpos': {0: frames},
            'obj_ptrs': {0: targets, 1: pointers},
        },
        output_axes={'pix_feat': {0: 'targets'}},
    )


@register_graph('track_heads', 'track')
def track_heads(model: Any, regime: Any) -> GraphSpec | None:
    """Mask decoder + object pointer of a tracked frame (no prompt)."""
    if model.cfg.sam_type != 'sam2':
        return None
    targets, _, _ = _dims(TrackSettings.of(model.cfg))
    feats = _features(model)
    pix_feat = torch.randn(_EXAMPLE_TARGETS, *feats['image_embed'].shape[1:])
    return GraphSpec(
        module=TrackHeads(model.visual_model),
        inputs={'pix_feat': pix_feat, 'high_s4': feats['high_s4'], 'high_s8': feats['high_s8']},
        outputs=HEADS_OUTPUTS,
        dynamic={'pix_feat': {0: targets}},
        output_axes=_heads_axes(),
    )


@register_graph('memory_encoder', 'track')
def memory_encoder(model: Any, regime: Any) -> GraphSpec | None:
    """A frame's memory from its features and chosen mask."""
    if model.cfg.sam_type != 'sam2':
        return None
    targets, _, _ = _dims(TrackSettings.of(model.cfg))
    side = model.visual_model.image_size // 4
    inputs = {
        'image_embed': _features(model)['image_embed'],
        'low_res': torch.randn(_EXAMPLE_TARGETS, 1, side, side),
        'object_score': torch.randn(_EXAMPLE_TARGETS, 1),
        'binarize': torch.tensor(True),
    }
    return GraphSpec(
        module=MemoryEncoder(model.visual_model),
        inputs=inputs,
        outputs=['memory'],
        dynamic={'low_res': {0: targets}, 'object_score': {0: targets}},
        output_axes={'memory': {0: 'targets'}},
    )
