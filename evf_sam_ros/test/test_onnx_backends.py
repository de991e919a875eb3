"""Backend choice, refusals, hash-keyed caches and TensorRT build settings (no export here).

TensorRT and a GPU do not exist on this machine: the TensorRT tests cover what is plain
Python (engine-cache keys, optimisation-profile shapes, which layers stay fp32, the refusal
when it is missing); the engines themselves are built by benchmarks/gpu_check.sh on a GPU.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

import pytest
import torch

from evf_sam_ros.model import EvfSamPredictor, VariantError
from evf_sam_ros.model.accel.onnx import cache
from evf_sam_ros.model.accel.onnx.trt_runtime import (
    engine_for,
    keep_fp32,
    profile_shapes,
    require_tensorrt,
    text_ranges,
)
from evf_sam_ros.model.errors import BackendUnavailableError
from evf_sam_ros.model.text_batch import MAX_PROMPT_BATCH

NO_TRT = importlib.util.find_spec('tensorrt') is None


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv('EVF_SAM_CACHE', str(tmp_path / 'cache'))
    return tmp_path / 'cache'


def test_unknown_backend_and_torch_only_options_are_refused(tiny_checkpoint):
    ckpt = tiny_checkpoint('evf-sam2')
    with pytest.raises(VariantError, match='unknown backend'):
        EvfSamPredictor.from_pretrained(ckpt, device='cpu', backend='tflite')
    with pytest.raises(VariantError, match='sets its own precision'):
        EvfSamPredictor.from_pretrained(
            ckpt, device='cpu', dtype='bfloat16', backend='onnxruntime'
        )
    with pytest.raises(VariantError, match='torch_compile is for the torch backend'):
        EvfSamPredictor.from_pretrained(
            ckpt, device='cpu', backend='onnxruntime', torch_compile=True
        )
    with pytest.raises(VariantError, match='are for onnxruntime / tensorrt'):
        EvfSamPredictor.from_pretrained(ckpt, device='cpu', onnx_dir='/nonexistent')


@pytest.mark.skipif(not NO_TRT, reason='TensorRT is installed here')
def test_tensorrt_missing_is_refused_with_the_install_command(tiny_checkpoint, cache_root):
    with pytest.raises(BackendUnavailableError, match='pip install tensorrt'):
        require_tensorrt(torch.device('cuda'))
    # the refusal comes before any export (nothing written to the cache)
    with pytest.raises(BackendUnavailableError, match='backend tensorrt is not installed'):
        EvfSamPredictor.from_pretrained(
            tiny_checkpoint('evf-sam2'), device='cpu', backend='tensorrt'
        )
    assert not (cache_root / 'onnx').exists()


def test_onnxruntime_missing_is_refused_with_the_install_command(tiny_checkpoint, monkeypatch):
    # onnxruntime is installed here; None in sys.modules makes `import onnxruntime` fail as
    # on a robot without it (the real module is not replaced by a fake).
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    with pytest.raises(BackendUnavailableError, match='pip install onnxruntime'):
        EvfSamPredictor.from_pretrained(
            tiny_checkpoint('evf-sam'), device='cpu', backend='onnxruntime'
        )


def test_checkpoint_hash_follows_content_and_is_memoised(tmp_path, cache_root):
    ckpt = tmp_path / 'ckpt'
    ckpt.mkdir()
    (ckpt / 'config.json').write_text('{"a": 1}')
    (ckpt / 'weights.bin').write_bytes(b'\0' * 100)
    (ckpt / '.cache').mkdir()
    (ckpt / '.cache' / 'lock').write_text('ignored')
    first = cache.checkpoint_hash(ckpt)
    assert (cache_root / 'file_hashes.json').is_file()
    assert cache.checkpoint_hash(ckpt) == first
    (ckpt / '.cache' / 'lock').write_text('still ignored')
    assert cache.checkpoint_hash(ckpt) == first
    (ckpt / 'weights.bin').write_bytes(b'\1' * 100)
    os.utime(ckpt / 'weights.bin', ns=(1, 1))  # new mtime: the memo is not reused
    changed = cache.checkpoint_hash(ckpt)
    assert changed != first
    key = cache.export_cache_dir(changed, 'evf-sam2', 18)
    assert key.parent == cache_root / 'onnx' and key.name.startswith(changed[:16])
    assert cache.export_cache_dir(changed, 'evf-sam2-multitask', 18) != key


def test_staged_dir_is_atomic(tmp_path):
    target = tmp_path / 'entry'
    with pytest.raises(RuntimeError, match='boom'):
        with cache.staged_dir(target) as tmp:
            (tmp / 'half').write_text('x')
            raise RuntimeError('boom')
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with cache.staged_dir(target) as tmp:
        (tmp / 'whole').write_text('x')
    assert (target / 'whole').read_text() == 'x'


def test_engine_cache_key_names_gpu_tensorrt_graph_and_build(tmp_path):
    build = {'precision': 'fp16', 'profile': {'input_ids': [[1, 3], [1, 16], [8, 512]]}}
    path = cache.engine_path(tmp_path, 'NVIDIA H200', '10.13.0', 'beit3_fusion', 'a' * 64, build)
    assert path.parent.name == 'nvidia-h200-trt10.13.0'
    assert path.name.startswith('beit3_fusion-') and path.suffix == '.engine'
    same = cache.engine_path(tmp_path, 'NVIDIA H200', '10.13.0', 'beit3_fusion', 'a' * 64, build)
    assert same == path
    others = [
        cache.engine_path(tmp_path, 'Orin', '10.13.0', 'beit3_fusion', 'a' * 64, build),
        cache.engine_path(tmp_path, 'NVIDIA H200', '10.3.0', 'beit3_fusion', 'a' * 64, build),
        cache.engine_path(tmp_path, 'NVIDIA H200', '10.13.0', 'beit3_fusion', 'b' * 64, build),
        cache.engine_path(tmp_path, 'NVIDIA H200', '10.13.0', 'beit3_fusion', 'a' * 64, {}),
    ]
    assert len({path, *others}) == 5


def test_profile_shapes_cover_prompt_batches_and_text_lengths():
    inputs = [
        {'name': 'pixels', 'dtype': 'float32', 'shape': [1, 3, 224, 224]},
        {'name': 'input_ids', 'dtype': 'int64', 'shape': ['prompts', 'text_len']},
        {'name': 'text_mask', 'dtype': 'bool', 'shape': ['prompts', 'text_len']},
    ]
    shapes = profile_shapes(inputs, text_ranges(512))
    assert set(shapes) == {'input_ids', 'text_mask'}  # static inputs need no profile
    assert shapes['input_ids'] == ((1, 3), (1, 16), (MAX_PROMPT_BATCH, 512))
    decoder = [{'name': 'text_embed', 'dtype': 'float32', 'shape': ['prompts', 1, 256]}]
    assert profile_shapes(decoder)['text_embed'] == ((1, 1, 256), (1, 1, 256), (8, 1, 256))
    with pytest.raises(ValueError, match="no optimisation-profile range for axis 'frames'"):
        profile_shapes([{'name': 'm', 'dtype': 'float32', 'shape': ['frames', 4]}])


def test_fp32_islands_are_layernorm_softmax_and_gelu():
    assert keep_fp32('NORMALIZATION', 'node_layer_norm_3')
    assert keep_fp32('SOFTMAX', 'node_softmax')
    assert keep_fp32('UNARY', 'node_Erf_12')  # exact GELU's erf
    assert keep_fp32('ELEMENTWISE', '/mm_extractor/beit3/encoder/layers.0/ffn/gelu/Mul')
    assert not keep_fp32('CONVOLUTION', 'node_conv2d')
    assert not keep_fp32('MATRIX_MULTIPLY', 'node_linear_7')


def test_cached_engine_is_reused_without_building(tmp_path):
    # Fake TensorRT module (none exists here): only its version string is read on a hit.
    trt = types.SimpleNamespace(__version__='10.13.0')
    entry = {'file': 'g.onnx', 'sha256': 'c' * 64, 'inputs': []}
    build = {'precision': 'fp16+fp32-islands', 'profile': {}}
    cached = cache.engine_path(tmp_path, 'Fake GPU', '10.13.0', 'g', 'c' * 64, build)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b'engine')
    logs = []
    path = engine_for(trt, tmp_path, 'g', entry, {}, tmp_path, logs.append, 'Fake GPU')
    assert path == cached and logs == [f'TensorRT engine g: cached {cached}']
