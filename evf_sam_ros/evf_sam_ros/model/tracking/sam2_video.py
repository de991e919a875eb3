"""SAM2's video path, one frame at a time: encode, ground from text, track with memory.

Everything model-side is sam2's own ``SAM2Base`` code (``forward_image`` and, through
``sam2_adapter``, the private ``_prepare_backbone_features``, ``_track_step``,
``_encode_memory_in_output``, ``_encode_new_memory``); this module feeds it the way the
official EVF-SAM2 video predictor does (hustvl/EVF-SAM
``model/segment_anything_2/sam2/sam2_video_predictor.py``):

- grounding (``add_new_text``): an initial conditioning frame whose only sparse prompt is
  the projected BEiT-3 text feature (EVF patched sam2's prompt encoder to take it; here a
  forward hook on the prompt encoder replaces its output for that one call), multimask
  output and the best predicted IoU; holes filled; its memory encoded from the filled,
  binarised mask (``binarize_mask_from_pts_for_mem_enc=True``), as ``propagate_in_video``'s
  preflight does;
- tracking (``propagate_in_video``): no prompt, features through memory attention,
  multimask output, memory encoded from the unfilled high-res mask; the stored and returned
  low-res logits have their holes filled.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from evf_sam_ros.model.tracking import sam2_adapter
from evf_sam_ros.model.tracking.holes import fill_holes
from evf_sam_ros.model.tracking.track_memory import (
    MEMORY_DTYPE,
    FrameMemory,
    TargetMemory,
    batched_output_dict,
)


@dataclass(frozen=True)
class VideoFrame:
    """One frame through the SAM2 image encoder (batch 1).

    vision_feats / vision_pos: per feature level, (h*w) x 1 x C, as
    ``SAM2Base._prepare_backbone_features`` returns them; feat_sizes: (h, w) per level.
    """

    vision_feats: tuple[torch.Tensor, ...]
    vision_pos: tuple[torch.Tensor, ...]
    feat_sizes: tuple[tuple[int, int], ...]

    def expanded(self, batch: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Features and positional encodings repeated for ``batch`` targets (views)."""
        return (
            [f.expand(-1, batch, -1) for f in self.vision_feats],
            [p.expand(-1, batch, -1) for p in self.vision_pos],
        )


@dataclass(frozen=True)
class StepOutput:
    """One frame's answer for a batch of B targets.

    low_res: Bx1xSxS float32 mask logits (S = image_size / 4), holes filled, -1024 where
    SAM2 saw no object; iou: B predicted IoU of the chosen mask; object_score: B object-score
    logits; memories: what later frames read of this frame, one per target.
    """

    low_res: torch.Tensor
    iou: torch.Tensor
    object_score: torch.Tensor
    memories: tuple[FrameMemory, ...]

    @classmethod
    def of(
        cls,
        filled: torch.Tensor,
        ious: torch.Tensor,
        object_score: torch.Tensor,
        features: torch.Tensor,
        obj_ptr: torch.Tensor,
    ) -> 'StepOutput':
        """From the heads' outputs of B targets: filled Bx1xSxS, ious BxM, object_score Bx1,
        memory features Bxmxhxw (stored in MEMORY_DTYPE), obj_ptr BxC.
        """
        stored = features.to(MEMORY_DTYPE)
        memories = tuple(
            FrameMemory(stored[i : i + 1].clone(), obj_ptr[i : i + 1].clone())
            for i in range(filled.shape[0])
        )
        return cls(filled, ious.float().amax(dim=-1), object_score.float().reshape(-1), memories)


@contextlib.contextmanager
def text_as_prompt(prompt_encoder: nn.Module, text: torch.Tensor) -> Iterator[None]:
    """While active, the prompt encoder's sparse output is ``text`` (Bx1xC), as EVF's patched
    encoder returns for a text-only prompt; its dense output (no_mask_embed) is kept.

    float32, as EVF concatenates the text to an empty float32 tensor. Only calls from this
    thread are changed: another tracker or predictor may run the same model meanwhile.
    """
    owner = threading.get_ident()

    def hook(
        module: nn.Module, args: Any, output: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        if threading.get_ident() != owner:
            return None  # keep the output
        dense = output[1]
        if dense.shape[0] != text.shape[0]:
            raise RuntimeError(
                f'internal: prompt batch {dense.shape[0]} != text batch {text.shape[0]}'
            )
        return text.float(), dense

    handle = prompt_encoder.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


class Sam2VideoRunner:
    """SAM2Base driven one frame at a time, as the official video predictor drives it."""

    def __init__(self, sam2: nn.Module):
        """RuntimeError when the installed sam2 differs from the one sam2_adapter knows."""
        sam2_adapter.check(sam2)
        self.sam2 = sam2
        # the official video predictor is built with this; image mode never encodes memory
        sam2.binarize_mask_from_pts_for_mem_enc = True
        self._pos_enc: list[torch.Tensor] | None = None

    @property
    def image_size(self) -> int:
        """Side of the square SAM2 input in pixels."""
        return int(self.sam2.image_size)

    def encode(self, pixels: torch.Tensor) -> VideoFrame:
        """pixels: 1x3xSxS (``video_frames.sam2_video_pixels``)."""
        backbone_out = self.sam2.forward_image(pixels)
        _, feats, pos, sizes = sam2_adapter.prepare_backbone_features(self.sam2, backbone_out)
        return VideoFrame(tuple(feats), tuple(pos), tuple(tuple(s) for s in sizes))

    def ground(self, frame: VideoFrame, text: torch.Tensor) -> StepOutput:
        """Ground B targets on ``frame`` from their text features (Bx1xC)."""
        feats, pos = frame.expanded(text.shape[0])
        with text_as_prompt(self.sam2.sam_prompt_encoder, text):
            _, sam_out, _, _ = sam2_adapter.track_step(
                self.sam2,
                frame_idx=0,
                is_init_cond_frame=True,
                current_vision_feats=feats,
                current_vision_pos_embeds=pos,
                feat_sizes=list(frame.feat_sizes),
                point_inputs=None,
                mask_inputs=None,
                output_dict={},
                num_frames=1,
                track_in_reverse=False,
                prev_sam_mask_logits=None,
            )
        return self._conditioning_output(frame, feats, sam_out)

    def correct(
        self,
        frame: VideoFrame,
        memory: TargetMemory | None,
        points: tuple[torch.Tensor, torch.Tensor],
        prev_logits: torch.Tensor,
    ) -> StepOutput:
        """Clicks on a frame one target was already segmented on, as sam2's video predictor
        takes them (``add_new_points_or_box``, then ``propagate_in_video_preflight``): point
        prompts with the frame's previous low-res logits (clamped to +-32) as the mask input,
        the frame read through the target's memory from before it (None: the target's
        grounding frame, an initial conditioning frame without memory); its memory encoded
        from the filled, binarised mask as a conditioning frame's.

        points: (1xNx2 float32 model pixels, 1xN int32 labels); prev_logits: 1x1xSxS.
        """
        feats, pos = frame.expanded(1)
        index, output_dict = (
            (0, {}) if memory is None else batched_output_dict([memory], self._pos_enc)
        )
        _, sam_out, _, _ = sam2_adapter.track_step(
            self.sam2,
            frame_idx=index,
            is_init_cond_frame=memory is None,
            current_vision_feats=feats,
            current_vision_pos_embeds=pos,
            feat_sizes=list(frame.feat_sizes),
            point_inputs={'point_coords': points[0], 'point_labels': points[1]},
            mask_inputs=None,
            output_dict=output_dict,
            num_frames=index + 1,
            track_in_reverse=False,
            prev_sam_mask_logits=prev_logits.clamp(-32.0, 32.0),
        )
        return self._conditioning_output(frame, feats, sam_out)

    def _conditioning_output(
        self, frame: VideoFrame, feats: list[torch.Tensor], sam_out: tuple
    ) -> StepOutput:
        """A conditioning frame's output: holes filled, memory from the binarised mask."""
        _, _, ious, low_res, _, obj_ptr, object_score = sam_out
        filled = fill_holes(low_res)
        size = self.image_size
        high_res = F.interpolate(filled, size=(size, size), mode='bilinear', align_corners=False)
        features, pos_enc = sam2_adapter.encode_new_memory(
            self.sam2,
            current_vision_feats=feats,
            feat_sizes=list(frame.feat_sizes),
            pred_masks_high_res=high_res,
            object_score_logits=object_score,
            is_mask_from_pts=True,
        )
        self._keep_pos_enc(pos_enc)
        return StepOutput.of(filled, ious, object_score, features, obj_ptr)

    def track(self, frame: VideoFrame, memories: Sequence[TargetMemory]) -> StepOutput:
        """Track targets with one ``batch_key`` on their next frame, batched."""
        if self._pos_enc is None:
            raise RuntimeError('internal: tracking before any grounding')
        feats, pos = frame.expanded(len(memories))
        index, output_dict = batched_output_dict(memories, self._pos_enc)
        current_out, sam_out, _, _ = sam2_adapter.track_step(
            self.sam2,
            frame_idx=index,
            is_init_cond_frame=False,
            current_vision_feats=feats,
            current_vision_pos_embeds=pos,
            feat_sizes=list(frame.feat_sizes),
            point_inputs=None,
            mask_inputs=None,
            output_dict=output_dict,
            num_frames=index + 1,
            track_in_reverse=False,
            prev_sam_mask_logits=None,
        )
        _, _, ious, low_res, high_res, obj_ptr, object_score = sam_out
        sam2_adapter.encode_memory_in_output(
            self.sam2,
            feats,
            list(frame.feat_sizes),
            None,
            True,
            high_res,
            object_score,
            current_out,
        )
        return StepOutput.of(
            fill_holes(low_res), ious, object_score, current_out['maskmem_features'], obj_ptr
        )

    def _keep_pos_enc(self, pos_enc: list[torch.Tensor]) -> None:
        # the same for every frame and target: keep one copy, as sam2's predictor does
        if self._pos_enc is None:
            self._pos_enc = [p[0:1].clone() for p in pos_enc]
