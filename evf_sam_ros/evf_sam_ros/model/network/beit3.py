"""BEiT-3 multiway encoder, written compactly with the official (torchscale) state-dict names.

Only what EVF-SAM's inference uses: pre-norm encoder with sub-LN (``inner_attn_ln``,
``ffn_layernorm``), no embedding scale, no relative position bias, exact GELU, final
LayerNorm, and multiway experts: A for the vision tokens, B for the text tokens. Attention
runs through ``scaled_dot_product_attention`` (its softmax accumulates in fp32, as the
official fp32 softmax does); GELU runs in fp32 as in torchscale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evf_sam_ros.model.config import Beit3Config

POSITION_OFFSET = 2  # fairseq: positions start at 2


class Multiway(nn.Module):
    """Two experts with the same shape: A for the vision stream, B for the text stream.

    The streams are kept as separate tensors (vision Bx197xD, text BxLxD) and only meet in
    attention, which equals torchscale's split-at-197 on the concatenated sequence with
    fewer kernel launches (the model is launch-bound on a GPU).
    """

    def __init__(self, make: 'callable[[], nn.Module]'):
        super().__init__()
        self.A = make()
        self.B = make()

    def forward(
        self, vision: torch.Tensor, text: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(A(vision), B(text)): expert A on the vision tokens, expert B on the text tokens."""
        return self.A(vision), self.B(text)


class FeedForward(nn.Module):
    """fc1 -> GELU (fp32) -> ffn_layernorm -> fc2."""

    def __init__(self, dim: int, hidden: int, eps: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.ffn_layernorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """...xD tokens -> ...xD (D = dim, ``hidden`` wide inside); GELU runs in fp32."""
        x = self.fc1(x)
        x = F.gelu(x.float()).type_as(x)
        return self.fc2(self.ffn_layernorm(x))


class SelfAttention(nn.Module):
    """Multi-head self-attention over both streams, multiway projections, sub-LN before
    out_proj.
    """

    def __init__(self, cfg: Beit3Config):
        super().__init__()
        dim = cfg.embed_dim
        self.num_heads = cfg.num_heads
        for name in ('k_proj', 'v_proj', 'q_proj', 'out_proj'):
            setattr(self, name, Multiway(lambda: nn.Linear(dim, dim)))
        self.inner_attn_ln = Multiway(lambda: nn.LayerNorm(dim, eps=cfg.layernorm_eps))

    def _heads(self, proj: Multiway, vision: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        x = torch.cat(proj(vision, text), dim=1)
        return x.view(x.shape[0], x.shape[1], self.num_heads, -1).transpose(1, 2)

    def forward(
        self, vision: torch.Tensor, text: torch.Tensor, attn_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """attn_mask: Bx1x1xN bool, True = a key to attend to (None: every key)."""
        q, k, v = (self._heads(p, vision, text) for p in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        out = out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)
        split = vision.shape[1]
        return self.out_proj(*self.inner_attn_ln(out[:, :split], out[:, split:]))


class EncoderLayer(nn.Module):
    """Pre-norm transformer layer: x + attn(LN(x)); x + ffn(LN(x)), per stream."""

    def __init__(self, cfg: Beit3Config):
        super().__init__()
        dim, eps = cfg.embed_dim, cfg.layernorm_eps
        self.self_attn = SelfAttention(cfg)
        self.self_attn_layer_norm = Multiway(lambda: nn.LayerNorm(dim, eps=eps))
        self.ffn = Multiway(lambda: FeedForward(dim, cfg.ffn_dim, eps))
        self.final_layer_norm = Multiway(lambda: nn.LayerNorm(dim, eps=eps))

    def forward(
        self, vision: torch.Tensor, text: torch.Tensor, attn_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One layer over vision BxNvxD and text BxLxD (shapes kept); attn_mask as in
        SelfAttention.forward.
        """
        av, at = self.self_attn(*self.self_attn_layer_norm(vision, text), attn_mask)
        vision, text = vision + av, text + at
        fv, ft = self.ffn(*self.final_layer_norm(vision, text))
        return vision + fv, text + ft


class Encoder(nn.Module):
    """Positions (A: vision, B: text), layers, final multiway LayerNorm."""

    def __init__(self, cfg: Beit3Config):
        super().__init__()
        dim = cfg.embed_dim
        self.embed_positions = nn.Module()
        self.embed_positions.A = nn.Embedding(cfg.num_patches + 1 + POSITION_OFFSET, dim)
        self.embed_positions.B = nn.Embedding(cfg.max_text_positions, dim)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.depth))
        self.layer_norm = Multiway(lambda: nn.LayerNorm(dim, eps=cfg.layernorm_eps))


class VisionEmbedding(nn.Module):
    """Patch projection with a prepended CLS token (mask_token is stored, unused here)."""

    def __init__(self, cfg: Beit3Config):
        super().__init__()
        dim = cfg.embed_dim
        self.proj = nn.Conv2d(3, dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Bx3xHxW pixels -> Bx(1+N)xD tokens: CLS, then the N patch embeddings."""
        x = self.proj(pixels).flatten(2).transpose(1, 2)
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)


class Beit3(nn.Module):
    """Early-fusion encoder: [CLS, patches] ++ text tokens, one shared stack of layers."""

    def __init__(self, cfg: Beit3Config):
        super().__init__()
        self.cfg = cfg
        self.text_embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.vision_embed = VisionEmbedding(cfg)
        self.encoder = Encoder(cfg)

    def forward(
        self, pixels: torch.Tensor, input_ids: torch.Tensor, text_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Vision CLS output after the final LayerNorm.

        pixels: Bx3x224x224 or 1x3x224x224 (shared by every prompt) float, normalised with
        mean 0.5 std 0.5 (RGB). input_ids: BxL int64 token ids ([0, ..., 2], then padding).
        text_mask: BxL bool, True = a real token, False = padding that no token attends to
        (torchscale's key padding mask); None = no padding. Returns Bx1xD (D = embed_dim) in
        the compute dtype.
        """
        positions = self.encoder.embed_positions
        vision = self.vision_embed(pixels)
        batch, split = input_ids.shape[0], vision.shape[1]
        if vision.shape[0] != batch:
            vision = vision.expand(batch, -1, -1)
        vision = vision + positions.A.weight[POSITION_OFFSET : POSITION_OFFSET + split]
        length = input_ids.shape[1]
        text = (
            self.text_embed(input_ids)
            + positions.B.weight[POSITION_OFFSET : POSITION_OFFSET + length]
        )
        text = text.to(vision.dtype)
        attn_mask = None
        if text_mask is not None:
            keep_vision = text_mask.new_ones((batch, split))
            attn_mask = torch.cat([keep_vision, text_mask], dim=1)[:, None, None, :]
        for layer in self.encoder.layers:
            vision, text = layer(vision, text, attn_mask)
        return self.encoder.layer_norm.A(vision[:, :1])


class MultimodalExtractor(nn.Module):
    """Holder that gives the ``mm_extractor.beit3.*`` key prefix of the checkpoints."""

    def __init__(self, cfg: Beit3Config):
        super().__init__()
        self.beit3 = Beit3(cfg)
