"""Track mode on exported graphs: sam2's rotary encoding in real arithmetic, each track graph
in onnxruntime against its torch module, and EvfSamTracker(backend='onnxruntime') against
the torch tracker over 20 frames with 2 targets, on the tiny SAM2 checkpoints.

Everything runs for real (torch, sam2, the exporter, onnxruntime); the checkpoints are tiny
with random weights (the hub cannot be reached here). With random weights SAM2's
object-score head says "no object" on every frame; the checkpoints used here have that
head's output bias raised in the file, so both backends read the same weights.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from graph_exports import background_export, finished, stop
from test_tracker import scene

from evf_sam_ros.model import EvfSamTracker, TrackerSettings

pytest.importorskip('onnxruntime')

BIAS_KEY = 'visual_model.sam_mask_decoder.pred_obj_score_head.layers.2.bias'
PROMPTS = ['the red square on the left', 'the blue disc']


def agreement(reference: np.ndarray, other: np.ndarray) -> float:
    """max|diff| / std of the reference (/ max|reference| for a constant, e.g. one value)."""
    scale = reference.std() if reference.std() > 0 else np.abs(reference).max()
    return float(np.abs(reference - other).max() / scale)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


@pytest.fixture(scope='module')
def present_checkpoint(tiny_checkpoint, tmp_path_factory):
    """Factory: a tiny SAM2 checkpoint of ``variant`` whose object-score bias is raised."""
    from safetensors.torch import load_file, save_file

    made = {}

    def make(variant: str):
        if variant not in made:
            source = tiny_checkpoint(variant, image_size=256)
            out = tmp_path_factory.mktemp(f'{variant}-present')
            shutil.copytree(source, out, dirs_exist_ok=True)
            state = load_file(str(out / 'model.safetensors'))
            state[BIAS_KEY] = state[BIAS_KEY] + 4.0
            save_file(state, str(out / 'model.safetensors'), metadata={'format': 'pt'})
            made[variant] = out
        return made[variant]

    return make


@pytest.fixture(scope='module', autouse=True)
def multitask_export(present_checkpoint, tmp_path_factory):
    """evf-sam2-multitask's graphs, written by the installed evf-sam-export in a process of
    its own from the module's first test on, while evf-sam2's are exported in this one.
    """
    out = tmp_path_factory.mktemp('evf-sam2-multitask-onnx')
    proc = background_export(present_checkpoint('evf-sam2-multitask'), out)
    yield proc, out
    stop(proc)


@pytest.fixture(scope='module')
def graph_cache(tmp_path_factory):
    """A graph cache of this module's own (the export of each checkpoint happens once)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('EVF_SAM_CACHE', str(tmp_path_factory.mktemp('evf-sam-cache')))
        yield


def test_real_rotation_equals_sam2s_complex_rotation():
    from sam2.modeling.position_encoding import apply_rotary_enc, compute_axial_cis

    from evf_sam_ros.model.accel.onnx.rotary import apply_rotary_real, real_table

    gen = torch.Generator().manual_seed(0)
    table = compute_axial_cis(dim=32, end_x=8, end_y=8)
    q = torch.randn(2, 1, 64, 32, generator=gen)
    k = torch.randn(2, 1, 3 * 64, 32, generator=gen)  # 3 memory frames
    expected = apply_rotary_enc(q, k, table, repeat_freqs_k=True)
    got = apply_rotary_real(q, k, real_table(table), repeat_freqs_k=True)
    for e, g in zip(expected, got):
        assert e.shape == g.shape
        assert torch.allclose(e, g, rtol=0, atol=1e-6)
    # no keys: returned as they are, as sam2 does
    empty = k[:, :, :0]
    assert apply_rotary_real(q, empty, real_table(table))[1] is empty
    with pytest.raises(ValueError, match='does not fit'):
        apply_rotary_real(q, k, real_table(compute_axial_cis(dim=32, end_x=4, end_y=4)))


def test_swap_keeps_memory_attention_output_and_restores_sam2(tiny_checkpoint):
    import sam2.modeling.sam.transformer as transformer

    from evf_sam_ros.model import EvfSamPredictor
    from evf_sam_ros.model.accel.onnx.rotary import RealRotary

    model = EvfSamPredictor.from_pretrained(
        tiny_checkpoint('evf-sam2', image_size=256), device='cpu'
    ).model
    attention = model.visual_model.memory_attention
    gen = torch.Generator().manual_seed(1)
    curr, curr_pos = torch.randn(2, 256, 2, 32, generator=gen)
    memory, memory_pos = torch.randn(2, 2 * 256 + 4, 2, 16, generator=gen)
    args = dict(curr=curr, curr_pos=curr_pos, memory=memory, memory_pos=memory_pos)
    original, tables = (
        transformer.apply_rotary_enc,
        [m.freqs_cis for m in attention.modules() if hasattr(m, 'freqs_cis')],
    )
    with torch.no_grad():
        expected = attention(**args, num_obj_ptr_tokens=4)
        rotary = RealRotary(attention)
        with rotary.swap():
            assert transformer.apply_rotary_enc is not original
            with pytest.raises(RuntimeError, match='already active'):
                with rotary.swap():
                    pass
            got = attention(**args, num_obj_ptr_tokens=4)
    assert torch.allclose(expected, got, rtol=0, atol=1e-5)
    assert transformer.apply_rotary_enc is original
    assert all(
        m.freqs_cis is t
        for m, t in zip([m for m in attention.modules() if hasattr(m, 'freqs_cis')], tables)
    )


def test_each_track_graph_in_onnxruntime_equals_its_torch_module(present_checkpoint, graph_cache):
    """Per graph, at sizes other than the export's examples (1 and many targets, frames,
    pointers): the exported graph's outputs equal its torch module's.
    """
    from evf_sam_ros.model.accel.onnx.export import graph_builders
    from evf_sam_ros.model.accel.onnx.track_export import TRACK_GRAPHS
    from evf_sam_ros.model.loading import load_parts

    tracker = EvfSamTracker.from_pretrained(
        present_checkpoint('evf-sam2'), device='cpu', backend='onnxruntime'
    )
    graphs = tracker.predictor.graphs.open_more(TRACK_GRAPHS, {})
    model, _, regime = load_parts(present_checkpoint('evf-sam2'))
    model = model.float()
    builders = graph_builders(('track',))
    gen = torch.Generator().manual_seed(3)
    for batch, frames, pointers in [(1, 1, 1), (3, 7, 16)]:
        for name, build in builders.items():
            spec = build(model, regime)
            inputs = dict(spec.inputs)
            for key, value in inputs.items():
                if key in ('text', 'pix_feat', 'low_res', 'object_score', 'memory', 'obj_ptrs'):
                    shape = (batch, *value.shape[1:])
                    if key == 'memory':
                        shape = (batch, frames, *value.shape[2:])
                    if key == 'obj_ptrs':
                        shape = (batch, pointers, value.shape[2])
                    inputs[key] = torch.randn(shape, generator=gen)
            if 'memory_tpos' in inputs:
                inputs['memory_tpos'] = torch.arange(frames - 1, -1, -1)
            with torch.no_grad():
                expected = spec.module(**inputs)
            expected = expected if isinstance(expected, tuple) else (expected,)
            got = graphs[name](*inputs.values())
            for out, e, g in zip(spec.outputs, expected, got):
                assert e.shape == g.shape, (name, out)
                assert agreement(e.numpy(), g.numpy()) <= 1e-4, (name, out, batch)


@pytest.mark.parametrize('variant', ['evf-sam2', 'evf-sam2-multitask'])
def test_track_mode_in_onnxruntime_equals_torch(
    present_checkpoint, graph_cache, multitask_export, variant, monkeypatch
):
    """evf-sam2 exported on first use (the cache), evf-sam2-multitask by evf-sam-export."""
    checkpoint = present_checkpoint(variant)
    settings = TrackerSettings(iou_threshold=0.0, lost_after=0)
    torch_tracker = EvfSamTracker.from_pretrained(checkpoint, device='cpu', settings=settings)
    graphs = {}
    if variant == 'evf-sam2-multitask':
        proc, graphs['onnx_dir'] = multitask_export
        finished(proc)
    ort_tracker = EvfSamTracker.from_pretrained(
        checkpoint, device='cpu', settings=settings, backend='onnxruntime', **graphs
    )
    assert ort_tracker.predictor.backend == 'onnxruntime'
    frames = [scene(i) for i in range(20)]  # > 16: the pointer memory fills up
    expected = [[r.result for r in torch_tracker.add_targets(frames[0], PROMPTS)]]
    got = [[r.result for r in ort_tracker.add_targets(frames[0], PROMPTS)]]
    for frame in frames[1:]:
        expected.append(torch_tracker.track(frame))
        got.append(ort_tracker.track(frame))
    areas = []
    for index, (want, have) in enumerate(zip(expected, got)):
        for w, h in zip(want, have):
            assert agreement(w.logits, h.logits) <= 1e-3, (index, w.prompt)
            assert iou(w.mask, h.mask) >= 0.999, (index, w.prompt)
            assert abs(w.score - h.score) <= 1e-4 and abs(w.object_score - h.object_score) <= 1e-3
            areas.append(w.area)
    assert min(areas) > 0  # masks not empty: the comparison is not trivial
    assert ort_tracker.targets == torch_tracker.targets

    # targets beyond a graph call's bound go through in parts, with the same results
    from evf_sam_ros.model.tracking import graph_video

    monkeypatch.setattr(graph_video, 'MAX_TARGETS', 1)
    parts = EvfSamTracker(ort_tracker.predictor, settings)
    split = [parts.add_targets(frames[0], PROMPTS)] + [parts.track_targets(f) for f in frames[1:3]]
    for index, results in enumerate(split):
        for r, whole in zip(results, got[index]):
            assert agreement(whole.logits, r.result.logits) <= 1e-4
