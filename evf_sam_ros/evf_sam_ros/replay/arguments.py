"""``evf-sam-replay``'s command line: the argument parser (one bag, live mode, the fleet's
options) and its value checks. ``replay.cli`` runs what it parses.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evf_sam_ros.replay.fleet import add_fleet_arguments


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'not a number: {text!r}') from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f'must be > 0, got {text!r}')
        return value

    return parse


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a number: {text!r}') from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {text!r}')
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of evf-sam-replay."""
    p = argparse.ArgumentParser(
        prog='evf-sam-replay',
        description='Run EVF-SAM over a rosbag2 bag (sqlite3 or mcap, '
        'zstd or not) or a ROS 1 .bag file '
        'and write results (a bag), report.json, overlay.mp4 and contact_sheet.png.',
    )
    p.add_argument('bag', type=Path, nargs='+', help='bag(s): see "many bags" for several')
    p.add_argument('-o', '--output', type=Path, required=True, help='output directory')
    p.add_argument(
        '--checkpoint', help="hub id or checkpoint directory (offline mode; live uses the node's)"
    )
    p.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N (default auto)')
    p.add_argument('--dtype', default='auto', help='auto, float32, float16 or bfloat16')
    topics = p.add_argument_group('topics (default: auto-detected; "none" switches one off)')
    for name in ('image', 'depth', 'camera-info', 'command', 'ground-truth'):
        topics.add_argument(f'--{name}-topic', metavar='TOPIC')
    p.add_argument(
        '--prompt',
        action='append',
        default=[],
        metavar='TEXT',
        help='prompt to segment (repeatable; offline runs all of them on each frame)',
    )
    p.add_argument(
        '--ground-truth-prompt',
        metavar='TEXT',
        help='prompt the ground truth shows (default: the bag command, else the first prompt)',
    )
    p.add_argument(
        '--params-file',
        metavar='YAML',
        help="the node's parameters file: offline mode then decides found, reads "
        'depth and checks prompts with its values (default: the node defaults)',
    )
    p.add_argument(
        '--mode',
        choices=['segment', 'track'],
        help='segment: ground the text on every frame; track: ground once, then follow '
        "with SAM2's memory (default: the node's mode parameter; live mode checks "
        'that the node runs in it)',
    )
    p.add_argument(
        '--score-threshold',
        type=float,
        help="least score of a found target (default: the node's score_threshold)",
    )
    p.add_argument('--max-frames', type=_positive(int), help='stop after N frames')
    p.add_argument(
        '--start',
        type=_non_negative,
        metavar='S',
        help="replay from S seconds of bag time after the bag's first message (offline)",
    )
    p.add_argument(
        '--duration',
        type=_positive(float),
        metavar='S',
        help='replay S seconds of bag time (offline; from --start or the beginning)',
    )
    p.add_argument(
        '--strict',
        action='store_true',
        help='exit 1 when any problem was counted (bad frames, missing depth, a truncated '
        'bag ...), not only when no frame was processed (for CI)',
    )
    p.add_argument(
        '--sync-tolerance',
        type=_positive(float),
        metavar='S',
        help='largest depth/image stamp difference in seconds (default: the '
        "node's depth_max_stamp_diff)",
    )
    p.add_argument('--no-video', action='store_true', help='do not write overlay.mp4')
    p.add_argument('--output-storage', choices=['mcap', 'sqlite3'], default='mcap')
    p.add_argument('--overwrite', action='store_true', help='replace outputs in --output')
    p.add_argument('-q', '--quiet', action='store_true', help='no progress bar, no table')
    live = p.add_argument_group('live mode (against a running evf_sam_node)')
    live.add_argument('--live', action='store_true', help='play the bag onto ROS topics')
    live.add_argument('--speed', type=_positive(float), default=1.0, help='playback rate factor')
    live.add_argument('--namespace', default='', help='namespace of the node (e.g. /robot)')
    live.add_argument(
        '--grace',
        type=_positive(float),
        default=5.0,
        metavar='S',
        help='seconds to wait for the last output (default 5)',
    )
    live.add_argument(
        '--lockstep',
        action='store_true',
        help='send each image only after the node handled the previous one (no '
        'drops; frame-by-frame comparable with offline mode)',
    )
    live.add_argument(
        '--wait-for-node',
        type=_positive(float),
        default=30.0,
        metavar='S',
        help='seconds to wait for the node to appear (default 30)',
    )
    add_fleet_arguments(p)
    return p
