"""torch.compile on the CPU: the compiled parts give the eager results, text buckets and prompt
counts stop compiling after warm-up, and the compile cache directory is the one asked for.

The cheap tests use the "aot_eager" backend (dynamo's real tracing, guards and recompiles,
without generating kernels). Compiling with inductor on 2 cores takes minutes (C++ kernels;
measured ~4 min cold, ~20 s from a warm cache for a tiny evf-sam2), so that test only runs
with EVF_SAM_SLOW_TESTS=1; gpu_check.sh compiles for real on the GPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from evf_sam_ros.model import EvfSamPredictor
from evf_sam_ros.model.accel.compilation import (
    CACHE_ENV,
    compile_part,
    default_cache_dir,
    resolve_backend,
    use_cache_dir,
)
from evf_sam_ros.model.config import Beit3Config
from evf_sam_ros.model.network.beit3 import Beit3
from evf_sam_ros.model.text_batch import pad_token_ids

CPU = torch.device('cpu')
SLOW = pytest.mark.skipif(
    not os.environ.get('EVF_SAM_SLOW_TESTS'),
    reason='slow (minutes on 2 cores): set EVF_SAM_SLOW_TESTS=1',
)


def _graphs() -> int:
    return counters['stats']['unique_graphs']


def test_text_buckets_and_prompt_counts_compile_only_during_warm_up():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = Beit3(
        Beit3Config(embed_dim=32, depth=2, num_heads=2, ffn_dim=64, vocab_size=300)
    ).eval()
    compiled = compile_part(model, 'aot_eager')
    pixels = torch.randn(1, 3, 224, 224)

    def run(fn, prompts, rows):
        ids, mask = pad_token_ids(prompts, (16, 32, 64), rows, CPU)
        with torch.inference_mode():
            return fn(pixels, ids, mask)

    for rows, prompts in (
        (1, [[0, 5, 2]]),
        (1, [[0] + [7] * 20 + [2]]),
        (2, [[0, 5, 2], [0, 6, 2]]),
    ):
        run(compiled, prompts, rows)  # warm-up: buckets 16 and 32, one and two prompts
    before = _graphs()
    long_prompt, batch = [[0] + [9] * 50 + [2]], [[0, 5, 2], [0, 6, 6, 2], [0, 8, 2], [0, 1, 2]]
    for rows, prompts in ((1, long_prompt), (4, batch), (8, batch * 2)):
        torch.testing.assert_close(
            run(compiled, prompts, rows), run(model, prompts, rows), atol=1e-5, rtol=1e-5
        )
    assert _graphs() == before  # bucket 64, 4 and 8 prompts: no new compilation


def test_compiled_predictor_equals_eager_and_warms_every_bucket(tiny_checkpoint):
    torch._dynamo.reset()
    ckpt = tiny_checkpoint('evf-sam2-multitask')
    eager = EvfSamPredictor.from_pretrained(ckpt, device='cpu', text_buckets=(16, 32))
    compiled = EvfSamPredictor.from_pretrained(
        ckpt, device='cpu', text_buckets=(16, 32), torch_compile='aot_eager'
    )
    assert compiled.torch_compile and compiled.compile_backend == 'aot_eager'
    before = _graphs()  # from_pretrained warmed up: compile on, so warm-up is on by default
    image = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    for prompt in ('the mug', 'the small round striped plastic bowl behind the tall glass bottle'):
        got, want = compiled.predict(image, prompt), eager.predict(image, prompt)
        np.testing.assert_allclose(got.logits, want.logits, rtol=0, atol=1e-5 * want.logits.std())
    assert _graphs() == before  # a new prompt on a new frame compiled nothing


def test_compile_cache_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert default_cache_dir() == tmp_path / 'xdg' / 'evf_sam_ros' / 'torch_compile'
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / 'old'))  # restored after the test
    chosen = use_cache_dir(tmp_path / 'robot_cache')
    assert chosen.is_dir() and os.environ[CACHE_ENV] == str(chosen.resolve())
    assert default_cache_dir() == chosen.resolve()  # an explicit environment setting wins
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    assert Path(cache_dir()) == chosen.resolve()  # what inductor will use


def test_compile_option_values():
    assert resolve_backend(False) is None and resolve_backend(True) == 'inductor'
    assert resolve_backend('aot_eager') == 'aot_eager'
    with pytest.raises(ValueError, match='torch_compile'):
        resolve_backend(3)


@SLOW
def test_inductor_compiled_predictor_equals_eager(tiny_checkpoint, tmp_path):
    torch._dynamo.reset()
    ckpt = tiny_checkpoint('evf-sam2')
    eager = EvfSamPredictor.from_pretrained(ckpt, device='cpu', text_buckets=(16, 32))
    compiled = EvfSamPredictor.from_pretrained(
        ckpt,
        device='cpu',
        text_buckets=(16, 32),
        torch_compile=True,
        compile_cache_dir=tmp_path / 'cache',
    )
    assert any((tmp_path / 'cache').rglob('*'))  # kernels went to the persistent cache
    image = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    prompts = ['the mug', 'a blue box on the left of the plate']
    for got, want in zip(
        compiled.predict_many(image, prompts), eager.predict_many(image, prompts)
    ):
        np.testing.assert_allclose(got.logits, want.logits, rtol=0, atol=1e-4 * want.logits.std())
