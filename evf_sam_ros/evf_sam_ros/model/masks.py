"""2D mask geometry shared by the model, the 3D target code and drawing (numpy only).

Conventions:
    * Masks are HxW arrays; bool, or any dtype where non-zero means "target".
    * Pixel coordinates are (u, v) = (column, row) with pixel centres at integer
      coordinates: the top-left pixel's centre is (0, 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def as_bool_mask(mask: Any) -> np.ndarray:
    """Return ``mask`` as an HxW bool array (no copy when it already is one)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'mask must be HxW, got shape {mask.shape}')
    return mask if mask.dtype == np.bool_ else mask != 0


def mask_centroid(mask: np.ndarray) -> tuple[float, float] | None:
    """Mean pixel position of an HxW mask.

    Returns:
        (u, v) = (column, row) in pixels, pixel centres at integer coordinates, so a mask
        covering columns 2..5 has u = 3.5.  None when the mask is empty.
    """
    mask = as_bool_mask(mask)
    count = int(np.count_nonzero(mask))
    if count == 0:
        return None
    height, width = mask.shape
    col_counts = np.count_nonzero(mask, axis=0)
    row_counts = np.count_nonzero(mask, axis=1)
    u = float(col_counts @ np.arange(width, dtype=np.float64)) / count
    v = float(row_counts @ np.arange(height, dtype=np.float64)) / count
    return u, v


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight bounding box of an HxW mask.

    Returns:
        (x0, y0, x1, y1) in pixels with x1 and y1 EXCLUSIVE: width = x1 - x0,
        height = y1 - y0, and ``mask[y0:y1, x0:x1]`` holds every target pixel.
        None when the mask is empty.
    """
    mask = as_bool_mask(mask)
    rows = np.any(mask, axis=1)
    if not rows.any():
        return None
    cols = np.any(mask, axis=0)
    y0 = int(np.argmax(rows))
    y1 = len(rows) - int(np.argmax(rows[::-1]))
    x0 = int(np.argmax(cols))
    x1 = len(cols) - int(np.argmax(cols[::-1]))
    return x0, y0, x1, y1


def _erode_once(mask: np.ndarray) -> np.ndarray:
    """One 3x3 erosion, done as a 1x3 then a 3x1 pass; outside the image counts as False."""
    horizontal = np.zeros_like(mask)
    horizontal[:, 1:-1] = mask[:, :-2] & mask[:, 1:-1] & mask[:, 2:]
    out = np.zeros_like(mask)
    out[1:-1, :] = horizontal[:-2, :] & horizontal[1:-1, :] & horizontal[2:, :]
    return out


def erode_mask(mask: np.ndarray, iterations: int) -> np.ndarray:
    """Binary erosion with a 3x3 square structuring element, pure numpy.

    The image is padded with False, so target pixels on the image border are removed.
    Each iteration peels one pixel off every side (a 5x5 square becomes 3x3).

    Arguments:
        mask: HxW mask (bool, or non-zero = target).
        iterations: number of erosions, >= 0; 0 returns a copy.

    Returns:
        HxW bool array (new).
    """
    if iterations < 0:
        raise ValueError(f'iterations must be >= 0, got {iterations}')
    out = np.array(as_bool_mask(mask), dtype=np.bool_, copy=True)
    for _ in range(int(iterations)):
        if not out.any():
            break
        out = _erode_once(out)
    return out
