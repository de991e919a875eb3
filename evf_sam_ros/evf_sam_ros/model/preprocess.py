"""Image checks and the exact preprocessing of each branch and regime (see the facts note).

All functions take an HxWx3 uint8 RGB numpy image and return float32 tensors on ``device``.
The steps the official code runs on uint8 data on the CPU (PIL resize, the uint8 stretch)
stay there; the image then travels as uint8 (4x less than float32) and the float steps
(normalise, pad, float resizes) run on ``device``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from evf_sam_ros.model.errors import InputImageError

SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)  # RGB, 0-255 scale
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


def as_rgb_uint8(image: object) -> np.ndarray:
    """Check an image and return it as a contiguous HxWx3 uint8 RGB array.

    Accepts HxWx3 uint8 RGB (returned as is, made contiguous), HxW or HxWx1 uint8
    grayscale (replicated to 3 channels) and HxWx4 uint8 RGBA (alpha dropped).
    Raises InputImageError for anything else.
    """
    if not isinstance(image, np.ndarray):
        raise InputImageError(
            f'the image must be a numpy array (HxWx3 uint8 RGB), got {type(image).__name__}'
        )
    if image.dtype != np.uint8:
        raise InputImageError(
            f'the image must be uint8 (0-255), got {image.dtype}; convert it first, e.g. '
            '(np.clip(img, 0, 1) * 255).astype(np.uint8) for float images in [0, 1]'
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise InputImageError(
            f'the image must be HxWx3 RGB (or HxW gray, HxWx4 RGBA), got shape {image.shape}'
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputImageError(f'the image is empty (shape {image.shape})')
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def _chw(image: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """HxWx3 uint8 numpy -> 3xHxW uint8 tensor on ``device`` (read-only arrays are copied)."""
    array = np.ascontiguousarray(image)
    return (
        torch.from_numpy(array if array.flags.writeable else array.copy())
        .to(device)
        .permute(2, 0, 1)
    )


def beit3_pixels(
    image: np.ndarray, size: int, antialias: bool, device: torch.device | str = 'cpu'
) -> torch.Tensor:
    """BEiT-3 input: [0,1] float -> bicubic resize to size x size -> (x - 0.5) / 0.5.

    antialias=True for evf-sam and evf-sam2 (torchvision's default), False for the
    multitask checkpoints (their code passes antialias=None). Returns 1x3xSxS float32.
    """
    return beit3_from_chw(_chw(image, device), size, antialias)


def beit3_from_chw(chw: torch.Tensor, size: int, antialias: bool) -> torch.Tensor:
    """BEiT-3 input from a 3xHxW uint8 RGB tensor on any device (the steps of beit3_pixels):
    /255, bicubic resize to size x size (torchvision), (x - 0.5) / 0.5. Returns 1x3xSxS float32.
    """
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    x = chw.float().div(255.0)
    x = TF.resize(x, [size, size], interpolation=InterpolationMode.BICUBIC, antialias=antialias)
    return ((x - 0.5) / 0.5).unsqueeze(0)


def sam_normalize(chw: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std in 0-255 space (SAM's pixel statistics), float32; any leading dims."""
    mean = torch.tensor(SAM_PIXEL_MEAN, device=chw.device).view(-1, 1, 1)
    std = torch.tensor(SAM_PIXEL_STD, device=chw.device).view(-1, 1, 1)
    return (chw.float() - mean) / std


def resize_longest_side(image: np.ndarray, target: int) -> np.ndarray:
    """segment-anything's ResizeLongestSide.apply_image (PIL bilinear), HxWx3 uint8.

    Raises InputImageError when the short side would become 0 pixels (an aspect ratio
    beyond about 2 * target : 1, e.g. a 1x100000 image), which the official code crashes on.
    """
    from segment_anything.utils.transforms import ResizeLongestSide

    h, w = image.shape[:2]
    if min(ResizeLongestSide.get_preprocess_shape(h, w, target)) < 1:
        raise InputImageError(
            f'the image is {w}x{h}: resizing its long side to {target} leaves the short side '
            f'0 pixels; send images whose long side is at most {2 * target - 1} times the '
            'short side'
        )
    return ResizeLongestSide(target).apply_image(image)


def sam_vit_pixels(
    image: np.ndarray, size: int, device: torch.device | str = 'cpu'
) -> tuple[torch.Tensor, tuple[int, int]]:
    """SAM ViT input: longest side to ``size``, normalise (0-255 space), zero-pad
    bottom/right to size x size. Returns (1x3xSxS float32, (h, w) resized before padding).
    """
    resized = resize_longest_side(image, size)
    h, w = resized.shape[:2]
    x = sam_normalize(_chw(resized, device))
    return F.pad(x, (0, size - w, 0, size - h)).unsqueeze(0), (h, w)


def sam2_pixels(
    image: np.ndarray, size: int, mode: str, device: torch.device | str = 'cpu'
) -> tuple[torch.Tensor, tuple[int, int]]:
    """SAM2 input, stretched to size x size (the aspect ratio is not kept).

    mode "stretch_uint8" (multitask): uint8 bilinear resize (align_corners=False, no
    antialias; the result stays uint8), then normalise.
    mode "longest_side_stretch" (evf-sam2): ResizeLongestSide, normalise, then float
    bilinear resize to the square. Returns (1x3xSxS float32, (size, size)).
    """
    if mode == 'stretch_uint8':
        x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).contiguous()
        x = F.interpolate(
            x, (size, size), mode='bilinear', align_corners=False
        )  # uint8, on the CPU
        return sam_normalize(x[0].to(device)).unsqueeze(0), (size, size)
    if mode == 'longest_side_stretch':
        resized = resize_longest_side(image, size)
        x = sam_normalize(_chw(resized, device)).unsqueeze(0)
        return F.interpolate(x, (size, size), mode='bilinear', align_corners=False), (size, size)
    raise ValueError(f'unknown SAM2 resize mode {mode!r}')
