"""What the predictor returns: per-prompt results, an encoded frame, and the stage timer."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from evf_sam_ros.model.masks import mask_bbox, mask_centroid
from evf_sam_ros.model.network.sam_parts import SamFeatures


@dataclass(frozen=True)
class SegmentationResult:
    """One prompt's answer on one image.

    mask: HxW bool (True = target) at the image's size. logits: HxW float32 mask logits
    (mask = logits > 0). score: predicted IoU of the chosen mask. object_score: SAM2's
    object-score logit (> 0: object present), None for SAM ViT. bbox: (x0, y0, x1, y1)
    pixels with x1, y1 exclusive, None when empty. centroid: (u, v) float pixels (column,
    row), None when empty. area: mask pixels. timings_ms: per stage (preprocess and
    image_encoder are the frame's, shared by every prompt of a predict_many call).
    """

    prompt: str
    mask: np.ndarray
    logits: np.ndarray
    score: float
    object_score: float | None
    bbox: tuple[int, int, int, int] | None
    centroid: tuple[float, float] | None
    area: int
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class ImageEmbedding:
    """A frame encoded once: SAM features and the BEiT-3 pixels, on the model's device."""

    features: SamFeatures
    beit3_pixels: torch.Tensor
    timings_ms: dict[str, float]


class Stopwatch:
    """Stage timer; synchronises CUDA at each mark so a stage's time is its own."""

    def __init__(self, device: torch.device):
        self.device, self.ms = device, {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name`` (milliseconds in ``self.ms``)."""
        start = time.perf_counter()
        yield
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        self.ms[name] = (time.perf_counter() - start) * 1000.0


def from_logits(
    prompt: str,
    logits: np.ndarray,
    score: float,
    object_score: float | None,
    timings: dict[str, float],
) -> SegmentationResult:
    """SegmentationResult of one prompt from its HxW float32 logits (mask = logits > 0)."""
    mask = logits > 0.0
    return SegmentationResult(
        prompt=prompt,
        mask=mask,
        logits=logits,
        score=score,
        object_score=object_score,
        bbox=mask_bbox(mask),
        centroid=mask_centroid(mask),
        area=int(np.count_nonzero(mask)),
        timings_ms=dict(timings),
    )
