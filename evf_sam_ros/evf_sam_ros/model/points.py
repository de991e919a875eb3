"""Clicked points as prompts: validation, model-pixel scaling, and EVF's points-plus-text prompt.

A point is (x, y) in pixels of the image it was clicked on: x = column (right), y = row
(down), 0 <= x < width and 0 <= y < height; label 1 = positive (the object), 0 = negative.
The model sees it in its own input pixels, where SAM's prompt encoder adds half a pixel to
reach the pixel's centre (segment-anything / sam2 ``PromptEncoder._embed_points``).

EVF-SAM's patched prompt encoders (hustvl/EVF-SAM ``model/segment_anything*/modeling/``
``prompt_encoder.py``) return the sparse tokens in the order points (with SAM's padding point
when there is no box), boxes, then the projected text feature; ``points_and_text`` builds the
same from Meta's public prompt encoder forward.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from evf_sam_ros.model.errors import ClickError, VariantError
from evf_sam_ros.model.results import ImageEmbedding

POSITIVE, NEGATIVE = 1, 0


def check_points(
    point_coords: object, point_labels: object, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Validated clicks on an image of ``size`` (H, W): (Nx2 float32 (x, y) pixels, N int32
    labels). Raises ClickError (kind click_invalid or click_outside_image) saying which point.
    """
    try:
        coords = np.asarray(point_coords, dtype=np.float32).reshape(-1, 2)
        labels = np.asarray(point_labels).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ClickError(
            'click_invalid', f'points must be N x 2 numbers (x, y) and labels N integers: {exc}'
        ) from exc
    if len(coords) == 0:
        raise ClickError('click_invalid', 'no points given: click at least one point')
    if len(labels) != len(coords):
        raise ClickError(
            'click_invalid', f'{len(coords)} points but {len(labels)} labels: give one label each'
        )
    bad = [v for v in labels.tolist() if v not in (POSITIVE, NEGATIVE)]
    if bad:
        raise ClickError(
            'click_invalid', f'labels must be 1 (positive) or 0 (negative), got {bad[0]!r}'
        )
    if not np.isfinite(coords).all():
        raise ClickError('click_invalid', 'point coordinates must be finite numbers')
    height, width = size
    outside = (coords[:, 0] < 0) | (coords[:, 0] >= width) | (coords[:, 1] < 0)
    outside |= coords[:, 1] >= height
    if outside.any():
        x, y = coords[int(np.argmax(outside))]
        raise ClickError(
            'click_outside_image',
            f'point ({x:g}, {y:g}) is outside the {width}x{height} image '
            '(x = column in [0, width), y = row in [0, height))',
        )
    return coords, labels.astype(np.int32)


def model_points(
    coords: np.ndarray,
    labels: np.ndarray,
    original_size: tuple[int, int],
    input_size: tuple[int, int],
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clicks in the model's input pixels, batch 1: (1xNx2 float32, 1xN int32).

    original_size: (H, W) of the clicked image; input_size: (h, w) of the resized image the
    model sees (SAM ViT: the long side at 1024 before padding; SAM2: the 1024x1024 square).
    """
    scale = np.array(
        [input_size[1] / original_size[1], input_size[0] / original_size[0]], np.float32
    )
    points = torch.from_numpy(coords * scale).to(device)[None]
    return points, torch.from_numpy(labels).to(device)[None]


def points_and_text(
    prompt_encoder: nn.Module, text_embed: torch.Tensor, points: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """EVF's sparse prompt for clicks plus text: the point tokens (with the padding point),
    then the text. text_embed: Kx1xC; points: (1xNx2, 1xN) shared by the K rows.
    Returns Kx(N+2)xC in text_embed's dtype.
    """
    sparse, _ = prompt_encoder(points=points, boxes=None, masks=None)
    sparse = sparse.to(text_embed.dtype).expand(text_embed.shape[0], -1, -1)
    return torch.cat([sparse, text_embed], dim=1)


def clicks_and_text(
    model: nn.Module,
    regime: Any,
    text: torch.Tensor,
    embedding: ImageEmbedding,
    points: tuple[np.ndarray, np.ndarray],
) -> tuple[torch.Tensor, Callable[..., tuple]]:
    """Segment mode with clicks on the encoded frame: (EVF's sparse prompt, points then text;
    the EvfSamModel's eager decoder for it: CUDA graphs and exported graphs have a fixed
    one-token prompt). text: Kx1xC; points: validated (check_points) in frame pixels.
    """
    if model is None:
        raise VariantError('clicks in segment mode need the torch backend (the eager decoder)')
    feats = embedding.features
    clicks = model_points(*points, feats.original_size, feats.input_size, text.device)
    sam = model.visual_model
    encoder = sam.sam_prompt_encoder if model.cfg.sam_type == 'sam2' else sam.prompt_encoder
    return points_and_text(encoder, text, clicks), model.runner(regime).decode_tensors


def refuse_on_graphs(predictor: Any) -> None:
    """ClickError (click_backend) when ``predictor`` runs exported graphs: their prompt
    encoder takes the text only (no point inputs), so clicks need the torch backend.
    """
    if predictor.model is None:
        raise ClickError(
            'click_backend',
            f'correction clicks need the torch backend; this model runs on {predictor.backend} '
            'graphs, which take no points',
        )
