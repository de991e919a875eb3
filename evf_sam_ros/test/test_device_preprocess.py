"""preprocess="device" (every resize on the model's device) against the exact path (the
official PIL / uint8 steps), run on the CPU: the model inputs, and the masks of tiny models.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evf_sam_ros.model import VARIANTS, EvfSamPredictor, preprocess
from evf_sam_ros.model.accel.device_preprocess import (
    DevicePreprocessor,
    FrameUploader,
    sam_input_size,
)

STD = torch.tensor(preprocess.SAM_PIXEL_STD).view(1, 3, 1, 1)


def _scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Blocks of colour with noise: edges and gradients for the resamplers to disagree on."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3)).astype(np.float32)
    image = np.kron(blocks, np.ones((8, 8, 1)))[:h, :w] + rng.normal(0, 10, (h, w, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _exact(image: np.ndarray, variant: str, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    regime = VARIANTS[variant]
    if regime.sam_type == 'sam':
        return preprocess.sam_vit_pixels(image, size)
    return preprocess.sam2_pixels(image, size, regime.sam2_resize)


@pytest.mark.parametrize('variant', sorted(VARIANTS))
@pytest.mark.parametrize('h, w', [(480, 640), (400, 300)])
def test_enlarged_frames_give_the_exact_inputs(variant, h, w):
    """Frames the 1024 input enlarges: bit-identical SAM and BEiT-3 inputs in every regime."""
    image = _scene(h, w)
    device = DevicePreprocessor(VARIANTS[variant], 1024, 224, torch.float32)
    sam, beit = device(torch.from_numpy(image))
    exact, input_size = _exact(image, variant, 1024)
    assert device.input_size(h, w) == input_size
    torch.testing.assert_close(sam, exact, atol=1e-4, rtol=0)
    assert torch.equal(
        beit, preprocess.beit3_pixels(image, 224, VARIANTS[variant].beit3_antialias)
    )


@pytest.mark.parametrize('variant', sorted(VARIANTS))
@pytest.mark.parametrize('h, w', [(720, 1280), (1080, 1920)])
def test_shrunk_frames_differ_by_rounding_only(variant, h, w):
    """Frames the resize shrinks: PIL's fixed-point weights differ from float ones, so a few
    pixels land one or two grey levels away (measured: at most 2, on <= 8 % of pixels).
    """
    image = _scene(h, w, seed=1)
    sam, _ = DevicePreprocessor(VARIANTS[variant], 1024, 224, torch.float32)(
        torch.from_numpy(image)
    )
    levels = ((sam - _exact(image, variant, 1024)[0]) * STD).abs()
    assert levels.max() <= 2.0 + 1e-3
    assert (levels > 0.01).float().mean() < 0.10


def test_sam_input_size_is_segment_anythings():
    from segment_anything.utils.transforms import ResizeLongestSide

    for h, w in [(480, 640), (333, 500), (900, 300), (1, 1000)]:
        assert sam_input_size(h, w, 1024) == ResizeLongestSide.get_preprocess_shape(h, w, 1024)


def test_frame_uploader_on_the_cpu_keeps_the_pixels():
    image = _scene(30, 40)
    image.flags.writeable = False
    frame = FrameUploader(torch.device('cpu'))(image)
    assert frame.shape == (30, 40, 3) and frame.dtype == torch.uint8
    assert np.array_equal(frame.numpy(), image)


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_device_masks_match_exact_masks(tiny_checkpoint, variant):
    """Tiny models (input 256, so every frame is shrunk): mask IoU >= 0.99 and
    max|dlogit|/std(logits) < 0.05 against the exact path (measured: IoU >= 0.9997, <= 0.017).
    """
    exact = EvfSamPredictor.from_pretrained(
        tiny_checkpoint(variant), device='cpu', preprocess='exact'
    )
    device = EvfSamPredictor.from_pretrained(
        tiny_checkpoint(variant), device='cpu', preprocess='device'
    )
    for h, w in [(480, 640), (720, 1280)]:
        image = _scene(h, w, seed=2)
        want, got = exact.predict(image, 'the red mug'), device.predict(image, 'the red mug')
        union = np.logical_or(want.mask, got.mask).sum()
        assert 0 < union and np.logical_and(want.mask, got.mask).sum() / union >= 0.99
        assert np.abs(got.logits - want.logits).max() / want.logits.std() < 0.05
