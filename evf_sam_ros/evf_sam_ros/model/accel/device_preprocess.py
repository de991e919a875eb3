"""Preprocessing on the model's device (``preprocess="device"``): the uint8 frame goes up once
(pinned host memory, non-blocking copy) and every resize and normalisation of the four regimes
runs there as tensor operations, so a GPU frame costs one ~1 MB copy instead of PIL resizes.

It reproduces the exact path (``preprocess.py``, the official PIL / uint8 steps) up to the
resamplers' fixed-point weights:
- ResizeLongestSide (PIL bilinear on uint8; PIL's filter widens when shrinking) becomes two
  separable float bilinear passes with ``antialias=True`` (the same triangle filter), each
  rounded half up to whole grey levels, as PIL's two uint8 passes are;
- the multitask uint8 stretch (torch's uint8 CPU kernel, also two rounded passes) likewise,
  without antialiasing;
- BEiT-3's resize is the exact path's own tensor code (``preprocess.beit3_from_chw``).
Measured on the CPU: 640x480 frames give bit-identical inputs in all four regimes; frames that
are shrunk (1280x720, 1920x1080) differ by 1-2 grey levels on 0.6-8 % of the SAM input's
pixels. Mask IoU against the exact path: test_device_preprocess.py and docs/benchmarks.md.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from evf_sam_ros.model.config import Regime
from evf_sam_ros.model.preprocess import beit3_from_chw, sam_normalize


def sam_input_size(height: int, width: int, target: int) -> tuple[int, int]:
    """(h, w) after ResizeLongestSide(target): longest side = target, the other
    ``int(side * target / longest + 0.5)`` (segment-anything's get_preprocess_shape).
    """
    scale = target / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def _resize_whole_levels(x: torch.Tensor, size: tuple[int, int], antialias: bool) -> torch.Tensor:
    """Bilinear resize of 1x3xHxW float grey levels (0-255) as the uint8 resamplers do it:
    two separable passes, width first, each rounded half up to whole levels (PIL's
    ImagingResample and torch's uint8 CPU kernel keep a uint8 image between the passes).
    """
    height = x.shape[2]
    x = F.interpolate(
        x, (height, size[1]), mode='bilinear', align_corners=False, antialias=antialias
    )
    x = torch.floor(x + 0.5).clamp(0.0, 255.0)
    x = F.interpolate(x, size, mode='bilinear', align_corners=False, antialias=antialias)
    return torch.floor(x + 0.5).clamp(0.0, 255.0)


class DevicePreprocessor:
    """Frame tensor -> (SAM pixels, BEiT-3 pixels) on the frame's device.

    Tensor operations only (no host synchronisation), so a call can be replayed as a CUDA
    graph per frame size. Outputs are cast to ``dtype`` (the model's compute dtype).
    """

    def __init__(self, regime: Regime, sam_size: int, beit3_size: int, dtype: torch.dtype):
        self.regime, self.sam_size, self.beit3_size, self.dtype = (
            regime,
            sam_size,
            beit3_size,
            dtype,
        )

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the SAM input before padding: resized frame (SAM ViT) or the square (SAM2)."""
        if self.regime.sam_type == 'sam':
            return sam_input_size(height, width, self.sam_size)
        return self.sam_size, self.sam_size

    def __call__(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frame: HxWx3 uint8 RGB on the device. Returns (1x3xSxS SAM input, 1x3xBxB BEiT-3
        input), both in ``dtype``; S = sam_size, B = beit3_size.
        """
        chw = frame.permute(2, 0, 1)
        beit = beit3_from_chw(chw, self.beit3_size, self.regime.beit3_antialias)
        x = chw.unsqueeze(0).float()
        size, (height, width) = self.sam_size, frame.shape[:2]
        if self.regime.sam2_resize == 'stretch_uint8':
            x = sam_normalize(_resize_whole_levels(x, (size, size), antialias=False))
        else:
            h, w = sam_input_size(height, width, size)
            x = sam_normalize(_resize_whole_levels(x, (h, w), antialias=True))
            if self.regime.sam_type == 'sam':
                x = F.pad(x, (0, size - w, 0, size - h))
            else:  # evf-sam2: then stretch the float image to the square
                x = F.interpolate(x, (size, size), mode='bilinear', align_corners=False)
        return x.to(self.dtype), beit.to(self.dtype)


class FrameUploader:
    """numpy HxWx3 uint8 -> HxWx3 uint8 tensor on ``device``.

    On CUDA the frame is copied into a pinned host buffer (one per frame shape, reused) and
    sent with a non-blocking copy; the buffer is reused only after its last copy finished.
    Elsewhere the array is wrapped without a copy (read-only arrays are copied).
    """

    def __init__(self, device: torch.device):
        self.device = device
        self._buffers: dict[tuple[int, ...], torch.Tensor] = {}
        self._done: torch.cuda.Event | None = None

    def __call__(self, rgb: np.ndarray) -> torch.Tensor:
        """The HxWx3 uint8 frame as a tensor on ``device`` (CUDA: non-blocking copy, pinned)."""
        if self.device.type != 'cuda':
            array = rgb if rgb.flags.writeable else rgb.copy()
            return torch.from_numpy(array).to(self.device)
        staging = self._buffers.get(rgb.shape)
        if staging is None:
            staging = torch.empty(rgb.shape, dtype=torch.uint8, pin_memory=True)
            self._buffers = {rgb.shape: staging}  # keep one: frame sizes rarely change
        if self._done is not None:
            self._done.synchronize()  # the previous frame's copy has left the buffer
        np.copyto(staging.numpy(), rgb)
        frame = staging.to(self.device, non_blocking=True)
        self._done = torch.cuda.Event()
        self._done.record()
        return frame
