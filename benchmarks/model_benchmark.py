"""Per-stage latency and peak memory of EvfSamPredictor (a benchmark, not a test).

    python benchmarks/model_benchmark.py --checkpoint YxZhang/evf-sam2 --device cuda
    python benchmarks/model_benchmark.py --random-full evf-sam2 --device cuda  # no weights needed
    python benchmarks/model_benchmark.py --random-full evf-sam2 --device cuda --cuda-graphs \
        --compile --preprocess device

--random-full builds the released architecture at full size with random weights
(benchmarks/random_weights.py, on the target device, no download): for timing only, its masks
mean nothing. Prints one JSON object per image size: p50 and p95 ms end to end (numpy image in,
numpy mask out) and per stage (preprocess, image_encoder, beit3, decoder, postprocess), a
second prompt on an encoded frame, four prompts in one predict_many call, and peak memory.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from random_weights import fill_random  # noqa: E402

PROMPTS = (
    'the red mug left of the plate',
    'the white plate',
    'the bottle behind the bowl',
    'the person on the right',
)


def model_config(variant: str, scale: str = 'full') -> Any:
    """EvfConfig of ``variant``: "full" = the released sizes (SAM ViT-H or SAM2 Hiera-L,
    BEiT-3 large); "small" = SAM ViT-B or SAM2 Hiera-T with BEiT-3 base, the smallest the
    official code builds (sam_scale "tiny", mm_extractor_scale "base"), for CPU smoke runs.
    """
    from evf_sam_ros.model.config import get_variant, parse_config

    sam2 = get_variant(variant).sam_type == 'sam2'
    if scale == 'full':
        raw = {
            'sam_scale': 'large' if sam2 else 'huge',
            'mm_extractor_scale': 'large',
            'hidden_size': 1024,
        }
    elif scale == 'small':
        raw = {
            'sam_scale': 'tiny' if sam2 else 'base',
            'mm_extractor_scale': 'base',
            'hidden_size': 768,
        }
        if not sam2:
            raw['sam_type'] = 'sam'
    else:
        raise ValueError(f'scale must be full or small, got {scale!r}')
    return parse_config({'model_type': 'evf', 'out_dim': 256, **raw})


def random_full_model(variant: str, device: str, seed: int = 0, scale: str = 'full') -> Any:
    """Released architecture of ``variant`` (model_config ``scale``) in float32 on ``device``,
    random weights (random_weights.fill_random ``seed``).
    """
    from evf_sam_ros.model.network.evf_model import EvfSamModel
    from evf_sam_ros.model.predictor import resolve_device

    dev = resolve_device(device)
    cfg = model_config(variant, scale)
    model = EvfSamModel(cfg, device='meta').to_empty(device=dev)
    fill_random(model, seed)
    with torch.no_grad():
        for name, values in (
            ('pixel_mean', (123.675, 116.28, 103.53)),
            ('pixel_std', (58.395, 57.12, 57.375)),
        ):
            model.visual_model.register_buffer(
                name, torch.tensor(values, device=dev).view(-1, 1, 1), persistent=False
            )
    return model.eval().requires_grad_(False)


def predictor_for(
    model: Any, variant: str, dtype: str, copy_model: bool = True, **options: Any
) -> Any:
    """EvfSamPredictor on ``model`` (a float32 random_full_model) cast to ``dtype``, with the
    from_pretrained options (cuda_graphs, preprocess, torch_compile, text_buckets) and its
    warm-up rule (on when CUDA graphs or compile are on).
    """
    import tempfile

    from evf_sam_ros.model.config import get_variant
    from evf_sam_ros.model.predictor import EvfSamPredictor, resolve_dtype
    from evf_sam_ros.model.tokenizer import EvfTokenizer
    from evf_sam_ros.synthetic.tiny_checkpoint import train_tokenizer

    dev = next(model.parameters()).device
    dt = resolve_dtype(dtype, dev)
    model = (copy.deepcopy(model) if copy_model else model).to(dtype=dt)
    model.keep_fp32_islands()
    path = Path(tempfile.mkdtemp()) / 'sentencepiece.bpe.model'
    path.write_bytes(train_tokenizer())
    options.setdefault('preprocess', 'auto')
    options.setdefault('text_buckets', 'auto')
    predictor = EvfSamPredictor(
        model,
        EvfTokenizer(path),
        get_variant(variant),
        dev,
        dt,
        name=f'random-full {variant}',
        **options,
    )
    if predictor.cuda_graphs or predictor.torch_compile:
        predictor.warmup(prompt_counts=(1, len(PROMPTS)))
    return predictor


def random_full_predictor(
    variant: str, device: str, dtype: str, cuda_graphs: bool = False, **options: Any
) -> Any:
    """Full-size released architecture, random weights, built directly on the device."""
    return predictor_for(
        random_full_model(variant, device),
        variant,
        dtype,
        copy_model=False,
        cuda_graphs=cuda_graphs,
        **options,
    )


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 and p95 of ``values`` (the package's one definition, ``stats.percentile``),
    rounded to 0.01.
    """
    from evf_sam_ros.pipeline.stats import percentile

    return {'p50': round(percentile(values, 50), 2), 'p95': round(percentile(values, 95), 2)}


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated by torch (CUDA) or the process's peak RSS (CPU), MB."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1000.0, out


def test_image(height: int, width: int) -> np.ndarray:
    """A fixed HxWx3 uint8 scene: colour blocks and noise (seeded)."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3)).astype(np.float32)
    image = np.kron(blocks, np.ones((16, 16, 1)))[:height, :width] + rng.normal(
        0, 8, (height, width, 3)
    )
    return np.clip(image, 0, 255).astype(np.uint8)


def bench(predictor: Any, height: int, width: int, repeats: int, warmup: int) -> dict[str, Any]:
    """Time ``repeats`` predictions; a second prompt's decode on an encoded frame; four prompts
    in one predict_many call. All times in ms, p50/p95.
    """
    image = test_image(height, width)
    for _ in range(warmup):
        predictor.predict(image, PROMPTS[0])
        predictor.predict_many(image, list(PROMPTS))
    if predictor.device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(predictor.device)
    stages: dict[str, list[float]] = {}
    totals, seconds, fours = [], [], []
    for _ in range(repeats):
        ms, result = _timed(lambda: predictor.predict(image, PROMPTS[0]))
        totals.append(ms)
        for k, v in result.timings_ms.items():
            stages.setdefault(k, []).append(v)
        embedding = predictor.encode_image(image)  # a frame already encoded, as in predict_many
        seconds.append(_timed(lambda: predictor.decode(embedding, PROMPTS[1]))[0])
        fours.append(_timed(lambda: predictor.predict_many(image, list(PROMPTS)))[0])
    return {
        'image': f'{width}x{height}',
        'end_to_end_ms': percentiles(totals),
        'stages_ms': {k: percentiles(v) for k, v in stages.items()},
        'second_prompt_ms': percentiles(seconds),
        'four_prompts_ms': percentiles(fours),
        'peak_memory_mb': round(peak_memory_mb(predictor.device), 1),
    }


def machine_name(device: torch.device) -> str:
    """The GPU's name, or the CPU and torch's thread count."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads'


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--checkpoint', help='hub id or checkpoint directory')
    source.add_argument(
        '--random-full', choices=['evf-sam', 'evf-sam-multitask', 'evf-sam2', 'evf-sam2-multitask']
    )
    parser.add_argument('--device', default='auto')
    parser.add_argument('--dtype', default='auto')
    parser.add_argument('--sizes', default='640x480,1280x720', help='comma-separated WxH')
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument(
        '--threads', type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    parser.add_argument(
        '--cuda-graphs', action='store_true', help='replay model parts as CUDA graphs'
    )
    parser.add_argument('--preprocess', default='auto', choices=['auto', 'exact', 'device'])
    parser.add_argument(
        '--compile', action='store_true', help='torch.compile (inductor) the model parts'
    )
    parser.add_argument('--compile-cache-dir', default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from evf_sam_ros.model import EvfSamPredictor

    options = dict(
        cuda_graphs=args.cuda_graphs, preprocess=args.preprocess, torch_compile=args.compile
    )
    start = time.perf_counter()
    if args.checkpoint:
        predictor = EvfSamPredictor.from_pretrained(
            args.checkpoint,
            args.device,
            args.dtype,
            compile_cache_dir=args.compile_cache_dir,
            **options,
        )
    else:
        if args.compile:
            from evf_sam_ros.model.accel.compilation import use_cache_dir

            use_cache_dir(args.compile_cache_dir)
        predictor = random_full_predictor(args.random_full, args.device, args.dtype, **options)
    load_s = time.perf_counter() - start
    for size in args.sizes.split(','):
        w, h = (int(v) for v in size.split('x'))
        row = bench(predictor, h, w, args.repeats, args.warmup)
        row.update(
            model=predictor.name,
            variant=predictor.regime.name,
            device=str(predictor.device),
            cuda_graphs=predictor.cuda_graphs,
            preprocess=predictor.preprocess,
            torch_compile=predictor.torch_compile,
            dtype=str(predictor.dtype).replace('torch.', ''),
            machine=machine_name(predictor.device),
            load_s=round(load_s, 1),
            torch=torch.__version__,
        )
        print(json.dumps(row), flush=True)


if __name__ == '__main__':
    main()
