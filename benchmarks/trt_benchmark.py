"""TensorRT fp16 engines of evf-sam2 next to torch fp32 (a gpu_check.sh step; a benchmark).

    python benchmarks/trt_benchmark.py --variant evf-sam2 --device cuda
    python benchmarks/trt_benchmark.py --variant evf-sam2 --device cpu --quick   # CPU smoke

Builds the released architecture with random weights (random_weights.py) in float32 on the
CPU, exports its graphs there (timed; sam2 moves RoPE tables to CUDA when it sees one), then on
CUDA builds the TensorRT engines (fp16, LayerNorm/softmax/GELU fp32, profiles for 1..8 prompts
and 3..max text tokens; timed, into a fresh engine cache) and prints one JSON row
("table": "tensorrt"): export and engine-build seconds, end-to-end and per-stage p50/p95 at
each size, 2nd prompt, 4 prompts, mask IoU / max|dlogit|/std against torch fp32 eager
with exact preprocessing, and track mode per frame on the same engines (EvfSamTracker on the
predictor: its image encoder and the four track graphs; 1 and 2 targets, after
``--track-skip`` untimed frames; the object-score bias raised as in track_benchmark.py, so
random weights give masks). Without TensorRT (or on the CPU) it runs the same steps with
onnxruntime and says so in the row's "backend"; without CUDA + TensorRT on a cuda run it
prints a skipped row with the reason.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_benchmark as mb  # noqa: E402
from gpu_suite import COMPARE_SIZE, agreement  # noqa: E402
from onnx_benchmark import export_random  # noqa: E402
from track_benchmark import bench_track  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--variant', default='evf-sam2')
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--sizes', default='640x480,1280x720')
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--quick', action='store_true', help='small models (CPU smoke)')
    parser.add_argument('--track-frames', type=int, default=20, help='timed track frames')
    parser.add_argument('--track-skip', type=int, default=5, help='untimed frames first')
    args = parser.parse_args()
    base = {
        'table': 'tensorrt',
        'variant': args.variant,
        'scale': 'small' if args.quick else 'full',
    }
    missing = [m for m in ('onnx', 'onnxscript') if importlib.util.find_spec(m) is None]
    backend = 'tensorrt' if args.device.startswith('cuda') else 'onnxruntime'
    if backend == 'tensorrt' and importlib.util.find_spec('tensorrt') is None:
        missing.append('tensorrt')
    if missing:
        print(json.dumps({**base, 'skipped': f'not importable: {", ".join(missing)}'}))
        return 0
    from evf_sam_ros.model import EvfSamPredictor

    model = mb.random_full_model(args.variant, 'cpu', scale='small' if args.quick else 'full')
    sam2 = model.cfg.sam_type == 'sam2'
    if sam2:  # random weights say "no object": raise the score, as track_benchmark.py does
        with torch.no_grad():
            model.visual_model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.add_(4.0)
    work = Path(tempfile.mkdtemp(prefix='evf-trt-'))
    export_s = export_random(model, args.variant, work / 'onnx', seed=0)
    model = model.to(args.device)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    reference = mb.predictor_for(
        model, args.variant, 'float32', copy_model=False, preprocess='exact', text_buckets=None
    )
    image = mb.test_image(*COMPARE_SIZE)
    want = reference.predict(image, mb.PROMPTS[0]).logits
    reference.release()
    del model, reference
    start = time.perf_counter()
    options = {'engine_cache_dir': work / 'engines'} if backend == 'tensorrt' else {}
    predictor = EvfSamPredictor.from_pretrained(
        work / 'onnx', device=args.device, backend=backend, **options
    )
    build_s = time.perf_counter() - start
    got = predictor.predict(image, mb.PROMPTS[0]).logits
    row = {
        **base,
        'backend': backend + (' fp16 (fp32 islands)' if backend == 'tensorrt' else ' fp32'),
        'export_s': round(export_s, 1),
        'engine_build_s' if backend == 'tensorrt' else 'session_s': round(build_s, 1),
        'vs_torch_fp32_exact': agreement(got, want),
        'machine': mb.machine_name(torch.device(args.device)),
        'torch': torch.__version__,
        'weights': 'random (random_weights.py)',
    }
    for size in args.sizes.split(','):
        w, h = (int(v) for v in size.split('x'))
        row[size] = mb.bench(predictor, h, w, args.repeats, args.warmup)
    if sam2:  # per frame at 640x480; torch's own: gpu_check.sh's "tracker" step
        frames, skip = (2, 1) if args.quick else (args.track_frames, args.track_skip)
        row['track'] = [bench_track(predictor, mb.PROMPTS[:n], frames, skip) for n in (1, 2)]
    print(json.dumps(row), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
