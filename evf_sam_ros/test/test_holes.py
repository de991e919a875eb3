"""Hole filling of SAM2 low-res logits (model/holes.py) against a breadth-first-search reference.

sam2 fills holes with a CUDA extension that cannot run here; the reference is the rule that
extension implements (8-connected background components of <= max_area pixels -> 0.1).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tracking_reference import reference_components, reference_fill_holes

from evf_sam_ros.model.tracking.holes import FILL_HOLE_AREA, connected_components, fill_holes


def logits_from(foreground: np.ndarray) -> torch.Tensor:
    """1x1xHxW logits: +5 on True pixels, a spread of values <= 0 elsewhere."""
    h, w = foreground.shape
    background = -np.linspace(0.0, 3.0, h * w, dtype=np.float32).reshape(h, w)
    return torch.from_numpy(np.where(foreground, 5.0, background).astype(np.float32))[None, None]


def crafted() -> np.ndarray:
    """A 40x40 foreground block with holes of known sizes and shapes (True = foreground)."""
    fg = np.zeros((40, 40), dtype=bool)
    fg[2:38, 2:38] = True
    fg[5, 5] = False  # 1 px
    fg[5, 10:18] = False  # 8 px line: filled
    fg[10, 10:19] = False  # 9 px line: kept
    fg[15:17, 5:9] = False  # 2x4 = 8 px block: filled
    fg[20:23, 5:8] = False  # 3x3 = 9 px: kept
    fg[26:28, 26:28] = False  # two 2x2 (4 px) holes touching at a corner:
    fg[28:30, 28:30] = False  # one 8-connected component of 8 px: filled
    fg[30:32, 10:12] = False  # 4 px and 5 px touching diagonally: 9 px, kept
    fg[32, 12:15] = False
    fg[32, 15] = False
    fg[33, 15] = False  # ... (4 + 5 = 9)
    fg[0:2, 20:23] = True  # a 3 px notch from the border into the background:
    fg[0, 21] = False  # touches the frame's edge, still a 1 px component
    fg[35, 30:33] = False  # 3 px line: filled
    return fg


def test_crafted_holes_match_the_reference_and_expected_sizes():
    fg = crafted()
    logits = logits_from(fg)
    filled = fill_holes(logits, FILL_HOLE_AREA)
    expected = reference_fill_holes(logits, FILL_HOLE_AREA)
    assert torch.equal(filled, expected)
    changed = (filled != logits)[0, 0].numpy()
    assert changed[5, 5] and changed[5, 10:18].all() and changed[15:17, 5:9].all()
    assert changed[26:28, 26:28].all() and changed[28:30, 28:30].all()
    assert not changed[10, 10:19].any() and not changed[20:23, 5:8].any()
    assert not changed[30:34, 10:16].any()
    assert changed[0, 21] and changed[35, 30:33].all()  # a border-touching 1 px component too
    assert np.all(filled[0, 0].numpy()[changed] == np.float32(0.1))
    assert not changed[fg].any() and filled.dtype == logits.dtype


@pytest.mark.parametrize('density', [0.2, 0.5, 0.8])
def test_random_masks_match_the_reference(density):
    rng = np.random.default_rng(int(density * 10))
    masks = rng.random((3, 1, 48, 40)) < density
    logits = torch.from_numpy(np.where(masks, 1.0, -1.0).astype(np.float32))
    for max_area in (1, 8, 30):
        assert torch.equal(fill_holes(logits, max_area), reference_fill_holes(logits, max_area))
    labels, areas = connected_components(~torch.from_numpy(masks))
    for i in range(3):
        assert np.array_equal(areas[i, 0].numpy(), reference_components(~masks[i, 0]))
    flat = torch.arange(labels.numel()).view(labels.shape)
    for label in labels[labels >= 0].unique():
        members = labels == label
        assert int(label) == int(flat[members].min())  # the component's smallest flat index
        assert bool((areas[members] == int(members.sum())).all())


def test_components_do_not_join_across_the_batch_or_rows():
    mask = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    mask[0, 0, 3, :] = True  # bottom row of item 0
    mask[1, 0, 0, :] = True  # top row of item 1 (adjacent in flat memory)
    mask[0, 0, 0, 3] = True  # end of row 0 of item 0 ...
    mask[0, 0, 1, 0] = True  # ... and start of row 1 (adjacent in memory, not in the image)
    labels, areas = connected_components(mask)
    assert areas[0, 0, 3].tolist() == [4] * 4 and areas[1, 0, 0].tolist() == [4] * 4
    assert areas[0, 0, 0, 3] == 1 and areas[0, 0, 1, 0] == 1
    assert labels[0, 0, 3, 0] != labels[1, 0, 0, 0]


def test_frames_without_holes_are_returned_unchanged():
    no_object = torch.full((2, 1, 64, 64), -1024.0)  # SAM2's "no object" frames
    assert torch.equal(fill_holes(no_object), no_object)
    everywhere = torch.ones(1, 1, 16, 16)
    assert torch.equal(fill_holes(everywhere), everywhere)
    tiny = torch.full((1, 1, 2, 2), -1.0)  # a whole frame smaller than max_area is a hole
    assert torch.equal(fill_holes(tiny), torch.full((1, 1, 2, 2), 0.1))
    with pytest.raises(ValueError, match='max_area'):
        fill_holes(tiny, 0)
    with pytest.raises(ValueError, match='Bx1xHxW bool'):
        connected_components(torch.ones(4, 4, dtype=torch.bool))
