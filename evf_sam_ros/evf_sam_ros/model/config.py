"""Model settings: frozen dataclasses for each part, the registry of scales and variants.

An EVF-SAM checkpoint's ``config.json`` names its parts by scale
(``sam_scale``: "huge" = SAM ViT-H, "large" = SAM2 Hiera-L; ``mm_extractor_scale``:
"large" = BEiT-3 large). Tiny test checkpoints add explicit size fields
(``beit3_config``, ``sam_config``, and optionally ``sam_type``) that override the
scale names; the released checkpoints do not carry them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from evf_sam_ros.model.errors import VariantError

SamType = Literal['sam', 'sam2']


@dataclass(frozen=True)
class Beit3Config:
    """BEiT-3 multiway encoder (torchscale EncoderConfig fields that matter at inference)."""

    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    ffn_dim: int = 4096
    vocab_size: int = 64010
    img_size: int = 224
    patch_size: int = 16
    max_text_positions: int = 1024  # rows of embed_positions.B; 2 are the fairseq offset
    layernorm_eps: float = 1e-5

    @property
    def num_patches(self) -> int:
        """Patches per image: (img_size // patch_size) ** 2 (196 for 224 px, 16 px patches)."""
        return (self.img_size // self.patch_size) ** 2

    @property
    def max_text_tokens(self) -> int:
        """Longest token sequence (with <s> and </s>) the position table allows."""
        return self.max_text_positions - 2


@dataclass(frozen=True)
class SamVitConfig:
    """SAM ViT image encoder + prompt encoder + mask decoder (segment-anything)."""

    embed_dim: int = 1280
    depth: int = 32
    num_heads: int = 16
    global_attn_indexes: tuple[int, ...] = (7, 15, 23, 31)
    window_size: int = 14
    image_size: int = 1024
    patch_size: int = 16
    prompt_embed_dim: int = 256
    decoder_mlp_dim: int = 2048
    decoder_heads: int = 8
    iou_head_hidden_dim: int = 256


@dataclass(frozen=True)
class Sam2Config:
    """SAM2 (not 2.1) Hiera model, as in the sam2 package's configs/sam2/sam2_hiera_*.yaml."""

    embed_dim: int = 144
    num_heads: int = 2
    stages: tuple[int, ...] = (2, 6, 36, 4)
    global_att_blocks: tuple[int, ...] = (23, 33, 43)
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (7, 7)
    window_spec: tuple[int, ...] = (8, 4, 16, 8)
    d_model: int = 256  # neck width = prompt/decoder width
    image_size: int = 1024
    mem_dim: int = 64
    memory_attention_layers: int = 4
    memory_attention_ffn_dim: int = 2048
    fuser_layers: int = 2
    num_maskmem: int = 7

    @property
    def backbone_channel_list(self) -> tuple[int, ...]:
        """Hiera stage widths, deepest first (the FPN neck's input order)."""
        return tuple(self.embed_dim * 2**i for i in reversed(range(len(self.stages))))


SAM_VIT_SCALES: dict[str, SamVitConfig] = {
    'huge': SamVitConfig(),
    'large': SamVitConfig(embed_dim=1024, depth=24, global_attn_indexes=(5, 11, 17, 23)),
    'base': SamVitConfig(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
}

SAM2_SCALES: dict[str, Sam2Config] = {
    'large': Sam2Config(),
    'base_plus': Sam2Config(
        embed_dim=112,
        stages=(2, 3, 16, 3),
        global_att_blocks=(12, 16, 20),
        window_pos_embed_bkg_spatial_size=(14, 14),
        window_spec=(8, 4, 14, 7),
    ),
    'small': Sam2Config(
        embed_dim=96,
        num_heads=1,
        stages=(1, 2, 11, 2),
        global_att_blocks=(7, 10, 13),
        window_spec=(8, 4, 14, 7),
    ),
    'tiny': Sam2Config(
        embed_dim=96,
        num_heads=1,
        stages=(1, 2, 7, 2),
        global_att_blocks=(5, 7, 9),
        window_spec=(8, 4, 14, 7),
    ),
}

BEIT3_SCALES: dict[str, Beit3Config] = {
    'large': Beit3Config(),
    'base': Beit3Config(embed_dim=768, depth=12, num_heads=12, ffn_dim=3072),
}

# EVF-SAM names SAM2 scales with SAM2's own words; "huge" only exists for SAM ViT.
_SAM2_SCALE_ALIASES = {
    'large': 'large',
    'base_plus': 'base_plus',
    'b+': 'base_plus',
    'small': 'small',
    'tiny': 'tiny',
}


@dataclass(frozen=True)
class Regime:
    """How one released checkpoint family preprocesses and decodes (see the facts note).

    beit3_antialias: antialiased bicubic resize to 224 (evf-sam, evf-sam2) or plain (multitask).
    sam2_resize: "longest_side_stretch" (evf-sam2: ResizeLongestSide then float bilinear
        stretch to a square) or "stretch_uint8" (multitask: uint8 bilinear stretch).
    sam2_multimask: decode 3 masks and keep the best predicted IoU (multitask), else one
        mask with dynamic multimask fallback via stability (evf-sam2).
    """

    name: str
    sam_type: SamType
    multitask: bool
    beit3_antialias: bool
    sam2_resize: Literal['longest_side_stretch', 'stretch_uint8', 'none']
    sam2_multimask: bool


VARIANTS: dict[str, Regime] = {
    'evf-sam': Regime('evf-sam', 'sam', False, True, 'none', False),
    'evf-sam-multitask': Regime('evf-sam-multitask', 'sam', True, False, 'none', False),
    'evf-sam2': Regime('evf-sam2', 'sam2', False, True, 'longest_side_stretch', False),
    'evf-sam2-multitask': Regime('evf-sam2-multitask', 'sam2', True, False, 'stretch_uint8', True),
}


def variant_for(sam_type: SamType, multitask: bool) -> Regime:
    """The released variant with this SAM part and tokenizer kind."""
    name = ('evf-sam2' if sam_type == 'sam2' else 'evf-sam') + ('-multitask' if multitask else '')
    return VARIANTS[name]


def get_variant(name: str) -> Regime:
    """Look a variant up by name; raise VariantError listing the known ones."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise VariantError(f'unknown variant {name!r}; choose one of {sorted(VARIANTS)}') from None


@dataclass(frozen=True)
class EvfConfig:
    """Everything needed to build an EVF-SAM model (not its weights)."""

    sam_type: SamType
    sam: SamVitConfig | Sam2Config
    beit3: Beit3Config
    hidden_size: int = 1024
    out_dim: int = 256
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_json_dict(self) -> dict[str, Any]:
        """config.json content that describes this model, size fields included."""
        scale = _scale_name(self)
        out: dict[str, Any] = {
            'model_type': 'evf',
            'hidden_size': self.hidden_size,
            'out_dim': self.out_dim,
            'sam_scale': scale,
            'mm_extractor_scale': 'large',
            'pad_token_id': 1,
            'bos_token_id': 0,
            'eos_token_id': 2,
            'sam_type': self.sam_type,
        }
        if self.sam != _default_sam(self.sam_type, scale) or self.beit3 != Beit3Config():
            out['sam_config'] = dataclasses.asdict(self.sam)
            out['beit3_config'] = dataclasses.asdict(self.beit3)
        return out


def _default_sam(sam_type: SamType, scale: str) -> SamVitConfig | Sam2Config:
    table = SAM2_SCALES if sam_type == 'sam2' else SAM_VIT_SCALES
    return table.get(scale, SAM2_SCALES['large'] if sam_type == 'sam2' else SAM_VIT_SCALES['huge'])


def _scale_name(cfg: EvfConfig) -> str:
    return 'large' if cfg.sam_type == 'sam2' else 'huge'


def _from_fields(cls: type, fields: Mapping[str, Any], where: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(fields) - known
    if unknown:
        raise VariantError(
            f'config.json {where} has unknown fields {sorted(unknown)}; known: {sorted(known)}'
        )
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    return cls(**values)


def sam_type_from_config(raw: Mapping[str, Any], override: str | None = None) -> SamType:
    """SAM part named by config.json (``sam_type``, else ``sam_scale``), or by ``override``."""
    explicit = override or raw.get('sam_type')
    if explicit is not None:
        if explicit not in ('sam', 'sam2'):
            raise VariantError(f"sam_type must be 'sam' or 'sam2', got {explicit!r}")
        return explicit
    scale = raw.get('sam_scale')
    if scale == 'huge':
        return 'sam'
    if scale in _SAM2_SCALE_ALIASES:
        return 'sam2'
    raise VariantError(
        f"config.json sam_scale={scale!r} names no known SAM part: 'huge' is SAM ViT-H (evf-sam), "
        f'{sorted(_SAM2_SCALE_ALIASES)} are SAM2 Hiera scales (evf-sam2)'
    )


def parse_config(raw: Mapping[str, Any], sam_type_override: str | None = None) -> EvfConfig:
    """Build an EvfConfig from a checkpoint's config.json dictionary."""
    if raw.get('model_type', 'evf') != 'evf':
        raise VariantError(f"config.json model_type is {raw.get('model_type')!r}, expected 'evf'")
    sam_type = sam_type_from_config(raw, sam_type_override)
    scale = raw.get('sam_scale')
    if 'sam_config' in raw:
        cls = Sam2Config if sam_type == 'sam2' else SamVitConfig
        sam = _from_fields(cls, raw['sam_config'], 'sam_config')
    elif sam_type == 'sam2':
        sam = SAM2_SCALES[_SAM2_SCALE_ALIASES.get(scale or 'large', 'large')]
    else:
        sam = SAM_VIT_SCALES[scale if scale in SAM_VIT_SCALES else 'huge']
    if 'beit3_config' in raw:
        beit3 = _from_fields(Beit3Config, raw['beit3_config'], 'beit3_config')
    else:
        mm_scale = raw.get('mm_extractor_scale', 'large')
        if mm_scale not in BEIT3_SCALES:
            raise VariantError(f'mm_extractor_scale={mm_scale!r}; known: {sorted(BEIT3_SCALES)}')
        beit3 = BEIT3_SCALES[mm_scale]
    hidden = int(raw.get('hidden_size', beit3.embed_dim))
    out_dim = int(raw.get('out_dim', 256))
    if hidden != beit3.embed_dim:
        raise VariantError(
            f'config.json hidden_size={hidden} but the BEiT-3 width is {beit3.embed_dim}'
        )
    prompt_dim = sam.d_model if isinstance(sam, Sam2Config) else sam.prompt_embed_dim
    if out_dim != prompt_dim:
        raise VariantError(
            f'config.json out_dim={out_dim} but the SAM prompt width is {prompt_dim}'
        )
    return EvfConfig(sam_type, sam, beit3, hidden, out_dim, dict(raw))
