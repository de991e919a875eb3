"""GPU checks on tiny real-format checkpoints (run on a CUDA machine; a check, not a unit test).

For each variant: CUDA float32 with the CUDA defaults (device preprocessing, text buckets,
CUDA graphs) must agree with CPU float32 (exact preprocessing, exact lengths); CUDA float16
and bfloat16 must give finite logits with the official fp32 islands kept (SAM ViT neck in
fp32). Prints one JSON line per variant and exits non-zero when a check fails.
"""

from __future__ import annotations

import json
import sys
import tempfile

import numpy as np
import torch

from evf_sam_ros.model import VARIANTS, EvfSamPredictor
from evf_sam_ros.synthetic.tiny_checkpoint import write_tiny_checkpoint


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def check(variant: str, image: np.ndarray) -> dict:
    ckpt = write_tiny_checkpoint(tempfile.mkdtemp(), variant, image_size=1024)
    prompt = 'the red mug left of the plate'
    ref = EvfSamPredictor.from_pretrained(ckpt, 'cpu', 'float32').predict(image, prompt)
    row: dict = {'table': 'correctness', 'variant': variant}
    for dtype in ('float32', 'float16', 'bfloat16'):  # the defaults users get: CUDA graphs on
        predictor = EvfSamPredictor.from_pretrained(ckpt, 'cuda', dtype)
        assert predictor.cuda_graphs
        out = predictor.predict(image, prompt)
        diff = float(np.abs(out.logits - ref.logits).max())
        row[dtype] = {
            'max_abs_logit_diff_vs_cpu': round(diff, 5),
            'mask_iou_vs_cpu': round(iou(out.mask, ref.mask), 4),
            'finite': bool(np.isfinite(out.logits).all()),
            'score': round(out.score, 4),
        }
        if predictor.model.cfg.sam_type == 'sam':
            row[dtype]['neck_fp32'] = all(
                p.dtype == torch.float32
                for p in predictor.model.visual_model.image_encoder.neck.parameters()
            )
        predictor.release()
    graphed = EvfSamPredictor.from_pretrained(ckpt, 'cuda', 'float16', cuda_graphs=True)
    eager = EvfSamPredictor.from_pretrained(ckpt, 'cuda', 'float16', cuda_graphs=False)
    prompts = [prompt, 'the plate', prompt]  # a repeated prompt replays its BEiT-3 graph
    diffs = [
        float(np.abs(g.logits - e.logits).max())
        for _ in range(2)
        for g, e in zip(graphed.predict_many(image, prompts), eager.predict_many(image, prompts))
    ]
    row['cuda_graphs_vs_eager_fp16_max_abs_diff'] = round(max(diffs), 6)
    row['ok'] = (
        row['float32']['max_abs_logit_diff_vs_cpu'] < 1e-2
        and max(diffs) < 1e-2
        and all(
            row[d]['finite'] and row[d].get('neck_fp32', True) for d in ('float16', 'bfloat16')
        )
    )
    return row


def main() -> int:
    torch.backends.cuda.matmul.allow_tf32 = False  # compare fp32 with fp32
    torch.backends.cudnn.allow_tf32 = False
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    rows = [check(v, image) for v in sorted(VARIANTS)]
    for row in rows:
        print(json.dumps(row), flush=True)
    return 0 if all(r['ok'] for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
