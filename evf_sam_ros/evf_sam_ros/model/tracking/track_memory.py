"""Bounded SAM2 memory of one tracked target, and the batched view sam2 reads.

sam2's ``SAM2Base._prepare_memory_conditioned_features`` reads an ``output_dict`` with the
conditioning frames and the non-conditioning frames by frame index: the memory features of
the conditioning frame and of the ``num_maskmem - 1`` previous frames, and the object
pointers of the conditioning frame and of up to ``max_obj_ptrs_in_encoder - 1`` previous
frames. The official offline run keeps every frame; here each target keeps only the frames
that can still be read, in its own numbering (its grounding frame is 0), so memory and
per-frame cost do not grow with the stream.

Targets read the same slots when they are at the same frame index, or when both have filled
their window (then every slot is there): such targets are batched by concatenating their
entries, renumbered relative to a common frame index. The memory attention sees the same
entries at the same temporal positions as in a run of each target alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

#: sam2 stores memory features as bfloat16 (``_run_single_frame_inference``).
MEMORY_DTYPE = torch.bfloat16


@dataclass(frozen=True)
class FrameMemory:
    """What later frames read of one processed frame of one target.

    maskmem_features: 1 x mem_dim x h x w bfloat16 (h = w = image_size / 16);
    obj_ptr: 1 x C object pointer in the compute dtype.
    """

    maskmem_features: torch.Tensor
    obj_ptr: torch.Tensor


def memory_window(sam2: Any) -> int:
    """Number of previous (non-conditioning) frames any later frame can read."""
    if sam2.memory_temporal_stride_for_eval != 1:
        raise ValueError(
            'track mode supports memory_temporal_stride_for_eval == 1 only '
            f'(the released configs); got {sam2.memory_temporal_stride_for_eval}'
        )
    pointers = sam2.max_obj_ptrs_in_encoder - 1 if sam2.use_obj_ptrs_in_encoder else 0
    return max(sam2.num_maskmem - 1, pointers)


class TargetMemory:
    """Memory bank of one target: its conditioning frames and its most recent frames.

    ``frame_index`` is the index of the last frame stored (0 = the grounding frame).
    At most ``window`` non-conditioning frames are kept. ``clicks``: frames corrected by
    clicks, by index, kept as conditioning frames (sam2 with
    ``add_all_frames_to_correct_as_cond``), at most the ``limit`` given to add_click.
    """

    def __init__(self, cond: FrameMemory, window: int):
        self.cond = cond
        self.window = window
        self.frame_index = 0
        self.recent: dict[int, FrameMemory] = {}
        self.clicks: dict[int, FrameMemory] = {}

    def snapshot(self) -> 'TargetMemory':
        """A copy that later appends do not change (the tensors are shared, not copied)."""
        copy = TargetMemory(self.cond, self.window)
        copy.frame_index = self.frame_index
        copy.recent, copy.clicks = dict(self.recent), dict(self.clicks)
        return copy

    def add_click(self, frame: FrameMemory, limit: int) -> None:
        """Store the next frame's memory as a conditioning frame (a corrected frame); only the
        newest ``limit`` (>= 1) click frames are kept.
        """
        self.frame_index += 1
        self.clicks[self.frame_index] = frame
        for index in sorted(self.clicks)[:-limit]:
            del self.clicks[index]
        self._forget_old()

    def append(self, frame: FrameMemory) -> None:
        """Store the next frame's memory and forget what no later frame can read."""
        self.frame_index += 1
        self.recent[self.frame_index] = frame
        self._forget_old()

    def _forget_old(self) -> None:
        for index in [i for i in self.recent if i <= self.frame_index - self.window]:
            del self.recent[index]

    @property
    def batch_key(self) -> tuple[int, tuple[int, ...]]:
        """Targets with equal keys can be tracked in one batch: (the frame index, or
        ``window`` for every target whose window is full; the click frames' ages).
        """
        ages = tuple(self.frame_index - i for i in sorted(self.clicks))
        return min(self.frame_index, self.window), ages

    def tensors(self) -> int:
        """Stored tensors (for tests and diagnostics): 2 per kept frame."""
        return 2 * (1 + len(self.recent) + len(self.clicks))


def _stack(frames: Sequence[FrameMemory], pos_enc: list[torch.Tensor]) -> dict[str, Any]:
    if len(frames) == 1:
        features, ptr = frames[0].maskmem_features, frames[0].obj_ptr
    else:
        features = torch.cat([f.maskmem_features for f in frames])
        ptr = torch.cat([f.obj_ptr for f in frames])
    return {'maskmem_features': features, 'maskmem_pos_enc': pos_enc, 'obj_ptr': ptr}


def batched_output_dict(
    memories: Sequence[TargetMemory], pos_enc: Sequence[torch.Tensor]
) -> tuple[int, dict[str, dict[int, dict[str, Any]]]]:
    """(frame_idx, sam2 ``output_dict``) for the next frame of targets with one batch_key,
    batched along dim 0; each target's previous frames are numbered back from frame_idx.

    pos_enc: the memory encoder's positional encoding (1 x mem_dim x h x w per level; the
    same for every frame and target, as sam2 caches it) expanded to the batch.
    """
    key = memories[0].batch_key
    if any(m.batch_key != key for m in memories):
        raise ValueError('internal: targets batched together must have the same batch key')
    index = key[0] + 1
    batch = len(memories)
    pos = [p.expand(batch, -1, -1, -1) for p in pos_enc]
    conds = {0: _stack([m.cond for m in memories], pos)}
    first = memories[0]
    for i in first.clicks:  # in the window at their own index, before it at -age (unique)
        b = first.frame_index + 1 - i
        frames = [m.clicks[m.frame_index + 1 - b] for m in memories]
        conds[index - b if b < index else -b] = _stack(frames, pos)
    back = [first.frame_index + 1 - i for i in first.recent]  # frames before the next one
    recent = {
        index - b: _stack([m.recent[m.frame_index + 1 - b] for m in memories], pos) for b in back
    }
    return index, {'cond_frame_outputs': conds, 'non_cond_frame_outputs': recent}
