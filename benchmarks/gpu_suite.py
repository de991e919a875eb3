"""One variant in one mode over the dtypes: the rows of gpu_check.sh's table (a benchmark).

    python benchmarks/gpu_suite.py --variant evf-sam2 --mode graphs --device cuda --budget-s 120
    python benchmarks/gpu_suite.py --variant evf-sam2 --mode eager --device cpu --quick  # smoke

Builds the released architecture with random weights (random_weights.py) once in float32,
takes its reference mask (float32, eager, exact preprocessing, TF32 off), then for each dtype
builds the predictor of ``--mode`` (eager | graphs = CUDA graphs | compile = torch.compile +
CUDA graphs) with the default preprocessing of the device, and prints one JSON row: start
(cast, graphs, compilation, warm-up, first result; s), end-to-end and per-stage p50/p95 at
640x480 and 1280x720, 2nd prompt, 4 prompts, peak memory, mask IoU and max|dlogit|/std against
the reference. A dtype that does not fit in --budget-s is printed as skipped.
--dump-dir saves logits for official_benchmark.py's side-by-side check (gpu_table.py reads them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_benchmark as mb  # noqa: E402

MODES = {
    'eager': dict(cuda_graphs=False, torch_compile=False),
    'graphs': dict(cuda_graphs=True, torch_compile=False),
    'compile': dict(cuda_graphs=True, torch_compile=True),
}
COMPARE_SIZE = (480, 640)


def agreement(got: np.ndarray, want: np.ndarray) -> dict[str, float]:
    """Mask IoU (logits > 0) and max|dlogit|/std(reference logits) of two HxW logit maps."""
    a, b = got > 0, want > 0
    union = np.logical_or(a, b).sum()
    return {
        'iou': round(float(np.logical_and(a, b).sum() / union) if union else 1.0, 5),
        'rel_logit': round(float(np.abs(got - want).max() / want.std()), 5),
        'ref_positive_fraction': round(float(b.mean()), 4),
    }


def _why_not(mode: str, dtype: str, device: torch.device) -> str | None:
    """Why (mode, dtype) cannot run on ``device``, or None."""
    if mode == 'graphs' and device.type != 'cuda':
        return 'CUDA graphs need CUDA'
    if dtype == 'float16' and device.type != 'cuda':
        return 'float16 needs CUDA'
    return None


def _skip(args: argparse.Namespace, dtype: str, why: str) -> dict[str, Any]:
    return {
        'table': 'model',
        'variant': args.variant,
        'mode': args.mode,
        'dtype': dtype,
        'skipped': why,
    }


def run_dtype(
    model: Any, args: argparse.Namespace, dtype: str, reference: np.ndarray
) -> dict[str, Any]:
    """One row: build, warm up and time the predictor of (mode, dtype)."""
    device = next(model.parameters()).device
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    predictor = mb.predictor_for(model, args.variant, dtype, **MODES[args.mode])
    first = predictor.predict(mb.test_image(*COMPARE_SIZE), mb.PROMPTS[0])
    start_s = time.perf_counter() - start
    row: dict[str, Any] = {
        'table': 'model',
        'variant': args.variant,
        'mode': args.mode,
        'dtype': dtype,
        'preprocess': predictor.preprocess,
        'text_buckets': predictor.text_buckets,
        'start_s': round(start_s, 2),
        'vs_fp32_exact': agreement(first.logits, reference),
    }
    for size in args.sizes.split(','):
        w, h = (int(v) for v in size.split('x'))
        row[size] = mb.bench(predictor, h, w, args.repeats, args.warmup)
    if args.dump_dir:
        np.save(Path(args.dump_dir) / f'ours_{args.variant}_{args.mode}_{dtype}.npy', first.logits)
    predictor.release()
    return row


def reference_logits(model: Any, args: argparse.Namespace) -> np.ndarray:
    """float32, eager, exact preprocessing, TF32 off: the row's yardstick. With --dump-dir the
    multitask regime of the same weights is saved too (the regime official inference.py runs).
    """
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    image = mb.test_image(*COMPARE_SIZE)
    ref = mb.predictor_for(
        model, args.variant, 'float32', copy_model=False, preprocess='exact', text_buckets=None
    )
    logits = ref.predict(image, mb.PROMPTS[0]).logits
    if args.dump_dir:
        official = (
            args.variant if args.variant.endswith('multitask') else args.variant + '-multitask'
        )
        same = mb.predictor_for(
            model, official, 'float32', copy_model=False, preprocess='exact', text_buckets=None
        )
        np.save(
            Path(args.dump_dir) / f'ours_{official}_fp32_exact.npy',
            same.predict(image, mb.PROMPTS[0]).logits,
        )
    torch.backends.cuda.matmul.allow_tf32 = (
        True  # what the rows run with (the official code does too)
    )
    torch.backends.cudnn.allow_tf32 = True
    return logits


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--variant',
        required=True,
        choices=['evf-sam', 'evf-sam-multitask', 'evf-sam2', 'evf-sam2-multitask'],
    )
    parser.add_argument('--mode', required=True, choices=sorted(MODES))
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--dtypes', default='float16,bfloat16,float32')
    parser.add_argument('--sizes', default='640x480,1280x720')
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument(
        '--budget-s', type=float, default=1e9, help='start no dtype after this many seconds'
    )
    parser.add_argument(
        '--quick', action='store_true', help='small models (Hiera-T / ViT-B, BEiT-3 base)'
    )
    parser.add_argument('--compile-cache-dir', default=None)
    parser.add_argument('--dump-dir', default=None)
    args = parser.parse_args()
    began = time.perf_counter()
    if args.mode == 'compile':
        from evf_sam_ros.model.accel.compilation import use_cache_dir

        use_cache_dir(args.compile_cache_dir)
    device = torch.device(args.device)
    skips = {d: _why_not(args.mode, d, device) for d in args.dtypes.split(',')}
    model = reference = None
    for dtype, why in skips.items():
        if why is None and time.perf_counter() - began > args.budget_s:
            why = f'time budget of {args.budget_s:.0f} s spent'
        if why is not None:
            row = _skip(args, dtype, why)
        else:
            if model is None:
                model = mb.random_full_model(
                    args.variant, args.device, scale='small' if args.quick else 'full'
                )
                reference = reference_logits(model, args)
            row = run_dtype(model, args, dtype, reference)
        row.update(
            machine=mb.machine_name(device),
            torch=torch.__version__,
            weights='random (random_weights.py)',
            scale='small' if args.quick else 'full',
        )
        print(json.dumps(row), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
