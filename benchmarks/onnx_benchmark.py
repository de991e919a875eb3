"""torch vs onnxruntime on the same full-size model, side by side in one run (issue 15).

    python benchmarks/onnx_benchmark.py --variants evf-sam2 evf-sam --repeats 3

For each variant: the released architecture at full size with seeded random weights
(model_benchmark.random_full_model, float32, CPU), exported with the project's exporter
(graphs + manifest, timed), then a torch predictor on that model and an onnxruntime
predictor on the export segment the same 640x480 frame. Prints one JSON object per variant:
agreement (logits max|diff| / std and mask IoU, 1 and 4 prompts), export seconds, and p50 of
end to end and of each stage (preprocess, image_encoder, beit3, decoder, postprocess) per
backend, the two backends interleaved so that load changes hit both alike.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_benchmark import (  # noqa: E402
    PROMPTS,
    machine_name,
    percentiles,
    predictor_for,
    random_full_model,
    test_image,
)


def export_random(model, variant: str, out_dir: Path, seed: int) -> float:
    """Export ``model`` with config.json and a tokenizer into out_dir; seconds (0 if there)."""
    from evf_sam_ros.model.accel.onnx.export import MANIFEST, export_model
    from evf_sam_ros.model.config import get_variant
    from evf_sam_ros.model.tokenizer import SP_MODEL_FILE
    from evf_sam_ros.synthetic.tiny_checkpoint import train_tokenizer

    if (out_dir / MANIFEST).is_file():
        return 0.0
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'config.json').write_text(json.dumps(model.cfg.to_json_dict()))
    (out_dir / SP_MODEL_FILE).write_bytes(train_tokenizer())
    start = time.perf_counter()
    checkpoint = {'name': f'random-full {variant} seed {seed}', 'sha256': None}
    export_model(model, get_variant(variant), out_dir, checkpoint, log=print)
    return time.perf_counter() - start


def agreement(ref, got) -> dict[str, float]:
    """Worst logits max|diff| / std and worst mask IoU over the prompts."""
    worst_diff, worst_iou = 0.0, 1.0
    for a, b in zip(ref, got):
        worst_diff = max(worst_diff, float(np.abs(a.logits - b.logits).max() / a.logits.std()))
        union = np.count_nonzero(a.mask | b.mask)
        iou = np.count_nonzero(a.mask & b.mask) / union if union else 1.0
        worst_iou = min(worst_iou, iou)
    return {'max_diff_over_std': worst_diff, 'mask_iou': worst_iou}


def run_variant(variant: str, export_root: Path, repeats: int, seed: int) -> dict:
    """Export, agreement and interleaved timing of one variant (see the module docstring)."""
    from evf_sam_ros.model import EvfSamPredictor

    model = random_full_model(variant, 'cpu', seed)
    out_dir = export_root / variant
    export_s = export_random(model, variant, out_dir, seed)
    backends = {
        'torch': predictor_for(
            model, variant, 'float32', copy_model=False, preprocess='exact', text_buckets=None
        ),
        'onnxruntime': EvfSamPredictor.from_pretrained(
            out_dir, device='cpu', backend='onnxruntime'
        ),
    }
    image = test_image(480, 640)
    report = {'variant': variant, 'export_s': round(export_s, 1), 'agreement': {}}
    for count in (1, 4):
        ref, got = (p.predict_many(image, list(PROMPTS[:count])) for p in backends.values())
        report['agreement'][f'{count}_prompts'] = agreement(ref, got)
    times: dict[str, dict[str, list[float]]] = {name: {} for name in backends}
    for _ in range(repeats):
        for name, predictor in backends.items():
            start = time.perf_counter()
            result = predictor.predict(image, PROMPTS[0])
            times[name].setdefault('end_to_end', []).append((time.perf_counter() - start) * 1000.0)
            for stage, ms in result.timings_ms.items():
                times[name].setdefault(stage, []).append(ms)
    report['ms'] = {
        name: {k: percentiles(v)['p50'] for k, v in stages.items()}
        for name, stages in times.items()
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--variants', nargs='+', default=['evf-sam2', 'evf-sam'])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--export-root', type=Path, default=Path('/tmp/evf-onnx-bench'))
    args = parser.parse_args()
    import torch

    print(json.dumps({'machine': machine_name(torch.device('cpu')), 'torch': torch.__version__}))
    for variant in args.variants:
        print(json.dumps(run_variant(variant, args.export_root, args.repeats, args.seed)))
        gc.collect()


if __name__ == '__main__':
    main()
