"""Per-frame cost of track mode (EvfSamTracker) next to segment mode (predict_many), 1 and 4
targets.

    python benchmarks/track_benchmark.py --device cpu                     # tiny random model
    flock /tmp/evf_fullsize.lock python benchmarks/track_benchmark.py --device cpu \
        --full-size --frames 2 --skip 0 --threads 1
    python benchmarks/track_benchmark.py --device cuda --full-size        # GPU (fp16 by default)

A benchmark, not a test. The frames are a synthetic 640x480 scene with moving objects.
Segment mode: ``predict_many(frame, prompts)`` on every frame (BEiT-3 for every prompt on
every frame). Track mode: ``add_targets`` on the first frame (grounding, reported apart), then
``track(frame)`` on each following frame (no BEiT-3; memory attention per target, batched).
Lost-and-found is off (``lost_after=0``) so every frame is a tracking frame; ``--skip``
untimed frames come first, because the memory (and its cost) grows for 15 frames.

--full-size builds the released evf-sam2 architecture with random weights (no download, as
benchmarks/model_benchmark.py does); otherwise a tiny random checkpoint at the released input
size (1024). Random weights make SAM2 report "no object"; the object-score head's bias is
raised so masks are not empty and the hole filling does real work. Prints one JSON object
per configuration (medians and p90 in ms, machine, torch, threads).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from typing import Any

import numpy as np
import torch
from model_benchmark import peak_memory_mb, percentiles, random_full_predictor

PROMPTS = ['the red box', 'the blue ball', 'the green cup', 'the white plate']


def frame(index: int, height: int = 480, width: int = 640) -> np.ndarray:
    """Textured background, four coloured objects moving a few pixels per frame (HxWx3 RGB)."""
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([(xx // 3) % 256, (yy // 2) % 256, ((xx + yy) // 4) % 256], -1)
    image = image.astype(np.uint8)
    for k, colour in enumerate([(220, 30, 30), (30, 40, 210), (40, 200, 60), (240, 240, 240)]):
        cx, cy = 80 + 140 * k + 4 * index, 150 + 60 * (k % 2) + 3 * index
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 40**2] = colour
    return image


def load(args: argparse.Namespace) -> Any:
    """EvfSamPredictor on the requested device: full-size random or tiny random."""
    from evf_sam_ros.model import EvfSamPredictor
    from evf_sam_ros.synthetic.tiny_checkpoint import write_tiny_checkpoint

    if args.full_size:
        predictor = random_full_predictor('evf-sam2', args.device, args.dtype, args.cuda_graphs)
    else:
        directory = write_tiny_checkpoint(tempfile.mkdtemp(), 'evf-sam2', image_size=1024)
        predictor = EvfSamPredictor.from_pretrained(
            directory, args.device, args.dtype, cuda_graphs=args.cuda_graphs
        )
    head = predictor.model.visual_model.sam_mask_decoder.pred_obj_score_head
    with torch.no_grad():
        head.layers[-1].bias.add_(4.0)
    return predictor


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, (time.perf_counter() - start) * 1000.0


FRAME_STAGES = ('preprocess', 'image_encoder')


def stage_summary(per_frame: list[list[Any]]) -> dict[str, Any]:
    """Medians of the frame's shared stages and of the targets' own stages summed."""
    shared: dict[str, list[float]] = {}
    own = []
    for results in per_frame:
        for k in FRAME_STAGES:
            shared.setdefault(k, []).append(results[0].timings_ms.get(k, 0.0))
        own.append(
            sum(v for r in results for k, v in r.timings_ms.items() if k not in FRAME_STAGES)
        )
    return {
        'frame_stages_ms': {k: percentiles(v) for k, v in shared.items()},
        'all_targets_own_ms': percentiles(own),
    }


def bench_segment(predictor: Any, prompts: list[str], frames: int, skip: int) -> dict[str, Any]:
    runs = [timed(predictor.predict_many, frame(i), prompts) for i in range(frames + 1)][1:]
    return {
        'mode': 'segment',
        'targets': len(prompts),
        'frame_ms': percentiles([ms for _, ms in runs]),
        **stage_summary([results for results, _ in runs]),
    }


def bench_track(predictor: Any, prompts: list[str], frames: int, skip: int) -> dict[str, Any]:
    from evf_sam_ros.model import EvfSamTracker, TrackerSettings

    tracker = EvfSamTracker(predictor, TrackerSettings(lost_after=0))
    first, ground_ms = timed(tracker.add_targets, frame(0), prompts)
    for i in range(1, skip + 1):
        tracker.track(frame(i))
    runs = [timed(tracker.track, frame(i)) for i in range(skip + 1, skip + frames + 1)]
    per_frame = [results for results, _ in runs]
    return {
        'mode': 'track',
        'targets': len(prompts),
        'timed_frames_after_grounding': skip + 1,
        'frame_ms': percentiles([ms for _, ms in runs]),
        'grounding_frame_ms': round(ground_ms, 1),
        **stage_summary(per_frame),
        'masks_not_empty': sum(r.result.area > 0 for r in first),
    }


BENCHES = {'segment': bench_segment, 'track': bench_track}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:N or auto')
    parser.add_argument('--dtype', default='auto', help='auto: float16 on CUDA, float32 on CPU')
    parser.add_argument('--full-size', action='store_true', help='released evf-sam2 architecture')
    parser.add_argument(
        '--frames',
        type=int,
        default=0,
        help='timed frames per configuration (0: 20, or 2 with --full-size on CPU)',
    )
    parser.add_argument('--targets', default='1,4', help='comma-separated target counts')
    parser.add_argument(
        '--skip',
        type=int,
        default=15,
        help='untimed tracked frames first (15: the memory is full, the '
        'steady state; its cost grows until then)',
    )
    parser.add_argument('--modes', default='segment,track', help='comma-separated modes')
    parser.add_argument(
        '--cuda-graphs',
        action='store_true',
        help='segment mode replays CUDA graphs (track mode runs eager)',
    )
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: default)')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    frames = args.frames or (2 if args.full_size and args.device == 'cpu' else 20)
    predictor = load(args)
    device = predictor.device
    cpu = f'{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads'
    machine = torch.cuda.get_device_name(device) if device.type == 'cuda' else cpu
    for count in (int(n) for n in args.targets.split(',')):
        for bench in (BENCHES[m] for m in args.modes.split(',')):
            if device.type == 'cuda':
                torch.cuda.reset_peak_memory_stats(device)
            row = bench(predictor, PROMPTS[:count], frames, args.skip)
            row.update(
                model='evf-sam2 full-size' if args.full_size else 'evf-sam2 tiny',
                image='640x480',
                frames=frames,
                device=str(device),
                dtype=str(predictor.dtype).replace('torch.', ''),
                machine=machine,
                torch=torch.__version__,
                load_average=round(os.getloadavg()[0], 1),
                peak_memory_mb=round(peak_memory_mb(device), 1),
            )
            print(json.dumps(row), flush=True)


if __name__ == '__main__':
    main()
