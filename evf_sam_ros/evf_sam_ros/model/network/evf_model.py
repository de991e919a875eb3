"""The EVF-SAM module tree: ``visual_model`` (SAM or SAM2), ``mm_extractor.beit3``,
``text_hidden_fcs``.

Attribute names follow the official checkpoints, so ``state_dict()`` keys match them.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from evf_sam_ros.model.config import EvfConfig, Regime, Sam2Config, SamVitConfig
from evf_sam_ros.model.network.beit3 import MultimodalExtractor
from evf_sam_ros.model.network.sam_build import build_sam2, build_sam2_eager_parts, build_sam_vit
from evf_sam_ros.model.network.sam_parts import Sam2Runner, SamVitRunner


class EvfSamModel(nn.Module):
    """EVF-SAM: BEiT-3 fuses image and text into one prompt token for SAM's mask decoder."""

    def __init__(self, cfg: EvfConfig, device: torch.device | str | None = None):
        """Build the modules; device="meta" allocates no memory (weights come from loading).

        A few SAM2 parts compute tensors at init; they are always built for real on the CPU
        (see build_sam2_eager_parts) and only the rest goes to ``device``.
        """
        super().__init__()
        self.cfg = cfg
        eager = build_sam2_eager_parts(cfg.sam) if isinstance(cfg.sam, Sam2Config) else None
        with torch.device(device) if device is not None else contextlib.nullcontext():
            if isinstance(cfg.sam, SamVitConfig):
                self.visual_model = build_sam_vit(cfg.sam)
            else:
                self.visual_model = build_sam2(cfg.sam, eager)
            self.mm_extractor = MultimodalExtractor(cfg.beit3)
            self.text_hidden_fcs = nn.ModuleList(
                [
                    nn.Sequential(
                        nn.Linear(cfg.hidden_size, cfg.hidden_size),
                        nn.ReLU(),
                        nn.Linear(cfg.hidden_size, cfg.out_dim),
                    )
                ]
            )

    @property
    def sam_image_size(self) -> int:
        """Side in pixels of the square SAM input (1024 for the released models)."""
        return self.cfg.sam.image_size

    def runner(self, regime: Regime) -> SamVitRunner | Sam2Runner:
        """Encode/decode helper for the SAM part, decoding as ``regime`` says."""
        if isinstance(self.cfg.sam, SamVitConfig):
            return SamVitRunner(self.visual_model, regime)
        return Sam2Runner(self.visual_model, regime)

    def text_embedding(
        self, pixels: torch.Tensor, input_ids: torch.Tensor, text_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Prompt tokens for SAM: BEiT-3 CLS output through the projector.

        pixels: 1x3x224x224 (BEiT-3 normalisation; shared by all K prompts) or Kx3x224x224,
        input_ids: KxL int64, text_mask: KxL bool (True = real token) when padded, else None.
        Returns Kx1x``out_dim`` in the compute dtype.
        """
        cls = self.mm_extractor.beit3(pixels, input_ids, text_mask)
        return self.text_hidden_fcs[0](cls)

    def keep_fp32_islands(self) -> None:
        """After a cast to half precision: SAM ViT's neck stays fp32, as in the official code."""
        if isinstance(self.cfg.sam, SamVitConfig):
            self.visual_model.image_encoder.neck.float()
