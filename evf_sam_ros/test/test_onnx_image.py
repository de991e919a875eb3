"""Image mode through exported ONNX graphs in onnxruntime equals the torch path (issue 15).

Each of the four tiny checkpoints (real format, random weights) is exported once per session:
evf-sam2 on first use through from_pretrained(backend='onnxruntime') into a hash-keyed cache,
evf-sam2-multitask with export_checkpoint, the SAM ViT ones by the installed evf-sam-export
console script (in processes of their own, at the same time).
Then torch and onnxruntime predictors segment the same frame: logits agree to
max|diff| / std <= 1e-3 and masks to IoU >= 0.999, for 1 and for 4 prompts.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from graph_exports import background_export, finished
from lifecycle_msgs.msg import Transition
from ros_harness import diagnostics_values, image_msg, node_log, node_process, wait_for
from sensor_msgs.msg import Image

from evf_sam_msgs.msg import Segmentation
from evf_sam_ros.model import EvfSamPredictor, VariantError
from evf_sam_ros.model.accel.onnx.backend import export_checkpoint
from evf_sam_ros.model.accel.onnx.cache import checkpoint_hash
from evf_sam_ros.model.accel.onnx.export import OPSET, read_manifest
from evf_sam_ros.tools.export_onnx import main as export_main

VARIANTS = ('evf-sam2', 'evf-sam2-multitask', 'evf-sam', 'evf-sam-multitask')
PROMPTS = ['the red mug', 'the small ball left of the wooden box', 'robot', 'a zebra']
BACKEND_LOG = 'evf_sam_ros.model.accel.onnx.backend'


@pytest.fixture(scope='session')
def onnx_cache(tmp_path_factory: pytest.TempPathFactory):
    """EVF_SAM_CACHE pointed at a fresh directory for the session (restored after)."""
    old = os.environ.get('EVF_SAM_CACHE')
    os.environ['EVF_SAM_CACHE'] = str(tmp_path_factory.mktemp('evf-cache'))
    yield Path(os.environ['EVF_SAM_CACHE'])
    if old is None:
        os.environ.pop('EVF_SAM_CACHE')
    else:
        os.environ['EVF_SAM_CACHE'] = old


@pytest.fixture(scope='session')
def exported(tiny_checkpoint, onnx_cache, tmp_path_factory) -> dict[str, dict]:
    """Per variant: checkpoint dir, export dir, torch predictor, onnxruntime predictor.

    The SAM ViT checkpoints are exported by the installed `evf-sam-export` console script in
    processes of their own, while this one exports the SAM2 ones (two cores, half the wait).
    """
    dirs = {v: tmp_path_factory.mktemp(f'onnx-{v}') for v in VARIANTS if v != 'evf-sam2'}
    cli = {v: background_export(tiny_checkpoint(v), dirs[v]) for v in VARIANTS if 'sam2' not in v}
    out = {}
    for variant in VARIANTS:
        ckpt = tiny_checkpoint(variant)
        torch_pred = EvfSamPredictor.from_pretrained(ckpt, device='cpu')
        if variant == 'evf-sam2':  # first use: exported into the cache
            ort_pred = EvfSamPredictor.from_pretrained(ckpt, device='cpu', backend='onnxruntime')
            dirs[variant] = ort_pred.graphs.export_dir
        else:
            if variant in cli:
                finished(cli[variant])
            else:
                export_checkpoint(ckpt, dirs[variant])
            ort_pred = EvfSamPredictor.from_pretrained(
                ckpt, device='cpu', backend='onnxruntime', onnx_dir=dirs[variant]
            )
        out[variant] = dict(ckpt=ckpt, dir=dirs[variant], torch=torch_pred, ort=ort_pred)
    return out


def _frame() -> np.ndarray:
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    img[20:60, 30:80] = (200, 40, 30)  # some structure besides noise
    return img


@pytest.mark.parametrize('variant', VARIANTS)
@pytest.mark.parametrize('count', [1, 4])
def test_onnxruntime_equals_torch(exported, variant, count):
    parts = exported[variant]
    assert parts['ort'].backend == 'onnxruntime' and parts['ort'].model is None
    frame = _frame()
    ref = parts['torch'].predict_many(frame, PROMPTS[:count])
    got = parts['ort'].predict_many(frame, PROMPTS[:count])
    assert len(got) == count
    for a, b in zip(ref, got):
        assert b.logits.shape == a.logits.shape == frame.shape[:2]
        assert np.abs(a.logits - b.logits).max() / a.logits.std() <= 1e-3
        union = np.count_nonzero(a.mask | b.mask)
        iou = np.count_nonzero(a.mask & b.mask) / union if union else 1.0
        assert iou >= 0.999
        assert b.score == pytest.approx(a.score, abs=1e-4)
        if a.object_score is None:
            assert b.object_score is None
        else:
            assert b.object_score == pytest.approx(a.object_score, abs=1e-4)


@pytest.mark.parametrize('variant', VARIANTS)
def test_manifest_names_checkpoint_graphs_and_shapes(exported, variant):
    parts = exported[variant]
    manifest = read_manifest(parts['dir'])
    assert manifest['checkpoint']['sha256'] == checkpoint_hash(parts['ckpt'])
    assert manifest['variant'] == variant and manifest['opset'] == OPSET >= 17
    graphs = manifest['graphs']
    assert {'beit3_fusion', 'image_encoder', 'mask_decoder'} <= set(graphs)
    fusion = {t['name']: t for t in graphs['beit3_fusion']['inputs']}
    assert fusion['input_ids']['shape'] == ['prompts', 'text_len']
    assert fusion['input_ids']['dtype'] == 'int64' and fusion['pixels']['dtype'] == 'float32'
    decoder_out = [t['name'] for t in graphs['mask_decoder']['outputs']]
    sam2 = variant.startswith('evf-sam2')
    assert decoder_out == (['low_res_logits', 'iou'] + (['object_score'] if sam2 else []))
    encoder_out = [t['name'] for t in graphs['image_encoder']['outputs']]
    assert len(encoder_out) == (3 if sam2 else 1)  # SAM2's high-res features
    for entry in graphs.values():
        path = Path(parts['dir']) / entry['file']
        assert (path.parent / entry['data_file']).is_file()  # weights as external data
        onnx.checker.check_model(str(path), full_check=True)  # path form: external data
        floats = [t for t in entry['inputs'] + entry['outputs'] if 'int' not in t['dtype']]
        assert all(t['dtype'] in ('float32', 'bool') for t in floats)


def test_second_use_reads_the_cache_and_export_dir_opens_alone(exported, caplog):
    parts = exported['evf-sam2']
    with caplog.at_level(logging.INFO, logger=BACKEND_LOG):
        again = EvfSamPredictor.from_pretrained(parts['ckpt'], device='cpu', backend='onnxruntime')
    assert not [r for r in caplog.records if 'exporting' in r.getMessage()]
    assert again.graphs.export_dir == parts['dir']
    alone = EvfSamPredictor.from_pretrained(parts['dir'], device='cpu', backend='onnxruntime')
    frame = _frame()
    a, b = again.predict(frame, PROMPTS[0]), alone.predict(frame, PROMPTS[0])
    np.testing.assert_array_equal(a.logits, b.logits)


def test_export_dir_of_another_variant_is_refused(exported):
    with pytest.raises(VariantError, match='exported as evf-sam2, not evf-sam2-multitask'):
        EvfSamPredictor.from_pretrained(
            exported['evf-sam2']['dir'], backend='onnxruntime', variant='evf-sam2-multitask'
        )


def test_export_cli_reports_a_bad_checkpoint(tmp_path, capsys):
    assert export_main([str(tmp_path / 'missing'), str(tmp_path / 'out')]) == 1
    assert 'evf-sam-export:' in capsys.readouterr().err


def test_manifest_is_json_with_graph_hashes(exported):
    manifest = json.loads((Path(exported['evf-sam']['dir']) / 'manifest.json').read_text())
    hashes = [g['sha256'] for g in manifest['graphs'].values()]
    assert len(set(hashes)) == len(hashes) and all(len(h) == 64 for h in hashes)


def test_node_refuses_a_missing_backend_then_runs_on_onnxruntime(exported, ros_client, tmp_path):
    """backend:=tensorrt without TensorRT: the node stays up, unconfigured, and says what to
    install; backend:=onnxruntime on an evf-sam-export directory then segments.
    """
    ns, node = '/onnx', '/onnx/evf_sam'
    c = ros_client
    diags = c.collect(DiagnosticArray, '/diagnostics')
    segs = c.collect(Segmentation, f'{ns}/segmentation')
    params = {
        'checkpoint': str(exported['evf-sam']['dir']),
        'backend': 'tensorrt',
        'device': 'cpu',
        'diagnostics_period': 0.3,
        'prompt': 'the mug',
        'score_threshold': 0.0,
    }
    with node_process(ns, params, tmp_path) as proc:
        values = wait_for(lambda: diagnostics_values(diags, node), 60, 'diagnostics')
        assert values['level'] == '2' and 'pip install tensorrt' in values['message']
        assert c.lifecycle_state(node) == 'unconfigured' and proc.poll() is None
        assert c.set_params(node, backend='onnxruntime')[0].successful
        assert c.transition(node, Transition.TRANSITION_CONFIGURE)
        assert c.transition(node, Transition.TRANSITION_ACTIVATE)
        c.publish_when_matched(Image, f'{ns}/image', image_msg(3))
        wait_for(lambda: any(s.header.stamp.sec == 3 for s in segs), 30, 'a segmentation')
    assert proc.returncode == 0
    assert 'Traceback' not in node_log(tmp_path, ns)
