"""Build the SAM part from Meta's packages and run it with a text prompt.

``segment-anything`` gives SAM ViT (evf-sam); ``sam2`` gives SAM2 Hiera (evf-sam2). The
modules are assembled in sam_build.py; the EVF-specific steps (text-only prompt, SAM2
image-mode decoding, upscaling the logits) are here.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def upscale_logits(
    low_res: torch.Tensor, feats: SamFeatures, sam: SamVitConfig | Sam2Config
) -> torch.Tensor:
    """Low-res logits Kx1xhxw -> Kx1xHxW float32 at the frame's size. SAM ViT: bilinear to
    the padded SxS input, crop the padding, bilinear to (H, W) (Sam.postprocess_masks);
    SAM2: one bilinear resize (the input was stretched, not padded).
    """
    x = low_res.float()
    if isinstance(sam, SamVitConfig):
        side = sam.image_size
        x = F.interpolate(x, (side, side), mode='bilinear', align_corners=False)
        x = x[..., : feats.input_size[0], : feats.input_size[1]]
    return F.interpolate(x, feats.original_size, mode='bilinear', align_corners=False)


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
