"""evf-sam-segment: segment one image from a text prompt; print JSON, write mask and overlay
PNGs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from evf_sam_ros.model import DEFAULT_CHECKPOINT, VARIANTS, EvfSamError, InputImageError


def read_image(path: str | Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB. Raises InputImageError if missing or unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert('RGB'))
    except FileNotFoundError:
        raise InputImageError(f'image file {path} does not exist') from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputImageError(f'{path} is not a readable image ({exc})') from exc


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write an HxW (mono) or HxWx3 (RGB) uint8 array as PNG, creating parent folders."""
    from PIL import Image

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def build_parser() -> argparse.ArgumentParser:
    """Arguments of evf-sam-segment: checkpoint, image, prompt, output PNGs, device, dtype,
    variant.
    """
    parser = argparse.ArgumentParser(
        prog='evf-sam-segment', description='Segment what a text prompt names in one image.'
    )
    parser.add_argument(
        '--checkpoint',
        default=DEFAULT_CHECKPOINT,
        help=f'hub id or local checkpoint directory (default {DEFAULT_CHECKPOINT})',
    )
    parser.add_argument('--image', required=True, help='image file (PNG, JPEG, ...)')
    parser.add_argument('--prompt', required=True, help='referring expression, e.g. "the red mug"')
    parser.add_argument('--out-mask', help='write the mask here (mono PNG, 255 = target)')
    parser.add_argument('--out-overlay', help='write the image with the mask drawn on it (PNG)')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda, cuda:N')
    parser.add_argument('--dtype', default='auto', help='auto, float32, float16 (CUDA), bfloat16')
    parser.add_argument('--variant', choices=sorted(VARIANTS), help='force a preprocessing regime')
    return parser


def summary(result: Any, load_ms: float, predictor: Any) -> dict[str, Any]:
    """The JSON object printed for one result."""
    return {
        'prompt': result.prompt,
        'score': result.score,
        'object_score': result.object_score,
        'bbox': list(result.bbox) if result.bbox else None,
        'centroid': list(result.centroid) if result.centroid else None,
        'area': result.area,
        'latency_ms': {
            **{k: round(v, 2) for k, v in result.timings_ms.items()},
            'total': round(sum(result.timings_ms.values()), 2),
        },
        'load_ms': round(load_ms, 1),
        'variant': predictor.regime.name,
        'device': str(predictor.device),
        'dtype': str(predictor.dtype).replace('torch.', ''),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Load, predict, write the pictures; return the summary."""
    from evf_sam_ros.model import EvfSamPredictor
    from evf_sam_ros.pipeline.drawing import draw_result

    image = read_image(args.image)
    start = time.perf_counter()
    predictor = EvfSamPredictor.from_pretrained(
        args.checkpoint, args.device, args.dtype, args.variant
    )
    load_ms = (time.perf_counter() - start) * 1000.0
    result = predictor.predict(image, args.prompt)
    if args.out_mask:
        write_png(args.out_mask, result.mask.astype(np.uint8) * 255)
    if args.out_overlay:
        write_png(args.out_overlay, draw_result(image, result))
    return summary(result, load_ms, predictor)


def main(argv: list[str] | None = None) -> int:
    """Segment as ``argv`` says and print the summary as JSON; returns 0, or 2 on an
    EvfSamError (message on stderr).
    """
    args = build_parser().parse_args(argv)
    try:
        print(json.dumps(run(args)))
    except EvfSamError as exc:
        print(f'evf-sam-segment: error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
