"""Tiny real-format checkpoints: the released layout and key names, tiny sizes, random weights.

For tests and offline demos only: the masks they produce mean nothing. They go through
exactly the loading code the released checkpoints go through (config.json with explicit
size fields, pytorch_model.bin or model.safetensors with the official key names and
dtypes, a sentencepiece tokenizer trained on the spot).
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import torch

from evf_sam_ros.model.config import Beit3Config, EvfConfig, Sam2Config, SamVitConfig, get_variant
from evf_sam_ros.model.network.evf_model import EvfSamModel
from evf_sam_ros.model.tokenizer import SEMANTIC_TOKEN, SP_MODEL_FILE

TINY_BEIT3 = Beit3Config(embed_dim=32, depth=2, num_heads=2, ffn_dim=64, vocab_size=0)
TINY_SAM_VIT = SamVitConfig(
    embed_dim=32,
    depth=2,
    num_heads=2,
    global_attn_indexes=(1,),
    prompt_embed_dim=32,
    decoder_mlp_dim=64,
    decoder_heads=2,
    iou_head_hidden_dim=32,
)
TINY_SAM2 = Sam2Config(
    embed_dim=8,
    num_heads=1,
    stages=(1, 1, 2, 1),
    global_att_blocks=(3,),
    window_spec=(8, 4, 4, 2),
    d_model=32,
    mem_dim=16,
    memory_attention_layers=1,
    memory_attention_ffn_dim=64,
    fuser_layers=1,
)

_CORPUS_WORDS = (
    'the a an red green blue yellow white black orange purple brown grey pink mug cup plate '
    'bottle bowl box ball can apple banana book chair table door person hand robot tool '
    'left right top bottom middle front behind next to of on in under over near far small '
    'large big tall short round square striped wooden metal glass plastic empty full zebra '
    'semantic part object background'
).split()


def train_tokenizer(vocab_size: int = 200, seed: int = 0) -> bytes:
    """A small BPE sentencepiece model (XLM-R ids: unk 0, <s> 1, </s> 2), as bytes."""
    import random

    import sentencepiece as spm

    rng = random.Random(seed)
    sentences = [
        ' '.join(rng.choice(_CORPUS_WORDS) for _ in range(rng.randint(2, 8))) for _ in range(2000)
    ]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        model_type='bpe',
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    return model.getvalue()


def _write_tokenizer(out: Path, multitask: bool) -> int:
    """Write tokenizer files; return the number of ids the text embedding needs."""
    import sentencepiece as spm

    blob = train_tokenizer()
    (out / SP_MODEL_FILE).write_bytes(blob)
    pieces = len(spm.SentencePieceProcessor(model_proto=blob))
    specials = {
        'bos_token': '<s>',
        'eos_token': '</s>',
        'unk_token': '<unk>',
        'sep_token': '</s>',
        'pad_token': '<pad>',
        'cls_token': '<s>',
        'mask_token': '<mask>',
    }
    (out / 'special_tokens_map.json').write_text(json.dumps(specials, indent=2))
    config = {'tokenizer_class': 'XLMRobertaTokenizer', 'model_max_length': 512, **specials}
    (out / 'tokenizer_config.json').write_text(json.dumps(config, indent=2))
    if multitask:  # as released: [semantic] right after <mask> (64000 pieces -> id 64002)
        (out / 'added_tokens.json').write_text(json.dumps({SEMANTIC_TOKEN: pieces + 2}))
    return pieces + 10  # the released embedding has 10 spare rows too (64000 -> 64010)


def tiny_config(sam_type: str, vocab_size: int, image_size: int = 1024) -> EvfConfig:
    """EvfConfig of a tiny model of one SAM type."""
    beit3 = dataclasses.replace(TINY_BEIT3, vocab_size=vocab_size)
    sam = TINY_SAM2 if sam_type == 'sam2' else TINY_SAM_VIT
    sam = dataclasses.replace(sam, image_size=image_size)
    out_dim = sam.d_model if isinstance(sam, Sam2Config) else sam.prompt_embed_dim
    return EvfConfig(sam_type, sam, beit3, hidden_size=beit3.embed_dim, out_dim=out_dim)  # type: ignore[arg-type]


def _official_dtypes(state: dict[str, torch.Tensor], sam_type: str) -> dict[str, torch.Tensor]:
    """evf-sam: all fp16; evf-sam2: visual_model fp16, BEiT-3 and projector fp32."""
    if sam_type == 'sam':
        return {k: v.half() for k, v in state.items()}
    return {
        k: (v.half() if k.startswith('visual_model.') else v.float()) for k, v in state.items()
    }


def write_tiny_checkpoint(
    out_dir: str | Path,
    variant: str = 'evf-sam2',
    seed: int = 0,
    image_size: int = 1024,
    fuser_scale_name: str = 'weight',
) -> Path:
    """Write a tiny checkpoint directory of ``variant``; return its path.

    fuser_scale_name: how SAM2's memory_encoder fuser scale is stored ("weight" as in
    EVF's released file, or sam2's own "gamma").
    """
    regime = get_variant(variant)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = _write_tokenizer(out, regime.multitask)
    cfg = tiny_config(regime.sam_type, vocab, image_size)
    torch.manual_seed(seed)
    return write_weights(
        out, cfg, EvfSamModel(cfg).state_dict(), regime.sam_type, fuser_scale_name
    )


def write_random_checkpoint(
    out_dir: str | Path, variant: str, state: dict[str, torch.Tensor], cfg: EvfConfig | None = None
) -> Path:
    """Write a checkpoint directory holding ``state`` (e.g. random weights of a full-size
    model, for load-time benchmarks): the official file format and dtypes, a small trained
    tokenizer, config.json of ``cfg`` (default: the released sizes, no size fields).
    """
    from evf_sam_ros.model.config import parse_config

    regime = get_variant(variant)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_tokenizer(out, regime.multitask)
    if cfg is None:
        scale = 'large' if regime.sam_type == 'sam2' else 'huge'
        cfg = parse_config(
            {
                'model_type': 'evf',
                'hidden_size': 1024,
                'out_dim': 256,
                'sam_scale': scale,
                'mm_extractor_scale': 'large',
            }
        )
    return write_weights(out, cfg, state, regime.sam_type, 'weight')


def write_weights(
    out: Path, cfg: EvfConfig, state: dict[str, torch.Tensor], sam_type: str, fuser_scale_name: str
) -> Path:
    """config.json and the weight file (official names and dtypes) of ``state`` into ``out``."""
    state = _official_dtypes({k: v.detach().cpu() for k, v in state.items()}, sam_type)
    if fuser_scale_name == 'weight':
        state = {
            k.replace('.gamma', '.weight') if '.fuser.layers.' in k else k: v
            for k, v in state.items()
        }
    config = cfg.to_json_dict()
    config.update(
        architectures=['EvfSam2Model' if sam_type == 'sam2' else 'EvfSamModel'],
        torch_dtype='float16',
        mm_extractor_scale='large',
        tiny_random_weights='for tests only: random weights, masks mean nothing',
    )
    (out / 'config.json').write_text(json.dumps(config, indent=2))
    state = {k: v.contiguous() for k, v in state.items()}
    if sam_type == 'sam2':
        from safetensors.torch import save_file

        save_file(state, str(out / 'model.safetensors'), metadata={'format': 'pt'})
    else:
        torch.save(state, out / 'pytorch_model.bin')
    return out
