"""Test references for track mode, written independently of the code under test.

- ``reference_fill_holes``: sam2's fill_holes_in_mask_scores semantics with a plain
  breadth-first search (the real op is a CUDA extension that cannot run here).
- ``official_offline``: the official EVF-SAM2 video inference run OFFLINE (every frame
  loaded first from a JPEG folder, then ``propagate_in_video``) with Meta's sam2
  SAM2VideoPredictor on the same modules, and the official ``add_new_text`` /
  ``_run_single_frame_inference(text_inputs=...)`` / patched ``_forward_sam_heads`` of
  hustvl/EVF-SAM re-expressed here line by line (sam2 has no text prompt).
"""

from __future__ import annotations

import copy
from collections import deque
from pathlib import Path

import numpy as np
import torch

NEIGHBOURS_8 = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def reference_components(mask: np.ndarray) -> np.ndarray:
    """Area of the 8-connected component of each True pixel of an HxW bool array (0 elsewhere)."""
    h, w = mask.shape
    area = np.zeros((h, w), dtype=np.int64)
    seen = np.zeros((h, w), dtype=bool)
    for y in range(h):
        for x in range(w):
            if not mask[y, x] or seen[y, x]:
                continue
            queue, members = deque([(y, x)]), []
            seen[y, x] = True
            while queue:
                cy, cx = queue.popleft()
                members.append((cy, cx))
                for dy, dx in NEIGHBOURS_8:
                    ny, nx = cy + dy, cx + dx
                    if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
            for cy, cx in members:
                area[cy, cx] = len(members)
    return area


def reference_fill_holes(mask: torch.Tensor, max_area: int) -> torch.Tensor:
    """sam2.utils.misc.fill_holes_in_mask_scores: background (<= 0) components of at most
    ``max_area`` pixels (8-connectivity) in each Nx1xHxW item become 0.1.
    """
    out = mask.clone()
    for i in range(mask.shape[0]):
        background = (mask[i, 0] <= 0).cpu().numpy()
        area = reference_components(background)
        hole = torch.from_numpy(background & (area <= max_area)).to(mask.device)
        out[i, 0] = torch.where(hole, torch.tensor(0.1, dtype=mask.dtype), mask[i, 0])
    return out


def as_video_predictor(sam2_base: torch.nn.Module) -> torch.nn.Module:
    """The same modules as a sam2 SAM2VideoPredictor, with build_sam2_video_predictor's
    settings as the official code uses them (fill_hole_area=8, binarised memory of
    prompted frames).
    """
    from sam2.sam2_video_predictor import SAM2VideoPredictor

    predictor = copy.copy(sam2_base)  # shares the modules and weights
    predictor.__class__ = SAM2VideoPredictor
    predictor.fill_hole_area = 8
    predictor.non_overlap_masks = False
    predictor.clear_non_cond_mem_around_input = False
    predictor.add_all_frames_to_correct_as_cond = False
    predictor.binarize_mask_from_pts_for_mem_enc = True
    return predictor


def official_text_frame(
    vp: torch.nn.Module, state: dict, frame_idx: int, obj_id: int, text: torch.Tensor
) -> None:
    """Official ``add_new_text``: the text feature is the only sparse prompt of an initial
    conditioning frame; its output goes to the temporary outputs that
    ``propagate_in_video``'s preflight encodes into memory.
    """
    from sam2.modeling.sam2_base import NO_OBJ_SCORE
    from sam2.sam2_video_predictor import fill_holes_in_mask_scores

    obj_idx = vp._obj_id_to_idx(state, obj_id)
    _, _, feats, _, sizes = vp._get_image_feature(state, frame_idx, 1)
    batch, channels = feats[-1].size(1), vp.hidden_dim
    high_res = [
        x.permute(1, 2, 0).view(x.size(1), x.size(2), *s) for x, s in zip(feats[:-1], sizes[:-1])
    ]
    # init conditioning frame with directly_add_no_mem_embed
    pix = (feats[-1] + vp.no_mem_embed).permute(1, 2, 0).view(batch, channels, *sizes[-1])
    # EVF's patched prompt encoder with text only: sparse = [empty float32, text]
    pe = vp.sam_prompt_encoder
    sparse = torch.cat([torch.empty((batch, 0, pe.embed_dim)), text], dim=1)
    dense = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
        batch, -1, *pe.image_embedding_size
    )
    low_multi, ious, tokens, object_score = vp.sam_mask_decoder(
        image_embeddings=pix,
        image_pe=pe.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=True,
        repeat_image=False,
        high_res_features=high_res,
    )
    appearing = object_score > 0
    low_multi = torch.where(appearing[:, None, None], low_multi, NO_OBJ_SCORE).float()
    best, rows = torch.argmax(ious, dim=-1), torch.arange(batch)
    low_res = low_multi[rows, best].unsqueeze(1)
    ptr = vp.obj_ptr_proj(tokens[rows, best])
    ptr = appearing.float() * ptr + (1 - appearing.float()) * vp.no_obj_ptr
    state['temp_output_dict_per_obj'][obj_idx]['cond_frame_outputs'][frame_idx] = {
        'maskmem_features': None,
        'maskmem_pos_enc': None,
        'pred_masks': fill_holes_in_mask_scores(low_res, vp.fill_hole_area),
        'obj_ptr': ptr,
        'object_score_logits': object_score,
    }


def official_offline(
    sam2_base: torch.nn.Module, frames_dir: Path, text: torch.Tensor
) -> list[np.ndarray]:
    """Mask logits (HxW float32) of every frame of a JPEG folder, grounded on frame 0."""
    vp = as_video_predictor(sam2_base)
    with torch.inference_mode():
        state = vp.init_state(str(frames_dir))
        official_text_frame(vp, state, 0, 1, text)
        return [logits[0, 0].float().numpy() for _, _, logits in vp.propagate_in_video(state)]
