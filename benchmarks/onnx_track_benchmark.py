"""Track mode per frame: torch (sam2's modules) next to onnxruntime (the exported graphs), in
one run on the same full-size evf-sam2 model with seeded random weights.

    flock /tmp/evf_fullsize.lock python benchmarks/onnx_track_benchmark.py --frames 20
    python benchmarks/onnx_track_benchmark.py --tiny        # tiny model, seconds

A benchmark, not a test. It exports the image encoder and the four track graphs
(model/accel/onnx/track_export.py) of the random model into a temporary directory, then runs
both video runners (``Sam2VideoRunner``, ``GraphVideoRunner``) frame by frame, interleaved
(torch then onnxruntime on each frame, so load changes hit both): 2 targets grounded on
frame 0 from the same BEiT-3 text features (torch; grounding is reported apart), then
``--frames`` tracked frames. Per tracked frame: image encoder, the targets' track step
(memory attention, mask decoder, memory encoder and the glue), and the sum; and how far the
onnxruntime logits are from torch's (max|diff| / std, mask IoU). The object-score head's bias is
raised so masks are not empty (random weights say "no object"). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from model_benchmark import percentiles, random_full_model
from track_benchmark import frame

PROMPTS = ['the red box', 'the blue ball']


def tiny_model() -> Any:
    """The tiny random evf-sam2 checkpoint at the released input size (1024)."""
    from evf_sam_ros.model.loading import load_parts
    from evf_sam_ros.synthetic.tiny_checkpoint import write_tiny_checkpoint

    directory = write_tiny_checkpoint(tempfile.mkdtemp(), 'evf-sam2', image_size=1024)
    return load_parts(directory, 'evf-sam2')[0].float().eval()


def runners(model: Any, threads: int) -> tuple[Any, Any, float]:
    """(torch runner, onnxruntime runner, export seconds)."""
    from evf_sam_ros.model.accel.onnx.export import export_graph, graph_builders
    from evf_sam_ros.model.accel.onnx.ort_runtime import OrtGraph
    from evf_sam_ros.model.accel.onnx.track_export import TRACK_GRAPHS, TrackSettings
    from evf_sam_ros.model.config import get_variant
    from evf_sam_ros.model.tracking.graph_video import GraphVideoRunner
    from evf_sam_ros.model.tracking.sam2_video import Sam2VideoRunner

    out = Path(tempfile.mkdtemp())
    builders = graph_builders()
    start = time.perf_counter()
    graphs = {}
    for name in ('image_encoder', *TRACK_GRAPHS):
        export_graph(name, builders[name](model, get_variant('evf-sam2')), out)
        graphs[name] = OrtGraph(out / f'{name}.onnx', torch.device('cpu'), threads)
    export_s = time.perf_counter() - start
    settings = TrackSettings.of(model.cfg)
    encoder = graphs.pop('image_encoder')
    return (
        Sam2VideoRunner(model.visual_model),
        GraphVideoRunner(graphs, encoder, settings),
        export_s,
    )


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    from evf_sam_ros.model import preprocess
    from evf_sam_ros.model.tokenizer import EvfTokenizer
    from evf_sam_ros.model.tracking.track_memory import TargetMemory, memory_window
    from evf_sam_ros.model.tracking.video_frames import sam2_video_pixels
    from evf_sam_ros.synthetic.tiny_checkpoint import train_tokenizer

    torch.set_num_threads(args.threads)
    model = tiny_model() if args.tiny else random_full_model('evf-sam2', 'cpu')
    head = model.visual_model.sam_mask_decoder.pred_obj_score_head
    with torch.no_grad():
        head.layers[-1].bias.add_(4.0)
    torch_runner, graph_runner, export_s = runners(model, args.threads)
    sp = Path(tempfile.mkdtemp()) / 'sentencepiece.bpe.model'
    sp.write_bytes(train_tokenizer())
    tokenizer = EvfTokenizer(sp)
    window, size = memory_window(model.visual_model), torch_runner.image_size
    with torch.inference_mode():
        beit = preprocess.beit3_pixels(frame(0), model.cfg.beit3.img_size, True, 'cpu')
        text = torch.cat(
            [model.text_embedding(beit, torch.tensor([tokenizer.encode(p)])) for p in PROMPTS]
        )
        state = {}
        for name, runner in (('torch', torch_runner), ('onnxruntime', graph_runner)):
            start = time.perf_counter()
            out = runner.ground(runner.encode(sam2_video_pixels(frame(0), size)), text)
            state[name] = ([TargetMemory(m, window) for m in out.memories], ms_since(start))
        times = {n: {'image_encoder': [], 'track_step': [], 'frame': []} for n in state}
        agree, ious = [], []
        for i in range(1, args.frames + 1):
            pixels = sam2_video_pixels(frame(i), size)
            low_res = {}
            for name, runner in (('torch', torch_runner), ('onnxruntime', graph_runner)):
                memories = state[name][0]
                start = time.perf_counter()
                encoded = runner.encode(pixels)
                encode_ms = ms_since(start)
                out = runner.track(encoded, memories)
                total = ms_since(start)
                for memory, new in zip(memories, out.memories):
                    memory.append(new)
                low_res[name] = out.low_res.numpy()
                for key, value in (
                    ('image_encoder', encode_ms),
                    ('track_step', total - encode_ms),
                ):
                    times[name][key].append(value)
                times[name]['frame'].append(total)
            ref, got = low_res['torch'], low_res['onnxruntime']
            agree.append(float(np.abs(ref - got).max() / ref.std()))
            a, b = ref > 0, got > 0
            ious.append(float((a & b).sum() / max((a | b).sum(), 1)))
    return {
        'benchmark': 'onnx_track',
        'model': 'evf-sam2 tiny (1024)' if args.tiny else 'evf-sam2 full size, random weights',
        'targets': len(PROMPTS),
        'tracked_frames': args.frames,
        'export_s': round(export_s, 1),
        'grounding_frame_ms': {n: round(v[1], 1) for n, v in state.items()},
        'per_tracked_frame_ms': {
            n: {k: percentiles(v) for k, v in stages.items()} for n, stages in times.items()
        },
        'max_logit_diff_over_std': max(agree),
        'min_mask_iou_low_res': min(ious),
        'masks_not_empty': bool(all((v > 0).any() for v in low_res.values())),
        'machine': f'{platform.machine()}, {os.cpu_count()} CPUs, no GPU',
        'torch': torch.__version__,
        'threads': args.threads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=20, help='tracked frames after frame 0')
    parser.add_argument('--threads', type=int, default=2, help='torch and onnxruntime threads')
    parser.add_argument('--tiny', action='store_true', help='tiny random model (smoke run)')
    print(json.dumps(run(parser.parse_args()), indent=1))


if __name__ == '__main__':
    main()
