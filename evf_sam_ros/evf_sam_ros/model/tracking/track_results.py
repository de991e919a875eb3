"""What the tracker returns for a frame: SegmentationResults at the frame's size from the
batched low-res logits, and each target's share of the batch's stage times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from evf_sam_ros.model.masks import mask_bbox, mask_centroid
from evf_sam_ros.model.results import SegmentationResult, Stopwatch
from evf_sam_ros.model.tracking.sam2_video import StepOutput
from evf_sam_ros.model.tracking.track_state import TargetStatus


@dataclass(frozen=True)
class TargetResult:
    """One target on one frame: its state and its segmentation."""

    status: TargetStatus
    result: SegmentationResult


def share_times(stages_ms: dict[str, float], batch: int) -> dict[str, float]:
    """One target's share of a batch's stage times (so the targets' times add up)."""
    return {k: v / batch for k, v in stages_ms.items()}


def upscale(low_res: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Bx1xSxS logits -> BxHxW float32 numpy (one bilinear resize, as the official code)."""
    logits = F.interpolate(low_res, size=size, mode='bilinear', align_corners=False)
    return logits[:, 0].float().cpu().numpy()


def segmentation_results(
    targets: Sequence[Any],
    outputs: dict[int, tuple[StepOutput, int, dict[str, float]]],
    size: tuple[int, int],
    frame_ms: dict[str, float],
    device: torch.device,
) -> list[SegmentationResult]:
    """One SegmentationResult per target (anything with a ``prompt``) at the frame's ``size``
    (H, W): ``outputs[id(target)]`` is its (batch output, row in it, its share of the batch's
    times); masks are logits > 0. No state changes.
    """
    upscaled: dict[int, np.ndarray] = {}
    results = []
    for target in targets:
        prompt, (out, row, ms) = target.prompt, outputs[id(target)]
        watch = Stopwatch(device)
        with watch.stage('postprocess'):
            if id(out) not in upscaled:  # one resize per batch
                upscaled[id(out)] = upscale(out.low_res, size)
            logits = upscaled[id(out)][row]
            mask = logits > 0.0
        results.append(
            SegmentationResult(
                prompt=prompt,
                mask=mask,
                logits=logits,
                score=float(out.iou[row]),
                object_score=float(out.object_score[row]),
                bbox=mask_bbox(mask),
                centroid=mask_centroid(mask),
                area=int(np.count_nonzero(mask)),
                timings_ms={**frame_ms, **ms, **watch.ms},
            )
        )
    return results
