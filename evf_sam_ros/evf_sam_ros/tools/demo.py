"""`make demo`: the main job end to end on bundled data.

1. Segment the bundled sample image ("the red mug left of the plate") -> mask + overlay PNGs.
2. Make the synthetic sample bag (once), start evf_sam_node as `ros2 run` would, replay the
   bag onto its topics in live mode and print the report (frames, drops, found rate,
   latency, IoU against ground truth, 3D targets).

The default checkpoint comes from the Hugging Face hub (cached). Where the hub cannot be
reached the demo stops and says how to run offline (`make demo CHECKPOINT=<dir>`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from evf_sam_ros.install_layout import executable
from evf_sam_ros.model import DEFAULT_CHECKPOINT, EvfSamError, HubUnavailableError
from evf_sam_ros.model.checkpoint import resolve_checkpoint

PROMPT = 'the red mug left of the plate'
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_IMAGE = PACKAGE_ROOT / 'data' / 'sample_tabletop.png'
NAMESPACE = '/demo'


def segment_sample(checkpoint: Path, device: str, out: Path) -> dict:
    """Step 1: evf-sam-segment on the bundled image; writes sample_mask.png and
    sample_overlay.png.
    """
    from evf_sam_ros.tools.segment import build_parser, run

    summary = run(
        build_parser().parse_args(
            [
                '--checkpoint',
                str(checkpoint),
                '--image',
                str(SAMPLE_IMAGE),
                '--prompt',
                PROMPT,
                '--device',
                device,
                '--out-mask',
                str(out / 'sample_mask.png'),
                '--out-overlay',
                str(out / 'sample_overlay.png'),
            ]
        )
    )
    print(json.dumps(summary))
    print(f'wrote {out / "sample_mask.png"} and {out / "sample_overlay.png"}')
    return summary


def sample_bag(out: Path, frames: int) -> Path:
    """Step 2a: the synthetic sample bag (made once per frame count, reused)."""
    from evf_sam_ros.replay.sample_bag import write_sample_bag

    bag = out / f'sample_bag_{frames}'
    if not (bag / 'metadata.yaml').is_file():
        shutil.rmtree(bag, ignore_errors=True)  # an earlier demo stopped while writing it
        print(f'making the sample bag in {bag} (once)')
        write_sample_bag(bag, storage='mcap', frames=frames)
    return bag


def start_node(checkpoint: Path, device: str, out: Path) -> subprocess.Popen:
    """Step 2b: evf_sam_node in its own process, as `ros2 run evf_sam_ros evf_sam_node` runs it."""
    node = executable('evf_sam_node')  # the install's own: lib/evf_sam_ros/ (colcon) or bin/
    log = open(out / 'node.log', 'w')
    cmd = [
        str(node),
        '--ros-args',
        '-r',
        f'__ns:={NAMESPACE}',
        '-p',
        f'checkpoint:={checkpoint}',
        '-p',
        f'device:={device}',
        '-p',
        'score_threshold:=0.5',
    ]
    print(f'starting evf_sam_node in {NAMESPACE} (log: {out / "node.log"})')
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """In the node's process: get SIGTERM when the demo dies, even by SIGKILL (Linux), so no
    node is left running in the background.
    """
    import ctypes

    try:
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        return  # not Linux: the finally block in main() still stops the node


def replay_live(bag: Path, out: Path, on_gpu: bool) -> int:
    """Step 2c: play the bag against the node and print the report."""
    from evf_sam_ros.replay.cli import main as replay_main

    grace = '10' if on_gpu else '600'  # a CPU forward pass of the real model takes ~1 min
    return replay_main(
        [
            str(bag),
            '--output',
            str(out / 'replay'),
            '--live',
            '--namespace',
            NAMESPACE,
            '--wait-for-node',
            '900',
            '--grace',
            grace,
            '--overwrite',
        ]
    )


def offline_message(exc: HubUnavailableError, checkpoint: str) -> str:
    """The message when the checkpoint cannot be downloaded: the cause's exception type and
    the offline ways (CHECKPOINT=<directory>, a tiny random-weight checkpoint).
    """
    cause = type(exc.__cause__).__name__ if exc.__cause__ else 'HubUnavailableError'
    return (
        f'make demo: the checkpoint {checkpoint} cannot be downloaded from the Hugging Face '
        f'hub here ({cause}).\n'
        'Offline: make demo CHECKPOINT=<checkpoint directory>. To try the pipeline without '
        'real weights: .venv/bin/evf-sam-tiny-checkpoint /tmp/evf-tiny --variant evf-sam2 && '
        'make demo CHECKPOINT=/tmp/evf-tiny (random weights: the masks mean nothing).'
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo steps (segment, sample bag, node, live replay). Returns 2 if step 1
    fails (no download, model error), else the live replay's exit code.
    """
    parser = argparse.ArgumentParser(
        prog='evf-sam-demo',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        '--checkpoint', default=DEFAULT_CHECKPOINT, help='hub id or checkpoint directory'
    )
    parser.add_argument('--device', default='auto')
    parser.add_argument('--out', type=Path, default=Path('demo_out'))
    parser.add_argument('--frames', type=int, default=30, help='frames of the sample bag (10 Hz)')
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        checkpoint = resolve_checkpoint(args.checkpoint)  # downloads once, with progress bars
        summary = segment_sample(checkpoint, args.device, args.out)
    except HubUnavailableError as exc:
        print(offline_message(exc, args.checkpoint), file=sys.stderr)
        return 2
    except EvfSamError as exc:
        print(f'make demo: {exc}', file=sys.stderr)
        return 2
    on_gpu = summary['device'].startswith('cuda')
    if on_gpu:  # the node process needs the GPU memory step 1's predictor held
        import torch

        torch.cuda.empty_cache()
    bag = sample_bag(args.out, args.frames)
    node = start_node(checkpoint, args.device, args.out)
    try:
        return replay_live(bag, args.out, on_gpu)
    finally:
        node.send_signal(signal.SIGINT)
        node.wait(30)


if __name__ == '__main__':
    sys.exit(main())
