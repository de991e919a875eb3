"""SAM2 track mode as four graphs with named tensor inputs (torch modules, ready to export).

Each wraps the sam2 modules of one loaded ``SAM2Base`` (public attributes and forwards only)
and computes what ``sam2_video.Sam2VideoRunner`` gets from sam2's private video steps, for
EVF-SAM2's configuration (no point or mask prompts, multimask output, object pointers without
temporal encoding). Shapes (B targets; C = d_model, h = w = image_size / 16, S = image_size
/ 4, m = mem_dim; ``image_embed`` is the image-mode encoder output, i.e. the top level plus
``no_mem_embed``, so one image-encoder graph serves both modes):

- ``GroundHeads``: image_embed 1xCxhxw, high_s4 1xC/8x4hx4w, high_s8 1xC/4x2hx2w, text BxTxC
  -> low_res Bx1xSxS, ious Bx3, obj_ptr BxC, object_score Bx1 (the initial conditioning frame);
- ``TrackMemoryAttention``: image_embed, memory BxFxmxhxw (F memory frames, conditioning
  frame first, oldest to newest), memory_tpos F int64 (row of ``maskmem_tpos_enc`` per frame),
  obj_ptrs BxPxC (P pointers, conditioning frame first, newest to oldest) -> pix_feat
  BxCxhxw; F and P are dynamic;
- ``TrackHeads``: pix_feat, high_s4, high_s8 -> as GroundHeads;
- ``MemoryEncoder``: image_embed, low_res Bx1xSxS (holes filled on grounding frames),
  object_score Bx1, binarize (bool scalar: grounding frames) -> memory Bxmxhxw.

low_res is the chosen mask's float32 logits, -1024 where SAM2 saw no object (not hole-filled).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from evf_sam_ros.model.accel.onnx.rotary import RealRotary

#: sam2's logit for "no object" (``sam2_base.NO_OBJ_SCORE``).
NO_OBJECT_LOGIT = -1024.0
#: sam2's ``max_obj_ptrs_in_encoder`` (SAM2Base's default; the EVF-SAM2 configs keep it).
MAX_OBJ_PTRS = 16


def check_supported(sam2: Any) -> None:
    """Raise ValueError for a SAM2 configuration these graphs do not reproduce."""
    wanted = {
        'directly_add_no_mem_embed': True,
        'use_high_res_features_in_sam': True,
        'pred_obj_scores': True,
        'fixed_no_obj_ptr': True,
        'soft_no_obj_ptr': False,
        'use_multimask_token_for_obj_ptr': True,
        'add_tpos_enc_to_obj_ptrs': False,
        'non_overlap_masks_for_mem_enc': False,
        'memory_temporal_stride_for_eval': 1,
        'max_obj_ptrs_in_encoder': MAX_OBJ_PTRS,
        'max_cond_frames_in_attn': -1,
    }
    wrong = {k: getattr(sam2, k) for k, v in wanted.items() if getattr(sam2, k) != v}
    if wrong:
        raise ValueError(f'track graphs support EVF-SAM2 configs only; these differ: {wrong}')


def _raw_top(sam2: Any, image_embed: torch.Tensor) -> torch.Tensor:
    """Top-level features without ``no_mem_embed`` (what the video path reads): 1xCxhxw."""
    return image_embed - sam2.no_mem_embed.reshape(1, -1, 1, 1)


def _heads(
    sam2: Any,
    pix_feat: torch.Tensor,
    high_s4: torch.Tensor,
    high_s8: torch.Tensor,
    text: torch.Tensor | None,
) -> tuple[torch.Tensor, ...]:
    """``SAM2Base._forward_sam_heads`` with multimask output and no mask input; the sparse
    prompt is ``text`` (EVF's grounding) or sam2's empty point (tracking).
    """
    batch = pix_feat.shape[0]
    points = torch.zeros(batch, 1, 2)
    labels = -torch.ones(batch, 1, dtype=torch.int32)
    sparse, dense = sam2.sam_prompt_encoder(points=(points, labels), boxes=None, masks=None)
    if text is not None:
        sparse = text.float()
    masks, ious, tokens, object_score = sam2.sam_mask_decoder(
        image_embeddings=pix_feat,
        image_pe=sam2.sam_prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=True,
        repeat_image=False,
        high_res_features=[high_s4.expand(batch, -1, -1, -1), high_s8.expand(batch, -1, -1, -1)],
    )
    present = object_score > 0
    masks = torch.where(present[:, :, None, None], masks, NO_OBJECT_LOGIT).float()
    best = ious.argmax(dim=-1, keepdim=True)
    low_res = masks.gather(1, best[:, :, None, None].expand(-1, -1, *masks.shape[2:]))
    token = tokens.gather(1, best[:, :, None].expand(-1, -1, tokens.shape[-1]))[:, 0]
    weight = present.float()
    obj_ptr = weight * sam2.obj_ptr_proj(token) + (1 - weight) * sam2.no_obj_ptr
    return low_res, ious.float(), obj_ptr, object_score.float()


class Sam2Graph(nn.Module):
    """A graph module over one loaded SAM2Base (its configuration checked)."""

    def __init__(self, sam2: nn.Module):
        super().__init__()
        check_supported(sam2)
        self.sam2 = sam2


class GroundHeads(Sam2Graph):
    """Mask decoder and object-pointer projection of a grounding frame (see module doc)."""

    def forward(
        self,
        image_embed: torch.Tensor,
        high_s4: torch.Tensor,
        high_s8: torch.Tensor,
        text: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """(low_res, ious, obj_ptr, object_score); the image is shared by the B texts."""
        pix_feat = image_embed.expand(text.shape[0], -1, -1, -1)
        return _heads(self.sam2, pix_feat, high_s4, high_s8, text)


class TrackHeads(Sam2Graph):
    """Mask decoder and object-pointer projection of a tracked frame (see module doc)."""

    def forward(
        self, pix_feat: torch.Tensor, high_s4: torch.Tensor, high_s8: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """(low_res, ious, obj_ptr, object_score) for the B memory-conditioned features."""
        return _heads(self.sam2, pix_feat, high_s4, high_s8, None)


class TrackMemoryAttention(Sam2Graph):
    """The current frame's features conditioned on a memory bank (see module doc)."""

    def __init__(self, sam2: nn.Module):
        super().__init__(sam2)
        self.rotary = RealRotary(sam2.memory_attention)
        side = sam2.image_size // 16
        with torch.no_grad():
            top = torch.zeros(1, sam2.hidden_dim, side, side)
            pos = sam2.image_encoder.neck.position_encoding(top)
            mem_pos = sam2.memory_encoder.position_encoding(
                torch.zeros(1, sam2.mem_dim, side, side)
            )
        # input-independent sine encodings: tokens x 1 x channels
        self.register_buffer('curr_pos', pos.flatten(2).permute(2, 0, 1), persistent=False)
        self.register_buffer('memory_pos', mem_pos.flatten(2).permute(2, 0, 1), persistent=False)

    def forward(
        self,
        image_embed: torch.Tensor,
        memory: torch.Tensor,
        memory_tpos: torch.Tensor,
        obj_ptrs: torch.Tensor,
    ) -> torch.Tensor:
        """pix_feat BxCxhxw (``_prepare_memory_conditioned_features`` of a tracked frame)."""
        sam2 = self.sam2
        batch, frames, mem_dim, h, w = memory.shape
        channels = sam2.hidden_dim
        curr = _raw_top(sam2, image_embed).flatten(2).permute(2, 0, 1).expand(-1, batch, -1)
        curr_pos = self.curr_pos.expand(-1, batch, -1)
        # frames x (h w) x B x m, then one token sequence
        spatial = memory.permute(1, 3, 4, 0, 2).reshape(frames * h * w, batch, mem_dim)
        tpos = sam2.maskmem_tpos_enc[memory_tpos]  # F x 1 x 1 x m
        spatial_pos = (self.memory_pos[None] + tpos).expand(-1, -1, batch, -1)
        spatial_pos = spatial_pos.reshape(frames * h * w, batch, mem_dim)
        # each pointer split into C / m tokens; no temporal encoding (zeros)
        split = channels // mem_dim
        pointers = obj_ptrs.permute(1, 0, 2).reshape(-1, batch, split, mem_dim)
        pointers = pointers.permute(0, 2, 1, 3).flatten(0, 1)
        memory_tokens = torch.cat([spatial, pointers], dim=0)
        memory_pos = torch.cat([spatial_pos, torch.zeros_like(pointers)], dim=0)
        with self.rotary.swap():  # sam2's complex rotary encoding does not export
            out = sam2.memory_attention(
                curr=[curr],
                curr_pos=[curr_pos],
                memory=memory_tokens,
                memory_pos=memory_pos,
                num_obj_ptr_tokens=pointers.shape[0],
            )
        return out.permute(1, 2, 0).reshape(batch, channels, h, w)


class MemoryEncoder(Sam2Graph):
    """A frame's memory from its features and chosen mask (``_encode_new_memory``)."""

    def forward(
        self,
        image_embed: torch.Tensor,
        low_res: torch.Tensor,
        object_score: torch.Tensor,
        binarize: torch.Tensor,
    ) -> torch.Tensor:
        """Bxmxhxw float32 memory (the caller stores it in bfloat16, as sam2 does)."""
        sam2 = self.sam2
        batch = low_res.shape[0]
        pix_feat = _raw_top(sam2, image_embed).expand(batch, -1, -1, -1)
        size = (sam2.image_size, sam2.image_size)
        high_res = F.interpolate(low_res, size=size, mode='bilinear', align_corners=False)
        mask = torch.where(binarize, (high_res > 0).float(), torch.sigmoid(high_res))
        mask = mask * sam2.sigmoid_scale_for_mem_enc + sam2.sigmoid_bias_for_mem_enc
        memory = sam2.memory_encoder(pix_feat, mask, skip_mask_sigmoid=True)['vision_features']
        if sam2.no_obj_embed_spatial is not None:
            absent = 1 - (object_score > 0).float()
            memory = memory + absent[..., None, None] * sam2.no_obj_embed_spatial[..., None, None]
        return memory
