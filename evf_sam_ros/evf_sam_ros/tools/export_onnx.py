"""evf-sam-export: write a checkpoint's ONNX graphs and manifest for onnxruntime / TensorRT."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from evf_sam_ros.model.config import VARIANTS


def main(argv: list[str] | None = None) -> int:
    """Export the checkpoint ``argv`` names; returns 0, or 1 with the reason on stderr."""
    parser = argparse.ArgumentParser(
        prog='evf-sam-export',
        description='Export an EVF-SAM checkpoint (hub id or directory) as ONNX graphs: BEiT-3 '
        'fusion, image encoder, prompt encoder + mask decoder (and the track-mode graphs '
        'where a SAM2 checkpoint has them), weights as external data, plus manifest.json and '
        'the config/tokenizer files. The directory is what EvfSamPredictor.from_pretrained('
        '..., backend="onnxruntime" | "tensorrt", onnx_dir=OUT_DIR) opens.',
    )
    parser.add_argument('checkpoint', help='hub id (e.g. YxZhang/evf-sam2) or local directory')
    parser.add_argument('out_dir', help='directory to write (created if missing)')
    parser.add_argument(
        '--variant', choices=sorted(VARIANTS), help='decoding regime (default: detected)'
    )
    args = parser.parse_args(argv)
    from evf_sam_ros.model.accel.onnx.backend import export_checkpoint
    from evf_sam_ros.model.errors import EvfSamError

    start = time.perf_counter()
    try:
        manifest = export_checkpoint(
            args.checkpoint, Path(args.out_dir), args.variant, log=lambda m: print(m, flush=True)
        )
    except (EvfSamError, OSError) as exc:
        print(f'evf-sam-export: {exc}', file=sys.stderr)
        return 1
    graphs = manifest['graphs']
    for name, entry in graphs.items():
        shapes = {t['name']: t['shape'] for t in entry['inputs'] + entry['outputs']}
        print(f'  {name}: {entry["file"]} {json.dumps(shapes)}')
    print(
        f'wrote {len(graphs)} graphs of {args.checkpoint} ({manifest["variant"]}, opset '
        f'{manifest["opset"]}) to {args.out_dir} in {time.perf_counter() - start:.0f} s'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
