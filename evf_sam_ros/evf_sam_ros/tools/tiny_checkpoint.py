"""evf-sam-tiny-checkpoint: write a tiny real-format checkpoint (random weights) for tests."""

from __future__ import annotations

import argparse
import sys

from evf_sam_ros.model.config import VARIANTS


def main(argv: list[str] | None = None) -> int:
    """Write the tiny checkpoint ``argv`` describes and print where; returns 0."""
    parser = argparse.ArgumentParser(
        prog='evf-sam-tiny-checkpoint',
        description='Write a checkpoint directory in the released layout (config.json, weights '
        'under the official key names, sentencepiece tokenizer) with tiny sizes and '
        'RANDOM weights: it exercises the real loading and inference code, its masks '
        'mean nothing.',
    )
    parser.add_argument('out_dir', help='directory to write (created if missing)')
    parser.add_argument('--variant', default='evf-sam2', choices=sorted(VARIANTS))
    parser.add_argument('--seed', type=int, default=0, help='random seed of the weights')
    parser.add_argument(
        '--image-size',
        type=int,
        default=1024,
        help='SAM input size (released models: 1024; smaller is faster for tests)',
    )
    parser.add_argument(
        '--fuser-scale-name',
        choices=('weight', 'gamma'),
        default='weight',
        help="SAM2 memory-encoder fuser scale key (EVF's file: weight; sam2: gamma)",
    )
    args = parser.parse_args(argv)
    from evf_sam_ros.synthetic.tiny_checkpoint import write_tiny_checkpoint

    out = write_tiny_checkpoint(
        args.out_dir,
        args.variant,
        seed=args.seed,
        image_size=args.image_size,
        fuser_scale_name=args.fuser_scale_name,
    )
    print(f'wrote tiny {args.variant} checkpoint (random weights) to {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
