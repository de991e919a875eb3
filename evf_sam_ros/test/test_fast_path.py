"""The GPU fast path's CPU-checkable parts: text buckets with a key padding mask, K prompts
in one BEiT-3/decoder batch, device preprocessing against the exact path, bf16 against fp32,
and torch.compile. Tiny real-format checkpoints (random weights); the GPU itself is checked by
benchmarks/gpu_check.sh on a lent machine, not here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evf_sam_ros.model import VARIANTS, EvfSamPredictor, VariantError
from evf_sam_ros.model.accel.cuda_graphs import GraphedCallable
from evf_sam_ros.model.config import Beit3Config
from evf_sam_ros.model.network.beit3 import Beit3
from evf_sam_ros.model.network.sam_parts import best_by_iou
from evf_sam_ros.model.text_batch import (
    DEFAULT_TEXT_BUCKETS,
    MAX_PROMPT_BATCH,
    PAD_ID,
    batch_rows,
    pad_token_ids,
    resolve_buckets,
)

CPU = torch.device('cpu')


def _image(h: int = 60, w: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _assert_same_result(got, want, rel: float = 1e-4) -> None:
    """Equal within float rounding: logits to ``rel`` of their spread, the mask wherever the
    logit is clearly away from 0, the scores to 1e-4.
    """
    scale = float(want.logits.std())
    np.testing.assert_allclose(got.logits, want.logits, rtol=0, atol=rel * scale)
    clear = np.abs(want.logits) > 10 * rel * scale
    assert np.array_equal(got.mask[clear], want.mask[clear])
    assert got.score == pytest.approx(want.score, abs=1e-4)
    if want.object_score is None:
        assert got.object_score is None
    else:
        assert got.object_score == pytest.approx(want.object_score, abs=1e-4)


@pytest.fixture(scope='module')
def predictors(tiny_checkpoint):
    return {v: EvfSamPredictor.from_pretrained(tiny_checkpoint(v), device='cpu') for v in VARIANTS}


def test_pad_token_ids_pads_to_the_bucket_with_a_mask():
    ids, mask = pad_token_ids([[0, 5, 2], [0, 5, 6, 7, 8, 2]], (4, 8, 16), rows=4, device=CPU)
    assert ids.shape == (4, 8) and mask.shape == (4, 8) and mask.dtype == torch.bool
    assert (
        ids[0].tolist() == [0, 5, 2] + [PAD_ID] * 5
        and mask[0].tolist() == [True] * 3 + [False] * 5
    )
    assert ids[3].tolist() == ids[1].tolist()  # extra rows repeat the last prompt
    one, no_mask = pad_token_ids([[0, 5, 2]], None, rows=1, device=CPU)
    assert one.tolist() == [[0, 5, 2]] and no_mask is None  # exact lengths: unpadded, no mask
    _, ragged = pad_token_ids([[0, 2], [0, 5, 2]], None, rows=2, device=CPU)
    assert ragged.tolist() == [[True, True, False], [True, True, True]]


def test_bucket_and_batch_rules():
    assert resolve_buckets('auto', CPU, 1022) is None
    assert resolve_buckets('auto', torch.device('cuda'), 1022) == DEFAULT_TEXT_BUCKETS + (1022,)
    assert resolve_buckets([64, 16, 2000], CPU, 1022) == (16, 64, 1022)  # the limit closes it
    for bad in ([2], 'many', [16, 'x']):
        with pytest.raises(VariantError, match='text_buckets'):
            resolve_buckets(bad, CPU, 1022)
    assert [batch_rows(k, True) for k in (1, 2, 3, 5, 8)] == [1, 2, 4, 8, 8]
    assert batch_rows(3, False) == 3 and MAX_PROMPT_BATCH == 8


@pytest.fixture(scope='module')
def beit3():
    torch.manual_seed(0)
    model = Beit3(
        Beit3Config(embed_dim=64, depth=3, num_heads=4, ffn_dim=128, vocab_size=500)
    ).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model, torch.randn(1, 3, 224, 224)


def test_padded_beit3_equals_unpadded(beit3):
    model, pixels = beit3
    ids = [0, 17, 256, 3, 99, 2]
    with torch.no_grad():
        alone = model(pixels, torch.tensor([ids]))
        padded, mask = pad_token_ids([ids], (16,), rows=1, device=CPU)
        masked = model(pixels, padded, mask)
        other_pad = model(pixels, padded.masked_fill(~mask, 7), mask)  # what padding holds
        unmasked = model(pixels, padded)
    torch.testing.assert_close(masked, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(other_pad, masked, atol=1e-6, rtol=0)
    assert not torch.allclose(unmasked, alone, atol=1e-3)  # without the mask padding leaks in


def test_one_beit3_batch_equals_each_prompt_alone(beit3):
    model, pixels = beit3
    prompts = [[0, 5, 2], [0, 17, 256, 3, 99, 2], [0, 44, 45, 46, 2]]
    with torch.no_grad():
        ids, mask = pad_token_ids(prompts, (8, 16), rows=4, device=CPU)
        batch = model(pixels, ids, mask)  # 1x3x224x224 pixels shared by 4 rows
        for row, prompt in enumerate(prompts):
            torch.testing.assert_close(
                batch[row : row + 1], model(pixels, torch.tensor([prompt])), atol=1e-5, rtol=1e-5
            )


def test_best_by_iou_picks_each_rows_own_best_mask():
    masks = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
    iou = torch.tensor([[0.1, 0.9, 0.3], [0.8, 0.2, 0.7]])
    picked, best = best_by_iou(masks, iou)
    assert picked.shape == (2, 1, 2, 2) and best.tolist() == [
        [pytest.approx(0.9)],
        [pytest.approx(0.8)],
    ]
    assert torch.equal(picked[0, 0], masks[0, 1]) and torch.equal(picked[1, 0], masks[1, 0])


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_predict_many_equals_separate_predicts(predictors, variant):
    """One BEiT-3 and one decoder call for K prompts of different lengths (multitask: each row
    picks its own best of 3 masks) give what K predict() calls give.
    """
    predictor, image = predictors[variant], _image(45, 90, seed=3)
    prompts = ['the red mug', 'the plate on the right of the blue bowl', '[semantic] mug']
    many = predictor.predict_many(image, prompts)
    assert [r.prompt for r in many] == prompts
    for prompt, got in zip(prompts, many):
        _assert_same_result(got, predictor.predict(image, prompt))


def test_more_prompts_than_one_batch_holds(predictors):
    predictor, image = predictors['evf-sam2-multitask'], _image(seed=5)
    words = 'red green blue yellow white black orange purple brown grey pink'.split()
    prompts = [f'the {w} mug' for w in words]  # 11 prompts: batches of 8 and 3
    many = predictor.predict_many(image, prompts)
    assert len(many) == len(prompts) > MAX_PROMPT_BATCH
    for prompt, got in zip(prompts, many):
        _assert_same_result(got, predictor.predict(image, prompt))


@pytest.mark.parametrize('variant', ['evf-sam', 'evf-sam2-multitask'])
def test_text_buckets_equal_exact_lengths(tiny_checkpoint, predictors, variant):
    bucketed = EvfSamPredictor.from_pretrained(
        tiny_checkpoint(variant), device='cpu', text_buckets=(8, 16)
    )
    assert bucketed.text_buckets == (8, 16, 1022)
    image = _image(seed=2)
    for prompt in ('the mug', 'the small round striped plastic bowl behind the tall glass bottle'):
        _assert_same_result(
            bucketed.predict(image, prompt), predictors[variant].predict(image, prompt)
        )


def test_preprocess_option(tiny_checkpoint, predictors):
    assert predictors['evf-sam2'].preprocess == 'exact'  # the CPU default
    predictor = EvfSamPredictor.from_pretrained(
        tiny_checkpoint('evf-sam2'), device='cpu', preprocess='device'
    )
    assert predictor.preprocess == 'device'
    with pytest.raises(VariantError, match='unknown preprocess'):
        EvfSamPredictor.from_pretrained(
            tiny_checkpoint('evf-sam2'), device='cpu', preprocess='fast'
        )


def test_graphed_callable_passes_none_arguments_off_cuda():
    graphed = GraphedCallable(lambda a, mask: a if mask is None else a * mask)
    x = torch.ones(3)
    assert torch.equal(graphed(x, None), x) and torch.equal(
        graphed(x, torch.zeros(3)), torch.zeros(3)
    )
    assert graphed.captures == 0


def test_bfloat16_stays_close_to_float32(tiny_checkpoint, predictors):
    """What the CPU can say about reduced precision (fp16 needs CUDA: gpu_check.sh measures it).
    Tiny random models are touchy, so the bound is loose; measured IoU 0.979-0.992.
    """
    image = _image()
    for variant in sorted(VARIANTS):
        bf16 = EvfSamPredictor.from_pretrained(
            tiny_checkpoint(variant), device='cpu', dtype='bfloat16'
        )
        got, want = (
            bf16.predict(image, 'the red mug'),
            predictors[variant].predict(image, 'the red mug'),
        )
        assert _iou(got.mask, want.mask) >= 0.95
        assert np.abs(got.logits - want.logits).max() / want.logits.std() < 0.2
