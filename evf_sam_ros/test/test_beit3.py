"""Our two-stream BEiT-3 against a literal transcription of torchscale's forward (one
concatenated sequence, multiway split at 197, scaled q, bmm, fp32 softmax), same weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from evf_sam_ros.model.config import Beit3Config
from evf_sam_ros.model.network.beit3 import Beit3


def _multiway(module, x, split):
    return torch.cat([module.A(x[:, :split]), module.B(x[:, split:])], dim=1)


def _torchscale_layer(layer, x, split, heads):
    b, n, d = x.shape
    residual = x
    x = _multiway(layer.self_attn_layer_norm, x, split)
    att = layer.self_attn
    q = _multiway(att.q_proj, x, split) * (d // heads) ** -0.5
    k = _multiway(att.k_proj, x, split)
    v = _multiway(att.v_proj, x, split)
    q, k, v = (
        t.view(b, n, heads, -1).transpose(1, 2).reshape(b * heads, n, -1) for t in (q, k, v)
    )
    weights = F.softmax(torch.bmm(q, k.transpose(1, 2)), dim=-1, dtype=torch.float32).type_as(q)
    out = torch.bmm(weights, v).view(b, heads, n, -1).transpose(1, 2).reshape(b, n, d)
    out = _multiway(att.out_proj, _multiway(att.inner_attn_ln, out, split), split)
    x = residual + out
    residual = x
    h = _multiway(layer.final_layer_norm, x, split)
    ffn = [layer.ffn.A, layer.ffn.B]
    parts = []
    for expert, part in zip(ffn, (h[:, :split], h[:, split:])):
        y = expert.fc1(part)
        y = F.gelu(y.float()).type_as(y)
        parts.append(expert.fc2(expert.ffn_layernorm(y)))
    return residual + torch.cat(parts, dim=1)


def _torchscale_forward(model: Beit3, pixels, ids):
    cfg = model.cfg
    vision = model.vision_embed(pixels)
    text = model.text_embed(ids)
    x = torch.cat([vision, text], dim=1)
    split = vision.shape[1]
    pos_a = model.encoder.embed_positions.A(torch.arange(2, split + 2)[None])
    pos_b = model.encoder.embed_positions.B(torch.arange(2, ids.shape[1] + 2)[None])
    x = x + torch.cat([pos_a, pos_b], dim=1)
    for layer in model.encoder.layers:
        x = _torchscale_layer(layer, x, split, cfg.num_heads)
    return _multiway(model.encoder.layer_norm, x, split)[:, :1]


def test_two_stream_beit3_equals_torchscale_formulation():
    torch.manual_seed(0)
    cfg = Beit3Config(embed_dim=64, depth=3, num_heads=4, ffn_dim=128, vocab_size=500)
    model = Beit3(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():  # non-trivial LayerNorm scales and embeddings too
            p.normal_(0.0, 0.2)
        pixels = torch.randn(1, 3, 224, 224)
        ids = torch.tensor([[0, 17, 256, 3, 99, 2]])
        ours = model(pixels, ids)
        reference = _torchscale_forward(model, pixels, ids)
    assert ours.shape == (1, 1, 64)
    torch.testing.assert_close(ours, reference, atol=2e-5, rtol=1e-4)


def test_text_changes_the_vision_cls_output():
    torch.manual_seed(1)
    model = Beit3(
        Beit3Config(embed_dim=32, depth=2, num_heads=2, ffn_dim=64, vocab_size=100)
    ).eval()
    pixels = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        a = model(pixels, torch.tensor([[0, 5, 6, 2]]))
        b = model(pixels, torch.tensor([[0, 7, 2]]))
    assert not torch.allclose(a, b)  # early fusion: the CLS token attends to the text
