"""Small-hole filling of SAM2 mask logits, as sam2's video predictor does with its CUDA op.

The official EVF-SAM2 video predictor is built with ``fill_hole_area=8``: on every frame,
background components (logits <= 0, 8-connectivity) of at most 8 pixels in the low-res
(image_size / 4 square) logits are set to 0.1. sam2 computes the components with a CUDA
extension (``sam2._C``) that the pip package does not build without CUDA, and then skips the
step with a warning. This is the same rule in plain torch, on any device.

Components are found by label propagation with hooking and pointer jumping: every
background pixel starts as its own label (its flat index); each round takes the smallest
label among the 3x3 neighbours, hooks the old label's root onto it, and compresses the label
chains. At the fixed point every pixel holds the smallest flat index of its component.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Official ``fill_hole_area`` of build_sam2_video_predictor (pixels of the low-res logits).
FILL_HOLE_AREA = 8
#: Logit given to filled holes (official value).
HOLE_FILL_LOGIT = 0.1


def _neighbour_min(labels: torch.Tensor, sentinel: int) -> torch.Tensor:
    """Smallest label in each pixel's 3x3 neighbourhood (itself included). Bx1xHxW int64."""
    h, w = labels.shape[-2:]
    padded = F.pad(labels, (1, 1, 1, 1), value=sentinel)
    best = labels
    for dy in range(3):
        for dx in range(3):
            if dy != 1 or dx != 1:
                best = torch.minimum(best, padded[..., dy : dy + h, dx : dx + w])
    return best


def connected_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """8-connected components of the True pixels of a Bx1xHxW bool mask.

    Returns (labels, areas), both Bx1xHxW int64: labels = the smallest flat index (over the
    whole batch) of the pixel's component, areas = the component's pixel count; both are -1
    and 0 on False pixels. Components never join across batch items.
    """
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.dtype != torch.bool:
        raise ValueError(f'expected a Bx1xHxW bool mask, got {tuple(mask.shape)} {mask.dtype}')
    total = mask.numel()
    flat_index = torch.arange(total, device=mask.device).view(mask.shape)
    # labels over total + 1 slots: slot `total` is the sentinel every False pixel points to
    labels = torch.where(mask, flat_index, total)
    parent = torch.cat([labels.flatten(), labels.new_tensor([total])])
    on = mask.flatten()
    while True:
        before = parent
        current = parent[:-1].view(mask.shape)
        low = torch.where(mask, _neighbour_min(current, total), total).flatten()
        # hook each label's root onto the smallest neighbouring label, then the pixel itself
        parent = parent.scatter_reduce(0, parent[:-1][on], low[on], reduce='amin')
        parent[:-1] = torch.minimum(parent[:-1], low)
        while True:  # pointer jumping until every pixel points at a root
            jumped = parent[parent]
            if torch.equal(jumped, parent):
                break
            parent = jumped
        if torch.equal(parent, before):
            break
    roots = parent[:-1]
    counts = torch.bincount(roots[on], minlength=total + 1)
    areas = torch.where(on, counts[roots], 0).view(mask.shape)
    return torch.where(mask, roots.view(mask.shape), -1), areas


def fill_holes(logits: torch.Tensor, max_area: int = FILL_HOLE_AREA) -> torch.Tensor:
    """Set background components (logits <= 0) of at most ``max_area`` pixels to 0.1.

    logits: Bx1xHxW float mask logits (the low-res SAM2 output). Returns a new tensor of the
    same shape and dtype; each batch item is filled on its own.
    """
    if max_area <= 0:
        raise ValueError(f'max_area must be positive, got {max_area}')
    background = logits <= 0
    h, w = logits.shape[-2:]
    if not background.any() or (h * w > max_area and bool(background.all())):
        return logits.clone()  # nothing, or only whole-frame components (no-object frames)
    _, areas = connected_components(background)
    is_hole = background & (areas <= max_area)
    return torch.where(
        is_hole, torch.tensor(HOLE_FILL_LOGIT, dtype=logits.dtype, device=logits.device), logits
    )
