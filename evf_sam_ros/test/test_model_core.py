"""EvfSamPredictor on tiny real-format checkpoints: every variant, strict loading, and the
full-size module trees against the reference key lists (predict_many: test_fast_path.py).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evf_sam_ros.model import (
    VARIANTS,
    CheckpointError,
    EvfSamPredictor,
    InputImageError,
    PromptError,
    VariantError,
)
from evf_sam_ros.model.checkpoint import normalize_keys
from evf_sam_ros.model.config import parse_config
from evf_sam_ros.model.masks import mask_bbox, mask_centroid
from evf_sam_ros.model.network.evf_model import EvfSamModel

REFERENCE = Path(__file__).resolve().parent / 'data'  # copied from the project's shared reference


def _image(h: int = 60, w: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope='module')
def predictors(tiny_checkpoint):
    return {v: EvfSamPredictor.from_pretrained(tiny_checkpoint(v), device='cpu') for v in VARIANTS}


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_every_variant_returns_documented_shapes_and_types(predictors, variant):
    predictor = predictors[variant]
    assert predictor.regime.name == variant  # detected from config.json + tokenizer
    result = predictor.predict(_image(60, 80), 'the red mug left of the plate')
    assert result.mask.shape == (60, 80) and result.mask.dtype == np.bool_
    assert result.logits.shape == (60, 80) and result.logits.dtype == np.float32
    assert np.array_equal(result.mask, result.logits > 0)
    assert isinstance(result.score, float) and np.isfinite(result.score)
    if VARIANTS[variant].sam_type == 'sam2':
        assert isinstance(result.object_score, float)
        assert 0.0 <= result.score <= 1.0  # SAM2's IoU head ends in a sigmoid
    else:
        assert result.object_score is None
    assert result.area == int(result.mask.sum())
    assert result.bbox == mask_bbox(result.mask) and result.centroid == mask_centroid(result.mask)
    assert set(result.timings_ms) == {
        'preprocess',
        'image_encoder',
        'beit3',
        'decoder',
        'postprocess',
    }


def test_prompts_change_the_answer(predictors):
    predictor, image = predictors['evf-sam2'], _image()
    a = predictor.predict(image, 'the red mug')
    b = predictor.predict(image, 'a blue box on the left')
    assert not np.array_equal(a.logits, b.logits)  # early fusion: the text reaches the decoder


def test_grayscale_and_rgba_are_converted(predictors):
    predictor, rgb = predictors['evf-sam2'], _image()
    gray = rgb[:, :, 0]
    from_gray = predictor.predict(gray, 'the mug')
    from_rgb3 = predictor.predict(np.repeat(gray[:, :, None], 3, axis=2), 'the mug')
    np.testing.assert_array_equal(from_gray.logits, from_rgb3.logits)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(
        predictor.predict(rgba, 'the mug').logits, predictor.predict(rgb, 'the mug').logits
    )


@pytest.mark.parametrize(
    'bad, match',
    [
        (np.zeros((10, 10, 3), np.float32), 'uint8'),
        (np.zeros((10, 10, 5), np.uint8), 'shape'),
        (np.zeros((0, 10, 3), np.uint8), 'empty'),
        ([[1, 2], [3, 4]], 'numpy array'),
    ],
)
def test_bad_images_raise_clear_errors(predictors, bad, match):
    with pytest.raises(InputImageError, match=match):
        predictors['evf-sam2'].predict(bad, 'the mug')


@pytest.mark.parametrize(
    'prompt, match',
    [
        ('', 'empty'),
        ('   \n\t', 'empty'),
        ('the \x00mug', 'non-printable'),
        (None, 'str'),
        ('mug ' * 1100, 'at most 1022'),
    ],
)
def test_bad_prompts_raise_clear_errors(predictors, prompt, match):
    with pytest.raises(PromptError, match=match):
        predictors['evf-sam'].predict(_image(), prompt)


def test_longest_accepted_prompt_runs(predictors):
    predictor = predictors['evf-sam2']
    words = ['mug'] * 2000
    lo, hi = 1, len(words)
    while lo < hi:  # longest prefix that fits the 1022-token table
        mid = (lo + hi + 1) // 2
        fits = len(predictor.tokenizer.encode(' '.join(words[:mid]))) <= 1022
        lo, hi = (mid, hi) if fits else (lo, mid - 1)
    prompt = ' '.join(words[:lo])
    assert len(predictor.tokenize(prompt)) <= 1022
    assert predictor.predict(_image(20, 20), prompt).mask.shape == (20, 20)
    with pytest.raises(PromptError, match='the model accepts at most 1022'):
        predictor.tokenize(' '.join(words[: lo + 1]))


def _rewrite_safetensors(src: Path, dst: Path, edit) -> Path:
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    state = load_file(str(src / 'model.safetensors'))
    save_file(edit(dict(state)), str(dst / 'model.safetensors'))
    return dst


def test_strict_loading_names_the_missing_key(tiny_checkpoint, tmp_path):
    key = 'mm_extractor.beit3.encoder.layers.1.ffn.B.fc2.bias'
    ckpt = _rewrite_safetensors(
        tiny_checkpoint('evf-sam2'),
        tmp_path / 'c',
        lambda s: {k: v for k, v in s.items() if k != key},
    )
    with pytest.raises(CheckpointError, match=r'missing keys: ' + key.replace('.', r'\.')):
        EvfSamPredictor.from_pretrained(ckpt, device='cpu')


def test_strict_loading_names_unexpected_keys_and_wrong_shapes(tiny_checkpoint, tmp_path):
    def edit(state):
        state['visual_model.extra_head.weight'] = torch.zeros(3)
        state['text_hidden_fcs.0.2.bias'] = torch.zeros(7)
        return state

    ckpt = _rewrite_safetensors(tiny_checkpoint('evf-sam2'), tmp_path / 'c', edit)
    with pytest.raises(
        CheckpointError, match='unexpected keys: visual_model.extra_head.weight'
    ) as err:
        EvfSamPredictor.from_pretrained(ckpt, device='cpu')
    assert 'text_hidden_fcs.0.2.bias: checkpoint (7,), model (32,)' in str(err.value)


def test_fuser_scale_loads_as_gamma_or_weight(tiny_checkpoint):
    image = _image()
    results = [
        EvfSamPredictor.from_pretrained(
            tiny_checkpoint('evf-sam2', fuser_scale_name=name), device='cpu'
        )
        .predict(image, 'the mug')
        .logits
        for name in ('weight', 'gamma')
    ]
    np.testing.assert_array_equal(*results)  # same seed, same weights, only the key differs


def test_explicit_variant_overrides_detection(tiny_checkpoint):
    predictor = EvfSamPredictor.from_pretrained(
        tiny_checkpoint('evf-sam2'), device='cpu', variant='evf-sam2-multitask'
    )
    assert predictor.regime.name == 'evf-sam2-multitask' and predictor.regime.sam2_multimask
    with pytest.raises(VariantError, match='unknown variant'):
        EvfSamPredictor.from_pretrained(
            tiny_checkpoint('evf-sam2'), device='cpu', variant='evf-sam3'
        )


@pytest.mark.parametrize('name, expected', [('evf_sam', 'sam'), ('evf_sam2', 'sam2')])
def test_full_size_models_match_reference_keys_and_shapes(name, expected):
    """Built on the meta device (SAM2's few eager parts for real): no weights needed."""
    reference = {}
    for line in (REFERENCE / f'{name}_state_dict_keys.tsv').read_text().splitlines():
        key, shape = line.split('\t')
        reference[key] = tuple(ast.literal_eval(shape))
    scale = 'huge' if expected == 'sam' else 'large'
    cfg = parse_config(
        {
            'model_type': 'evf',
            'sam_scale': scale,
            'mm_extractor_scale': 'large',
            'hidden_size': 1024,
            'out_dim': 256,
        }
    )
    assert cfg.sam_type == expected
    model = EvfSamModel(cfg, device='meta')
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    renamed = dict(zip(normalize_keys(dict.fromkeys(reference)), reference.values()))
    assert ours == renamed


def test_half_precision_keeps_fp32_islands(tiny_checkpoint):
    predictor = EvfSamPredictor.from_pretrained(
        tiny_checkpoint('evf-sam'), device='cpu', dtype='bfloat16'
    )
    neck = predictor.model.visual_model.image_encoder.neck
    assert all(p.dtype == torch.float32 for p in neck.parameters())
    assert predictor.model.mm_extractor.beit3.text_embed.weight.dtype == torch.bfloat16
    result = predictor.predict(_image(), 'the mug')
    assert result.logits.dtype == np.float32 and np.isfinite(result.logits).all()


def test_float16_on_cpu_and_missing_cuda_are_refused(tiny_checkpoint):
    with pytest.raises(VariantError, match='float16 needs a CUDA device'):
        EvfSamPredictor.from_pretrained(tiny_checkpoint('evf-sam2'), device='cpu', dtype='float16')
    if not torch.cuda.is_available():
        with pytest.raises(VariantError, match='CUDA is not available'):
            EvfSamPredictor.from_pretrained(tiny_checkpoint('evf-sam2'), device='cuda')


def test_model_core_imports_without_rclpy():
    code = (
        "import sys; sys.modules['rclpy'] = None; "
        'import evf_sam_ros.model, evf_sam_ros.target3d.estimate; '
        "assert 'rclpy' not in [m for m in sys.modules if sys.modules[m] is not None]"
    )
    subprocess.run([sys.executable, '-c', code], check=True)


def test_config_json_of_released_layout_parses():
    cfg = parse_config(
        {
            'model_type': 'evf',
            'hidden_size': 1024,
            'out_dim': 256,
            'sam_scale': 'huge',
            'mm_extractor_scale': 'large',
            'architectures': ['EvfSamModel'],
        }
    )
    assert cfg.sam_type == 'sam' and cfg.sam.embed_dim == 1280 and cfg.beit3.depth == 24
    with pytest.raises(VariantError, match='sam_scale'):
        parse_config({'model_type': 'evf', 'sam_scale': 'gigantic'})
    with pytest.raises(VariantError, match='unknown fields'):
        parse_config({'sam_scale': 'large', 'sam_config': {'embed_dimension': 3}})
    assert json.loads(json.dumps(cfg.to_json_dict()))['sam_scale'] == 'huge'


def test_cuda_graph_wrapper_is_a_plain_call_off_cuda():
    from evf_sam_ros.model.accel.cuda_graphs import GraphedCallable

    graphed = GraphedCallable(lambda a, b: (a + b, a * b))
    x, y = torch.ones(3), torch.full((3,), 2.0)
    s, p = graphed(x, y)
    assert torch.equal(s, x + y) and torch.equal(p, x * y) and graphed.captures == 0


def test_cuda_graphs_default_follows_the_device(tiny_checkpoint):
    assert not EvfSamPredictor.from_pretrained(
        tiny_checkpoint('evf-sam2'), device='cpu'
    ).cuda_graphs
    forced = EvfSamPredictor.from_pretrained(
        tiny_checkpoint('evf-sam2'), device='cpu', cuda_graphs=True
    )
    assert not forced.cuda_graphs  # graphs only exist on CUDA; CPU runs eagerly
