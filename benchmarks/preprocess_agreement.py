"""How far preprocess="device" moves the masks from the exact path, on full-size models with
random weights (a measurement, not a test; tests use tiny models).

    flock /tmp/evf_fullsize.lock python benchmarks/preprocess_agreement.py --device cpu
    python benchmarks/preprocess_agreement.py --device cuda --dtype float16

For each SAM part (evf-sam: ViT-H, evf-sam2: Hiera-L) one random model; for both regimes of
it (plain and multitask), each size: the exact and the device predictor on the same frame and
prompt. Prints one JSON row per (variant, size): mask IoU, max|dlogit|/std(logits) and the
share of positive pixels (an IoU means little when nearly all or no pixels are positive).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_benchmark as mb  # noqa: E402
from gpu_suite import agreement  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--dtype', default='float32')
    parser.add_argument('--models', default='evf-sam2,evf-sam')
    parser.add_argument('--sizes', default='640x480,1280x720')
    parser.add_argument(
        '--quick', action='store_true', help='small models (Hiera-T / ViT-B, BEiT-3 base)'
    )
    args = parser.parse_args()
    for base in args.models.split(','):
        model = mb.random_full_model(base, args.device, scale='small' if args.quick else 'full')
        for variant in (base, base + '-multitask'):
            pair = {
                p: mb.predictor_for(
                    model, variant, args.dtype, copy_model=False, preprocess=p, text_buckets=None
                )
                for p in ('exact', 'device')
            }
            for size in args.sizes.split(','):
                w, h = (int(v) for v in size.split('x'))
                image = mb.test_image(h, w)
                start = time.perf_counter()
                exact = pair['exact'].predict(image, mb.PROMPTS[0])
                device = pair['device'].predict(image, mb.PROMPTS[0])
                row = {
                    'table': 'preprocess',
                    'variant': variant,
                    'image': size,
                    'dtype': args.dtype,
                    **agreement(device.logits, exact.logits),
                    'seconds': round(time.perf_counter() - start, 1),
                    'machine': mb.machine_name(torch.device(args.device)),
                    'torch': torch.__version__,
                    'weights': 'random (random_weights.py)',
                    'scale': 'small' if args.quick else 'full',
                }
                print(json.dumps(row), flush=True)
        del model
    return 0


if __name__ == '__main__':
    sys.exit(main())
