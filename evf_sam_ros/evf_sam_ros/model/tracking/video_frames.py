"""Frame inputs of the official EVF-SAM2 video mode: SAM2 pixels (they differ from its image
mode) and the grounding frame's BEiT-3 text features.

sam2's ``load_video_frames`` (called by the official ``inference_video.py``) reads each frame
with PIL, ``.convert("RGB").resize((S, S))`` with Pillow's default filter for RGB images
(bicubic), squashing the frame to the square (no aspect ratio kept, no padding), divides the
uint8 values by 255.0 in float64 (numpy), stores float32 and normalises with ImageNet's mean
and std in float32. The BEiT-3 input of the grounding frame is the image mode's
(``preprocess.beit3_pixels``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from evf_sam_ros.model import preprocess

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, [0, 1] scale
IMAGENET_STD = (0.229, 0.224, 0.225)


def sam2_video_pixels(
    image: np.ndarray, size: int, device: torch.device | str = 'cpu'
) -> torch.Tensor:
    """SAM2 input of one video frame, as the official video predictor loads it.

    image: HxWx3 uint8 RGB (checked by the caller, e.g. ``preprocess.as_rgb_uint8``).
    Returns 1x3xSxS float32 on ``device``. The bicubic resize runs on the CPU (PIL); the
    uint8 result travels to ``device``, where the float64 division and float32 normalisation
    give the same values as the official numpy/torch code.
    """
    from PIL import Image

    resized = np.array(
        Image.fromarray(image).resize((size, size), resample=Image.Resampling.BICUBIC)
    )
    x = torch.from_numpy(resized).to(device).permute(2, 0, 1)
    x = (x.to(torch.float64) / 255.0).to(torch.float32)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=x.device).view(-1, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=x.device).view(-1, 1, 1)
    return ((x - mean) / std).unsqueeze(0)


def text_features(
    predictor: Any, text: Callable, rgb: np.ndarray, token_ids: Sequence[list[int]]
) -> torch.Tensor:
    """BEiT-3 on a grounding frame (HxWx3 uint8 RGB) for each prompt's token ids, with the
    predictor's regime, device and dtype and its backend's ``text`` call (pixels, ids 1xL,
    None) -> 1x1xC (graph_video.video_runner): Bx1xC (the frame's pixels made once).
    """
    device = predictor.device
    pixels = preprocess.beit3_pixels(
        rgb, predictor.cfg.beit3.img_size, predictor.regime.beit3_antialias, device
    )
    pixels = pixels.to(predictor.dtype)
    return torch.cat([text(pixels, torch.tensor([ids], device=device), None) for ids in token_ids])
