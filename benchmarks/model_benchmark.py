"""Per-stage latency and peak memory of EvfSamPredictor (a benchmark, not a test).

    python benchmarks/model_benchmark.py --checkpoint YxZhang/evf-sam2 --device cuda --dtype float16
    python benchmarks/model_benchmark.py --random-full evf-sam2 --device cuda   # no weights needed

--random-full builds the released architecture at full size with random weights (on the
target device, no download): for timing only, its masks mean nothing. Prints one JSON object
per configuration: median and p90 ms per stage (preprocess, image_encoder, beit3, decoder,
postprocess), the cost of a second prompt on the same frame, and peak memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from typing import Any

import numpy as np
import torch


def random_full_predictor(variant: str, device: str, dtype: str, cuda_graphs: bool = False) -> Any:
    """Full-size released architecture, random weights, built directly on the device."""
    import tempfile
    from pathlib import Path

    from evf_sam_ros.model.config import get_variant, parse_config
    from evf_sam_ros.model.evf_model import EvfSamModel
    from evf_sam_ros.model.predictor import EvfSamPredictor, resolve_device, resolve_dtype
    from evf_sam_ros.model.tiny import train_tokenizer
    from evf_sam_ros.model.tokenizer import EvfTokenizer

    regime = get_variant(variant)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    cfg = parse_config({"model_type": "evf", "hidden_size": 1024, "out_dim": 256, "mm_extractor_scale": "large",
                        "sam_scale": "large" if regime.sam_type == "sam2" else "huge"})
    model = EvfSamModel(cfg, device="meta").to_empty(device=dev)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
        for name, b in model.named_buffers():
            b.normal_(0.0, 1.0) if "gaussian" in name else b.zero_()
        model.visual_model.register_buffer("pixel_mean", torch.zeros(3, 1, 1, device=dev), persistent=False)
        model.visual_model.register_buffer("pixel_std", torch.ones(3, 1, 1, device=dev), persistent=False)
    model = model.to(dtype=dt).eval().requires_grad_(False)
    model.keep_fp32_islands()
    path = Path(tempfile.mkdtemp()) / "sentencepiece.bpe.model"
    path.write_bytes(train_tokenizer())
    return EvfSamPredictor(model, EvfTokenizer(path), regime, dev, dt, name=f"random-full {variant}",
                           cuda_graphs=cuda_graphs)


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 2),
            "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 2)}


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def bench(predictor: Any, height: int, width: int, repeats: int, warmup: int) -> dict[str, Any]:
    """Time ``repeats`` predictions, and a second prompt's decode on an encoded frame."""
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    prompts = ["the red mug left of the plate", "the white plate"]
    for _ in range(warmup):
        predictor.predict(image, prompts[0])
    if predictor.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(predictor.device)
    stages: dict[str, list[float]] = {}
    totals, seconds = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = predictor.predict(image, prompts[0])
        totals.append((time.perf_counter() - start) * 1000)
        for k, v in result.timings_ms.items():
            stages.setdefault(k, []).append(v)
        embedding = predictor.encode_image(image)  # a frame already encoded, as in predict_many
        start = time.perf_counter()
        predictor.decode(embedding, prompts[1])
        seconds.append((time.perf_counter() - start) * 1000)
    return {"image": f"{width}x{height}", "end_to_end_ms": _percentiles(totals),
            "stages_ms": {k: _percentiles(v) for k, v in stages.items()},
            "second_prompt_ms": _percentiles(seconds),
            "peak_memory_mb": round(_peak_memory_mb(predictor.device), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="hub id or checkpoint directory")
    source.add_argument("--random-full", choices=["evf-sam", "evf-sam-multitask", "evf-sam2", "evf-sam2-multitask"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--sizes", default="640x480,1280x720", help="comma-separated WxH")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--cuda-graphs", action="store_true", help="replay model parts as CUDA graphs")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from evf_sam_ros.model import EvfSamPredictor

    start = time.perf_counter()
    if args.checkpoint:
        predictor = EvfSamPredictor.from_pretrained(args.checkpoint, args.device, args.dtype,
                                                    cuda_graphs=args.cuda_graphs)
    else:
        predictor = random_full_predictor(args.random_full, args.device, args.dtype, args.cuda_graphs)
    load_s = time.perf_counter() - start
    machine = (torch.cuda.get_device_name(predictor.device) if predictor.device.type == "cuda"
               else f"{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads")
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        row = bench(predictor, h, w, args.repeats, args.warmup)
        row.update(model=predictor.name, variant=predictor.regime.name, device=str(predictor.device),
                   cuda_graphs=predictor.cuda_graphs,
                   dtype=str(predictor.dtype).replace("torch.", ""), machine=machine, load_s=round(load_s, 1),
                   torch=torch.__version__)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
