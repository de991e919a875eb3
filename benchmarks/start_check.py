r"""Process start to first result, the way a node configures (a benchmark).

    python benchmarks/start_check.py --write-checkpoint /tmp/ckpt --variant evf-sam2   # once
    python benchmarks/start_check.py --checkpoint /tmp/ckpt --compile --cache-dir /tmp/cc \
        --label cold --t0 "$(date +%s.%N)"

The checkpoint is the released architecture with random weights in the released file format
(written once; loading it is part of the time). --t0 is the shell's clock when it started the
process, so imports count. Run twice with one fresh --cache-dir: the first is a cold start,
the second a warm restart (compile cache filled). Prints one JSON row.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--variant', default='evf-sam2')
    parser.add_argument(
        '--write-checkpoint', metavar='DIR', help='write the random checkpoint and exit'
    )
    parser.add_argument('--checkpoint', metavar='DIR')
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--dtype', default='auto')
    parser.add_argument('--compile', action='store_true')
    parser.add_argument('--no-graphs', action='store_true')
    parser.add_argument('--cache-dir', default=None)
    parser.add_argument('--label', default='')
    parser.add_argument(
        '--t0', type=float, default=None, help='process start, seconds since the epoch'
    )
    parser.add_argument(
        '--quick', action='store_true', help='small models (Hiera-T / ViT-B, BEiT-3 base)'
    )
    args = parser.parse_args()
    t0 = args.t0 or time.time()
    import model_benchmark as mb
    import torch

    from evf_sam_ros.model import EvfSamPredictor

    if args.write_checkpoint:
        from evf_sam_ros.synthetic.tiny_checkpoint import write_random_checkpoint

        model = mb.random_full_model(
            args.variant, args.device, scale='small' if args.quick else 'full'
        )
        write_random_checkpoint(args.write_checkpoint, args.variant, model.state_dict(), model.cfg)
        return 0
    imported = time.time()
    predictor = EvfSamPredictor.from_pretrained(
        args.checkpoint,
        args.device,
        args.dtype,
        variant=args.variant,
        cuda_graphs=not args.no_graphs,
        torch_compile=args.compile,
        compile_cache_dir=args.cache_dir,
    )
    loaded = time.time()
    predictor.predict(mb.test_image(480, 640), mb.PROMPTS[0])
    done = time.time()
    row = {
        'table': 'start',
        'variant': args.variant,
        'label': args.label,
        'mode': 'compile' if args.compile else ('eager' if args.no_graphs else 'graphs'),
        'dtype': str(predictor.dtype).replace('torch.', ''),
        'preprocess': predictor.preprocess,
        'process_to_first_result_s': round(done - t0, 2),
        'imports_s': round(imported - t0, 2),
        'from_pretrained_s': round(loaded - imported, 2),
        'first_frame_ms': round((done - loaded) * 1000, 1),
        'machine': mb.machine_name(predictor.device),
        'torch': torch.__version__,
    }
    print(json.dumps(row), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
