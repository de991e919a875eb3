"""From a segmentation result to a decision and a 3D target (pure numpy; node and replay share it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .geometry import CameraIntrinsics, DepthStats, target_point
from .model.predictor import SegmentationResult


@dataclass(frozen=True)
class TargetSettings:
    """How a result becomes "found" and how its 3D point is estimated.

    score_threshold: least predicted IoU of a found target. object_score_threshold: least
    SAM2 object-score logit (ignored for SAM ViT, and when None). erode_iterations: 3x3
    erosions of the mask before reading depth (drops edge pixels that see the background).
    min_depth_m / max_depth_m: valid depth range in metres. min_valid_fraction: least
    fraction of (eroded) mask pixels with valid depth for a 3D point.
    """

    score_threshold: float = 0.5
    object_score_threshold: Optional[float] = None
    erode_iterations: int = 2
    min_depth_m: float = 0.1
    max_depth_m: float = 20.0
    min_valid_fraction: float = 0.05


@dataclass(frozen=True)
class TargetEstimate:
    """found: the model saw the target. point: (x, y, z) metres in the image's optical frame
    (x right, y down, z forward), None without valid depth. depth: the statistics used."""

    found: bool
    point: Optional[tuple[float, float, float]]
    depth: Optional[DepthStats]

    @property
    def depth_median(self) -> float:
        return self.depth.median_m if self.depth else math.nan

    @property
    def depth_valid_fraction(self) -> float:
        return self.depth.valid_fraction if self.depth else 0.0


def is_found(result: SegmentationResult, settings: TargetSettings) -> bool:
    """Non-empty mask, score over the threshold and (SAM2, if asked) object score too."""
    if result.area == 0 or not result.score >= settings.score_threshold:
        return False
    thr = settings.object_score_threshold
    return thr is None or result.object_score is None or result.object_score >= thr


def estimate_target(result: SegmentationResult, settings: TargetSettings,
                    depth_m: Optional[np.ndarray] = None,
                    intrinsics: Optional[CameraIntrinsics] = None) -> TargetEstimate:
    """Decide found and, with depth (HxW float32 metres, aligned to the image) and the
    image's intrinsics, deproject the mask's robust depth. Raises ValueError when depth
    or intrinsics do not match the mask's size."""
    found = is_found(result, settings)
    if not found or depth_m is None or intrinsics is None:
        return TargetEstimate(found, None, None)
    point, stats = target_point(result.mask, depth_m, intrinsics, settings.erode_iterations,
                                settings.min_depth_m, settings.max_depth_m, settings.min_valid_fraction)
    return TargetEstimate(found, point, stats)
