"""Preprocessing against the formulas of the facts note, and token ids against sentencepiece."""

from __future__ import annotations

import numpy as np
import pytest
import sentencepiece as spm
import torch
import torch.nn.functional as F

from evf_sam_ros.model import preprocess
from evf_sam_ros.model.errors import PromptError
from evf_sam_ros.model.tokenizer import EvfTokenizer

MEAN = torch.tensor(preprocess.SAM_PIXEL_MEAN).view(3, 1, 1)
STD = torch.tensor(preprocess.SAM_PIXEL_STD).view(3, 1, 1)


def _checker(h: int, w: int, period: int = 1) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    board = (((yy // period) + (xx // period)) % 2 * 255).astype(np.uint8)
    return np.stack([board, 255 - board, board // 2], axis=2)


def test_beit3_constant_image_maps_to_formula():
    image = np.full((37, 53, 3), (0, 128, 255), np.uint8)
    for antialias in (True, False):
        x = preprocess.beit3_pixels(image, 224, antialias)
        assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
        expected = torch.tensor([(c / 255 - 0.5) / 0.5 for c in (0, 128, 255)]).view(1, 3, 1, 1)
        torch.testing.assert_close(x, expected.expand_as(x), atol=1e-5, rtol=0)


def test_beit3_antialias_matters_on_fine_detail():
    """evf-sam/evf-sam2 resize with antialias; the multitask checkpoints without."""
    image = _checker(448, 448, period=2)
    smooth = preprocess.beit3_pixels(image, 224, antialias=True)
    sharp = preprocess.beit3_pixels(image, 224, antialias=False)
    assert smooth.std() < 0.5 * sharp.std()  # antialiasing averages the 2-pixel checkerboard away


@pytest.mark.parametrize(
    'h, w, rh, rw', [(480, 640, 768, 1024), (333, 500, 682, 1024), (900, 300, 1024, 341)]
)
def test_sam_vit_resize_longest_side_normalise_then_pad(h, w, rh, rw):
    assert (rh, rw) == (int(h * 1024 / max(h, w) + 0.5), int(w * 1024 / max(h, w) + 0.5))
    image = np.full((h, w, 3), (10, 200, 90), np.uint8)
    x, size = preprocess.sam_vit_pixels(image, 1024)
    assert size == (rh, rw) and x.shape == (1, 3, 1024, 1024)
    inside = (torch.tensor([10.0, 200.0, 90.0]).view(3, 1, 1) - MEAN) / STD
    torch.testing.assert_close(x[0, :, :rh, :rw], inside.expand(3, rh, rw), atol=1e-5, rtol=0)
    assert torch.count_nonzero(x[0, :, rh:, :]) == 0 and torch.count_nonzero(x[0, :, :, rw:]) == 0


def test_sam2_multitask_stretches_uint8_then_normalises():
    image = _checker(300, 500, period=7)
    x, size = preprocess.sam2_pixels(image, 1024, 'stretch_uint8')
    assert size == (1024, 1024) and x.shape == (1, 3, 1024, 1024)
    raw = x[0] * STD + MEAN  # undo the normalisation: whole numbers, since the resize stayed uint8
    torch.testing.assert_close(raw, raw.round(), atol=1e-3, rtol=0)
    ref = F.interpolate(
        torch.from_numpy(image).permute(2, 0, 1)[None].float(),
        (1024, 1024),
        mode='bilinear',
        align_corners=False,
    )[0]
    assert (raw - ref).abs().max() <= 1.0 + 1e-3  # uint8 rounding of the same bilinear stretch


def test_sam2_evf_sam2_regime_resizes_longest_side_then_stretches_float():
    image = _checker(300, 500, period=5)
    x, _ = preprocess.sam2_pixels(image, 1024, 'longest_side_stretch')
    resized = preprocess.resize_longest_side(image, 1024)
    assert resized.shape[:2] == (614, 1024)
    norm = (torch.from_numpy(resized).permute(2, 0, 1).float() - MEAN) / STD
    ref = F.interpolate(norm[None], (1024, 1024), mode='bilinear', align_corners=False)
    torch.testing.assert_close(x, ref)
    other, _ = preprocess.sam2_pixels(image, 1024, 'stretch_uint8')
    assert (x - other).abs().mean() > 0.01  # the two regimes really differ


@pytest.fixture(scope='module')
def tokenizers(tiny_checkpoint):
    return (
        EvfTokenizer.from_dir(tiny_checkpoint('evf-sam2')),
        EvfTokenizer.from_dir(tiny_checkpoint('evf-sam2-multitask')),
    )


@pytest.mark.parametrize(
    'text', ['the red cup on the left', 'zebra top left', 'Mug!', 'the ünïcode mug', 'a b  c\td']
)
def test_token_ids_are_sentencepiece_ids_plus_one(tokenizers, tiny_checkpoint, text):
    sp = spm.SentencePieceProcessor(
        model_file=str(tiny_checkpoint('evf-sam2') / 'sentencepiece.bpe.model')
    )
    expected = [0] + [i + 1 if i != 0 else 3 for i in sp.encode(text)] + [2]
    assert tokenizers[0].encode(text) == expected


def test_semantic_token_is_one_whole_token_in_multitask(tokenizers):
    plain, multitask = tokenizers
    assert multitask.is_multitask and not plain.is_multitask
    semantic = multitask.added_tokens['[semantic]']
    assert semantic == multitask.mask_id + 1  # released layout: 64001 <mask>, 64002 [semantic]
    ids = multitask.encode('[semantic] the mug')
    assert ids[:2] == [0, semantic] and ids[2:] == plain.encode('the mug')[1:]
    assert semantic not in plain.encode('[semantic] the mug')


def test_unknown_characters_map_to_unk(tokenizers):
    ids = tokenizers[0].encode('the 猫')
    assert 3 in ids and ids[0] == 0 and ids[-1] == 2


def test_each_prompt_is_worked_out_once_and_callers_get_their_own_list(tiny_checkpoint):
    tokenizer = EvfTokenizer.from_dir(tiny_checkpoint('evf-sam2'))
    first = tokenizer.prompt_ids(' the  red cup ', 64)
    assert first == tokenizer.encode('the red cup')
    first.append(99)  # a caller's list: changing it must not change the next answer
    assert tokenizer.prompt_ids(' the  red cup ', 64) == first[:-1]
    with pytest.raises(PromptError, match='the prompt is empty'):
        tokenizer.prompt_ids('  ', 64)
    with pytest.raises(PromptError, match='must be a str, got list'):
        tokenizer.prompt_ids(['unhashable'], 64)
    with pytest.raises(PromptError, match='tokens long; the model accepts at most 3'):
        tokenizer.prompt_ids('the red cup', 3)
    info = tokenizer.cache_info()  # refusals are not kept: they are worked out again
    assert (info.misses, info.hits, info.currsize) == (3, 1, 1)
