"""Every private name of sam2 that track mode calls, in one place, checked against sam2.

sam2 has no public API to run ``SAM2Base`` one frame at a time with a memory the caller
holds; its own ``SAM2VideoPredictor`` (and EVF-SAM2's copy of it) drives these private
methods of ``SAM2Base``, and so does ``sam2_video.Sam2VideoRunner``, only through this
module. They were written against sam2 ``WRITTEN_FOR`` (setup.py pins the range
``SAM2_RANGE``); ``check`` refuses a model whose methods differ, with what changed, before
any frame is run, and the tests compare ``SIGNATURES`` with the installed sam2.
"""

from __future__ import annotations

import inspect
from typing import Any

#: The sam2 release these calls were written and tested against, and the range setup.py pins.
WRITTEN_FOR = '1.1.0'
SAM2_RANGE = '>=1.1,<1.2'

#: The private SAM2Base methods used here and their parameters (self first) in WRITTEN_FOR.
SIGNATURES: dict[str, tuple[str, ...]] = {
    '_prepare_backbone_features': ('self', 'backbone_out'),
    '_track_step': (
        'self',
        'frame_idx',
        'is_init_cond_frame',
        'current_vision_feats',
        'current_vision_pos_embeds',
        'feat_sizes',
        'point_inputs',
        'mask_inputs',
        'output_dict',
        'num_frames',
        'track_in_reverse',
        'prev_sam_mask_logits',
    ),
    '_encode_new_memory': (
        'self',
        'current_vision_feats',
        'feat_sizes',
        'pred_masks_high_res',
        'object_score_logits',
        'is_mask_from_pts',
    ),
    '_encode_memory_in_output': (
        'self',
        'current_vision_feats',
        'feat_sizes',
        'point_inputs',
        'run_mem_encoder',
        'high_res_masks',
        'object_score_logits',
        'current_out',
    ),
}


def mismatches(sam2_class: type) -> list[str]:
    """How ``sam2_class`` (SAM2Base or a subclass) differs from SIGNATURES: one line per
    missing method or changed parameter list (empty when it matches).
    """
    problems = []
    for name, expected in SIGNATURES.items():
        method = getattr(sam2_class, name, None)
        if method is None:
            problems.append(f'SAM2Base.{name} is missing')
            continue
        found = tuple(inspect.signature(method).parameters)
        if found != expected:
            problems.append(f'SAM2Base.{name}{found} != {expected}')
    return problems


def check(sam2: Any) -> None:
    """Raise RuntimeError naming what changed when ``sam2`` (a SAM2Base) does not have the
    private methods this module calls, as in sam2 WRITTEN_FOR.
    """
    problems = mismatches(type(sam2))
    if problems:
        raise RuntimeError(
            f'track mode was written for sam2 {WRITTEN_FOR} and the installed sam2 differs: '
            f'{"; ".join(problems)}. Install a sam2 in {SAM2_RANGE}: '
            f'pip install --no-build-isolation "sam2{SAM2_RANGE}"'
        )


def prepare_backbone_features(sam2: Any, backbone_out: dict) -> tuple:
    """``SAM2Base._prepare_backbone_features``: (backbone_out, vision_feats, vision_pos_embeds,
    feat_sizes) of ``forward_image``'s output; features flattened to (h*w) x B x C per level.
    """
    return sam2._prepare_backbone_features(backbone_out)


def track_step(sam2: Any, **kwargs: Any) -> tuple:
    """``SAM2Base._track_step`` (keyword arguments as in SIGNATURES): (current_out, sam_outputs,
    high_res_features, pix_feat).
    """
    return sam2._track_step(**kwargs)


def encode_new_memory(sam2: Any, **kwargs: Any) -> tuple:
    """``SAM2Base._encode_new_memory``: (maskmem_features, maskmem_pos_enc) of a frame."""
    return sam2._encode_new_memory(**kwargs)


def encode_memory_in_output(sam2: Any, *args: Any) -> None:
    """``SAM2Base._encode_memory_in_output``: stores ``maskmem_features`` and
    ``maskmem_pos_enc`` in ``current_out`` (the last argument).
    """
    sam2._encode_memory_in_output(*args)
