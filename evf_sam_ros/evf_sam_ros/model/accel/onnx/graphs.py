"""The image-mode graphs: BEiT-3 fusion, image encoder, prompt encoder + mask decoder.

Each wraps the very method the torch path calls (EvfSamModel.text_embedding, the runner's
encode_tensors and decode_tensors), so the graphs compute what the predictor computes. Inputs
are named; the prompt batch K and the text length L are dynamic axes.

Graph inputs and outputs (C = prompt dim, 256 released; S = SAM input side, 1024):
- beit3_fusion: pixels 1x3x224x224 f32, input_ids KxL int64, text_mask KxL bool (True =
  real token) -> text_embed Kx1xC f32.
- image_encoder: pixels 1x3xSxS f32 -> image_embed 1xCx(S/16)x(S/16) (SAM2 also high_res_s4
  1x(C/8)x(S/4)x(S/4), high_res_s8 1x(C/4)x(S/8)x(S/8)).
- mask_decoder: text_embed Kx1xC + the image_encoder outputs -> low_res_logits Kx1x(S/4)x(S/4),
  iou Kx1 (SAM2 also object_score Kx1).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.export import Dim

from evf_sam_ros.model.accel.onnx.export import GraphSpec, register_graph
from evf_sam_ros.model.text_batch import MAX_PROMPT_BATCH

ENCODER_OUTPUTS = {'sam': ['image_embed'], 'sam2': ['image_embed', 'high_res_s4', 'high_res_s8']}
EXAMPLE_PROMPTS = 2  # example sizes must not be 0 or 1 (torch.export specialises those)
EXAMPLE_TEXT = 6


def _prompts() -> Dim:
    return Dim('prompts', min=1, max=MAX_PROMPT_BATCH)


class _Fusion(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels, input_ids, text_mask):  # noqa: D102 - see the module docstring
        return (self.model.text_embedding(pixels, input_ids, text_mask),)


class _Encoder(nn.Module):
    def __init__(self, model: nn.Module, runner):
        super().__init__()
        self.model, self.runner = model, runner

    def forward(self, pixels):  # noqa: D102
        return tuple(self.runner.encode_tensors(pixels))


class _SamDecoder(nn.Module):
    def __init__(self, model: nn.Module, runner):
        super().__init__()
        self.model, self.runner = model, runner

    def forward(self, text_embed, image_embed):  # noqa: D102
        low_res, iou, _ = self.runner.decode_tensors(text_embed, image_embed)
        return low_res, iou


class _Sam2Decoder(nn.Module):
    def __init__(self, model: nn.Module, runner):
        super().__init__()
        self.model, self.runner = model, runner

    def forward(self, text_embed, image_embed, high_res_s4, high_res_s8):  # noqa: D102
        return self.runner.decode_tensors(text_embed, image_embed, high_res_s4, high_res_s8)


def _sam_pixels(model: nn.Module) -> torch.Tensor:
    side = model.sam_image_size
    return torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))


@register_graph('beit3_fusion', 'image')
def beit3_fusion(model: nn.Module, regime) -> GraphSpec:
    """BEiT-3 early fusion + projector, text length dynamic up to max_text_tokens."""
    side = model.cfg.beit3.img_size
    text = Dim('text_len', min=3, max=model.cfg.beit3.max_text_tokens)
    prompts = _prompts()
    ids = torch.full((EXAMPLE_PROMPTS, EXAMPLE_TEXT), 5, dtype=torch.long)
    ids[:, 0], ids[:, -1] = 0, 2
    mask = torch.ones(EXAMPLE_PROMPTS, EXAMPLE_TEXT, dtype=torch.bool)
    mask[1, -2:] = False
    return GraphSpec(
        module=_Fusion(model),
        inputs={'pixels': torch.zeros(1, 3, side, side), 'input_ids': ids, 'text_mask': mask},
        outputs=['text_embed'],
        dynamic={'input_ids': {0: prompts, 1: text}, 'text_mask': {0: prompts, 1: text}},
        output_axes={'text_embed': {0: 'prompts'}},
    )


@register_graph('image_encoder', 'image')
def image_encoder(model: nn.Module, regime) -> GraphSpec:
    """SAM ViT or SAM2 Hiera + FPN (SAM2: the projected stride-4/8 features too)."""
    return GraphSpec(
        module=_Encoder(model, model.runner(regime)),
        inputs={'pixels': _sam_pixels(model)},
        outputs=ENCODER_OUTPUTS[model.cfg.sam_type],
    )


@register_graph('mask_decoder', 'image')
def mask_decoder(model: nn.Module, regime) -> GraphSpec:
    """Prompt encoder (text-only prompt) + mask decoder for a batch of K prompts."""
    runner = model.runner(regime)
    with torch.no_grad():
        feats = dict(
            zip(ENCODER_OUTPUTS[model.cfg.sam_type], runner.encode_tensors(_sam_pixels(model)))
        )
    dim = feats['image_embed'].shape[1]
    gen = torch.Generator().manual_seed(1)
    inputs = {'text_embed': torch.randn(EXAMPLE_PROMPTS, 1, dim, generator=gen), **feats}
    prompts = _prompts()
    if model.cfg.sam_type == 'sam':
        module, outputs = _SamDecoder(model, runner), ['low_res_logits', 'iou']
    else:
        module, outputs = _Sam2Decoder(model, runner), ['low_res_logits', 'iou', 'object_score']
    return GraphSpec(
        module=module,
        inputs=inputs,
        outputs=outputs,
        dynamic={'text_embed': {0: prompts}},
        output_axes={name: {0: 'prompts'} for name in outputs},
    )
