"""Build the SAM part from Meta's packages and run it with a text prompt.

``segment-anything`` gives SAM ViT (evf-sam); ``sam2`` gives SAM2 Hiera (evf-sam2). We only
assemble their modules with our sizes and call their forward methods; the EVF-specific
steps (text-only prompt, SAM2 image-mode decoding) are here.

``sam2`` sets global Hydra state when imported, so it is imported only when a SAM2
checkpoint is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from evf_sam_ros.model.config import Regime, Sam2Config, SamVitConfig


@dataclass
class SamFeatures:
    """Image features of one frame: all a decode needs, computed once per frame.

    tensors: SAM ViT (image_embed,), SAM2 (image_embed, high_res_s4, high_res_s8) with the
    stride-4/8 maps already projected by conv_s0/conv_s1; image_embed is 1xCx(S/16)x(S/16)
    in the compute dtype. input_size: (h, w) of the resized, unpadded image in model pixels
    (SAM ViT); original_size: (H, W) of the frame.
    """

    tensors: tuple[torch.Tensor, ...]
    input_size: tuple[int, int]
    original_size: tuple[int, int]


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


def text_prompt_embeddings(
    prompt_encoder: nn.Module, text_embed: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """EVF's text-only prompt: sparse = the Bx1xC text embedding, dense = no_mask_embed
    broadcast to the image-embedding grid (what EVF's patched prompt encoders return).
    """
    h, w = prompt_encoder.image_embedding_size
    dense = prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
        text_embed.shape[0], -1, h, w
    )
    return text_embed, dense


def best_by_iou(masks: torch.Tensor, iou: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the mask with the highest predicted IoU, without a CPU sync.
    masks: KxMxhxw, iou: KxM. Returns (Kx1xhxw, Kx1).
    """
    best = iou.argmax(dim=1, keepdim=True)
    picked = masks.gather(1, best[:, :, None, None].expand(-1, -1, *masks.shape[2:]))
    return picked, iou.gather(1, best)


class SamVitRunner:
    """segment_anything.Sam with a text prompt. The ``*_tensors`` methods take and return
    tensors only (no CPU sync); the decoder can be replayed as a CUDA graph, the encoder not
    (segment-anything's relative positions index with a CPU tensor).
    """

    encoder_graph_safe = False

    def __init__(self, sam: nn.Module, regime: Regime):
        self.sam, self.regime = sam, regime

    def encode_tensors(self, pixels: torch.Tensor) -> tuple[torch.Tensor]:
        """pixels: 1x3xSxS normalised, zero-padded (bottom/right), compute dtype.
        The neck runs in fp32, as in the official code.
        """
        enc = self.sam.image_encoder
        x = enc.patch_embed(pixels)
        if enc.pos_embed is not None:
            x = x + enc.pos_embed
        for block in enc.blocks:
            x = block(x)
        with torch.autocast(x.device.type, enabled=False):
            y = enc.neck(x.permute(0, 3, 1, 2).float())
        return (y.to(pixels.dtype),)

    def decode_tensors(
        self, text_embed: torch.Tensor, image_embed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, None]:
        """One mask (multimask_output=False), as both evf-sam checkpoints decode.
        text_embed: Kx1xC (K prompts on one frame), image_embed: 1xCxhxw.
        Returns (Kx1xhxw low-res logits, Kx1 predicted IoU, no object score).
        """
        pe = self.sam.prompt_encoder
        sparse, dense = text_prompt_embeddings(pe, text_embed)
        low_res, iou = self.sam.mask_decoder(
            image_embeddings=image_embed,
            image_pe=pe.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        return low_res[:, :1], iou[:, :1], None

    def upscale(self, low_res: torch.Tensor, feats: SamFeatures) -> torch.Tensor:
        """Logits at the original size: Kx1xHxW float32 (pad cropped, bilinear)."""
        return self.sam.postprocess_masks(low_res.float(), feats.input_size, feats.original_size)


class Sam2Runner:
    """sam2 SAM2Base in image mode (no memory) with a text prompt; tensor-only methods as above."""

    encoder_graph_safe = True

    def __init__(self, sam2: nn.Module, regime: Regime):
        self.sam2, self.regime = sam2, regime

    def encode_tensors(
        self, pixels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """pixels: 1x3xSxS normalised, compute dtype (already stretched to a square)."""
        model = self.sam2
        fpn = [f.to(pixels.dtype) for f in model.forward_image(pixels)['backbone_fpn'][-3:]]
        # image mode: the no-memory embedding is added to the lowest-resolution level
        image_embed = fpn[-1] + model.no_mem_embed.reshape(1, -1, 1, 1).to(pixels.dtype)
        return image_embed, fpn[0], fpn[1]

    def decode_tensors(
        self,
        text_embed: torch.Tensor,
        image_embed: torch.Tensor,
        high_s4: torch.Tensor,
        high_s8: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """multitask: best of 3 masks by predicted IoU; evf-sam2: one mask with the decoder's
        dynamic multimask fallback. text_embed: Kx1xC (K prompts on one frame), image
        features of one frame (batch 1). Returns (Kx1xhxw logits, Kx1 IoU, Kx1 object-score
        logit).
        """
        pe = self.sam2.sam_prompt_encoder
        sparse, dense = text_prompt_embeddings(pe, text_embed)
        masks, iou, _, object_score = self.sam2.sam_mask_decoder(
            image_embeddings=image_embed,
            image_pe=pe.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=self.regime.sam2_multimask,
            repeat_image=True,
            high_res_features=[high_s4, high_s8],
        )
        if self.regime.sam2_multimask:
            masks, iou = best_by_iou(masks, iou)
        else:
            masks, iou = masks[:, :1], iou[:, :1]
        return masks, iou, object_score[:, :1]

    def upscale(self, low_res: torch.Tensor, feats: SamFeatures) -> torch.Tensor:
        """Logits at the original size: Kx1xHxW float32 (bilinear from 256x256)."""
        return F.interpolate(
            low_res.float(), feats.original_size, mode='bilinear', align_corners=False
        )
