"""The official EVF-SAM inference path, timed like ours (a benchmark; the official code is
not part of this project: benchmarks/stage_device.sh copies it into .gpu_stage/EVF-SAM).

    python benchmarks/official_benchmark.py --variant evf-sam2 --device cuda
    python benchmarks/official_benchmark.py --variant evf-sam2 --device cpu --quick

What is timed is inference.py's own steps, called from its module: beit3_preprocess,
sam_preprocess, the copies to the device, the token ids, ``model.inference`` and the mask
back as numpy, with inference.py's settings on CUDA (fp16 weights, fp16 autocast, TF32).
Weights are random but identical to ours (random_weights.fill_random by name), so
gpu_table.py also compares the official masks with ours. At HEAD, inference.py decodes
evf-sam2 with the multitask regime (uint8 stretch, best of 3 masks) and uses plain bicubic for
BEiT-3 in both models: our evf-sam*-multitask regimes. Prints one JSON row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import model_benchmark as mb  # noqa: E402
from random_weights import fill_random  # noqa: E402

DEFAULT_DIR = HERE.parent / '.gpu_stage' / 'EVF-SAM'


def build_official(variant: str, scale: str, device: torch.device) -> Any:
    """The official EvfSam2Model / EvfSamModel (float32, random weights) on ``device``."""
    from model.configuration_evf import EvfConfig

    sam2 = variant.startswith('evf-sam2')
    if scale == 'small' and not sam2:
        raise SystemExit(
            'the official evf-sam code builds SAM ViT-H only: use --variant evf-sam2 with --quick'
        )
    sizes = dict(
        hidden_size=1024, mm_extractor_scale='large', sam_scale='large' if sam2 else 'huge'
    )
    if scale == 'small':
        sizes = dict(hidden_size=768, mm_extractor_scale='base', sam_scale='tiny')
    config = EvfConfig(out_dim=256, **sizes)
    if sam2:
        from model.evf_sam2 import EvfSam2Model as Model
    else:
        from model.evf_sam import EvfSamModel as Model
    with torch.device(device):
        model = Model(config)
    fill_random(model, 0)
    return model.eval()


def official_step(
    inference: Any, model: Any, ids: list[int], model_type: str
) -> Callable[[np.ndarray], Any]:
    """One frame the way inference.py's main() runs it: numpy RGB in, HxW bool mask out."""

    def run(image: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        image_beit = inference.beit3_preprocess(image, 224).to(
            dtype=model.dtype, device=model.device
        )
        image_sam, resize_shape = inference.sam_preprocess(image, model_type=model_type)
        image_sam = image_sam.to(dtype=model.dtype, device=model.device)
        input_ids = torch.tensor([ids], device=model.device)
        pred = model.inference(
            image_sam.unsqueeze(0),
            image_beit.unsqueeze(0),
            input_ids,
            resize_list=[resize_shape],
            original_size_list=[image.shape[:2]],
        )
        return pred.detach().cpu().numpy()[0] > 0, pred

    return run


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--variant', required=True, choices=['evf-sam', 'evf-sam2'])
    parser.add_argument('--device', default='cuda')
    parser.add_argument(
        '--official-dir', default=os.environ.get('EVF_SAM_OFFICIAL_DIR', str(DEFAULT_DIR))
    )
    parser.add_argument('--sizes', default='640x480,1280x720')
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--quick', action='store_true', help='small models (Hiera-T, BEiT-3 base)')
    parser.add_argument('--dump-dir', default=None)
    args = parser.parse_args()
    official = Path(args.official_dir).resolve()
    if not (official / 'inference.py').is_file():
        raise SystemExit(f'no official code in {official}: run benchmarks/stage_device.sh first')
    from evf_sam_ros.model.tokenizer import EvfTokenizer
    from evf_sam_ros.synthetic.tiny_checkpoint import train_tokenizer

    tokenizer_file = Path(args.dump_dir or '/tmp') / 'official_bench_sentencepiece.bpe.model'
    tokenizer_file.write_bytes(train_tokenizer())
    ids = EvfTokenizer(tokenizer_file).encode(mb.PROMPTS[0])
    os.chdir(official)  # its sam2 copy finds its Hydra configs relative to the repository root
    sys.path.insert(0, str(official))
    import inference

    device = torch.device(args.device)
    model = build_official(args.variant, 'small' if args.quick else 'full', device)
    model_type = 'sam2' if args.variant == 'evf-sam2' else 'ori'
    image = mb.test_image(480, 640)
    if args.dump_dir:  # float32, TF32 off: the official answer for these weights
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        fp32 = official_step(inference, model, ids, model_type)(image)[1]
        np.save(
            Path(args.dump_dir) / f'official_{args.variant}_fp32.npy',
            fp32[0].detach().float().cpu().numpy(),
        )
    cuda = device.type == 'cuda'
    dtype = torch.float16 if cuda else torch.float32
    if cuda:  # inference.py: fp16 weights, fp16 autocast for everything, TF32 on Ampere and later
        model = model.to(dtype)
        torch.autocast(device_type='cuda', dtype=torch.float16).__enter__()
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats(device)
    step = official_step(inference, model, ids, model_type)
    row: dict[str, Any] = {
        'table': 'official',
        'variant': args.variant,
        'dtype': str(dtype).replace('torch.', ''),
        'code': (official / 'COMMIT').read_text().strip()
        if (official / 'COMMIT').is_file()
        else 'unknown commit',
        'machine': mb.machine_name(device),
        'torch': torch.__version__,
        'weights': 'random (random_weights.py), the same as ours',
    }
    for size in args.sizes.split(','):
        w, h = (int(v) for v in size.split('x'))
        frame = mb.test_image(h, w)
        for _ in range(args.warmup):
            step(frame)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            mask, pred = step(frame)
            times.append((time.perf_counter() - start) * 1000.0)
        row[size] = {'end_to_end_ms': mb.percentiles(times)}
        if args.dump_dir and size == '640x480':
            np.save(
                Path(args.dump_dir) / f'official_{args.variant}_{row["dtype"]}.npy',
                pred[0].detach().float().cpu().numpy(),
            )
    row['peak_memory_mb'] = round(mb.peak_memory_mb(device), 1)
    print(json.dumps(row), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
