"""Build the SAM part from Meta's packages with our sizes (same module trees as their builders).

``segment-anything`` gives SAM ViT (evf-sam); ``sam2`` gives SAM2 Hiera (evf-sam2). ``sam2``
sets global Hydra state when imported, so it is imported only when a SAM2 checkpoint is built.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from evf_sam_ros.model.config import Sam2Config, SamVitConfig


def build_sam_vit(cfg: SamVitConfig) -> nn.Module:
    """segment_anything.Sam with these sizes (same module tree as build_sam_vit_h)."""
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    embed_size = cfg.image_size // cfg.patch_size
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=cfg.depth,
            embed_dim=cfg.embed_dim,
            img_size=cfg.image_size,
            mlp_ratio=4,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            num_heads=cfg.num_heads,
            patch_size=cfg.patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=cfg.global_attn_indexes,
            window_size=cfg.window_size,
            out_chans=cfg.prompt_embed_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=cfg.prompt_embed_dim,
            image_embedding_size=(embed_size, embed_size),
            input_image_size=(cfg.image_size, cfg.image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2,
                embedding_dim=cfg.prompt_embed_dim,
                mlp_dim=cfg.decoder_mlp_dim,
                num_heads=cfg.decoder_heads,
            ),
            transformer_dim=cfg.prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=cfg.iou_head_hidden_dim,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )


def build_sam2_eager_parts(cfg: Sam2Config) -> dict[str, nn.Module]:
    """SAM2 parts whose constructors compute tensor values, so they cannot be built on the
    meta device: the Hiera trunk (drop-path schedule via ``.item()``) and the memory
    attention (RoPE tables) with the memory encoder. Built for real on the CPU (Hiera-L: ~3 s
    on 2 cores); loading then replaces their random weights.
    """
    from sam2.modeling.backbones.hieradet import Hiera
    from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
    from sam2.modeling.memory_encoder import CXBlock, Fuser, MaskDownSampler, MemoryEncoder
    from sam2.modeling.position_encoding import PositionEmbeddingSine
    from sam2.modeling.sam.transformer import RoPEAttention

    with torch.device('cpu'):
        trunk = Hiera(
            embed_dim=cfg.embed_dim,
            num_heads=cfg.num_heads,
            stages=cfg.stages,
            global_att_blocks=cfg.global_att_blocks,
            window_spec=cfg.window_spec,
            window_pos_embed_bkg_spatial_size=cfg.window_pos_embed_bkg_spatial_size,
        )
        d, feat = cfg.d_model, cfg.image_size // 16
        rope = dict(
            rope_theta=10000.0,
            feat_sizes=[feat, feat],
            embedding_dim=d,
            num_heads=1,
            downsample_rate=1,
            dropout=0.1,
        )
        layer = MemoryAttentionLayer(
            activation='relu',
            d_model=d,
            dim_feedforward=cfg.memory_attention_ffn_dim,
            dropout=0.1,
            pos_enc_at_attn=False,
            pos_enc_at_cross_attn_keys=True,
            pos_enc_at_cross_attn_queries=False,
            self_attention=RoPEAttention(**rope),
            cross_attention=RoPEAttention(**rope, rope_k_repeat=True, kv_in_dim=cfg.mem_dim),
        )
        memory_attention = MemoryAttention(
            d_model=d, pos_enc_at_input=True, layer=layer, num_layers=cfg.memory_attention_layers
        )
        memory_encoder = MemoryEncoder(
            out_dim=cfg.mem_dim,
            position_encoding=PositionEmbeddingSine(
                num_pos_feats=cfg.mem_dim, normalize=True, scale=None, temperature=10000
            ),
            mask_downsampler=MaskDownSampler(embed_dim=d, kernel_size=3, stride=2, padding=1),
            fuser=Fuser(
                CXBlock(
                    dim=d, kernel_size=7, padding=3, layer_scale_init_value=1e-6, use_dwconv=True
                ),
                num_layers=cfg.fuser_layers,
            ),
            in_dim=d,
        )
    return dict(trunk=trunk, memory_attention=memory_attention, memory_encoder=memory_encoder)


def build_sam2(cfg: Sam2Config, eager: dict[str, nn.Module]) -> nn.Module:
    """sam2 SAM2Base as configs/sam2/sam2_hiera_*.yaml builds it, with build_sam2's decoder
    post-processing (dynamic multimask via stability, delta 0.05, threshold 0.98).
    """
    from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
    from sam2.modeling.position_encoding import PositionEmbeddingSine
    from sam2.modeling.sam2_base import SAM2Base

    neck = FpnNeck(
        position_encoding=PositionEmbeddingSine(
            num_pos_feats=cfg.d_model, normalize=True, scale=None, temperature=10000
        ),
        d_model=cfg.d_model,
        backbone_channel_list=list(cfg.backbone_channel_list),
        fpn_top_down_levels=[2, 3],
        fpn_interp_model='nearest',
    )
    return SAM2Base(
        image_encoder=ImageEncoder(scalp=1, trunk=eager['trunk'], neck=neck),
        memory_attention=eager['memory_attention'],
        memory_encoder=eager['memory_encoder'],
        num_maskmem=cfg.num_maskmem,
        image_size=cfg.image_size,
        sigmoid_scale_for_mem_enc=20.0,
        sigmoid_bias_for_mem_enc=-10.0,
        use_mask_input_as_output_without_sam=True,
        directly_add_no_mem_embed=True,
        use_high_res_features_in_sam=True,
        multimask_output_in_sam=True,
        iou_prediction_use_sigmoid=True,
        use_obj_ptrs_in_encoder=True,
        add_tpos_enc_to_obj_ptrs=False,
        only_obj_ptrs_in_the_past_for_eval=True,
        pred_obj_scores=True,
        pred_obj_scores_mlp=True,
        fixed_no_obj_ptr=True,
        multimask_output_for_tracking=True,
        use_multimask_token_for_obj_ptr=True,
        multimask_min_pt_num=0,
        multimask_max_pt_num=1,
        use_mlp_for_obj_ptr_proj=True,
        sam_mask_decoder_extra_args=dict(
            dynamic_multimask_via_stability=True,
            dynamic_multimask_stability_delta=0.05,
            dynamic_multimask_stability_thresh=0.98,
        ),
    )
