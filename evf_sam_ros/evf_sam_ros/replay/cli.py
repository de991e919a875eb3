"""``evf-sam-replay``: run EVF-SAM over a recorded rosbag2 bag and report what it did.

    evf-sam-replay BAG --checkpoint ID_OR_DIR --output DIR [--prompt TEXT ...]
    evf-sam-replay BAG --live --output DIR [--namespace /robot] [--speed 2]
    evf-sam-replay BAG BAG ... | DIR | 'GLOB' --checkpoint ... --workers N   (see ``fleet``)

Exit codes: 0 done (at least one frame processed), 1 the replay (of any bag) ran but failed
(no frame processed, e.g. no prompt was set or every frame was bad; with --strict also any
counted problem; the outputs are written and one line on stderr says why), 2 bad input
(unreadable bag, missing topic, bad option or checkpoint; one line on stderr), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from evf_sam_ros.model.errors import EvfSamError
from evf_sam_ros.replay.arguments import build_parser
from evf_sam_ros.replay.errors import ReplayError
from evf_sam_ros.replay.fleet import is_fleet, run_fleet
from evf_sam_ros.replay.fleet_report import fleet_failure
from evf_sam_ros.replay.report import failure, format_table
from evf_sam_ros.replay.runner import ReplayOptions, inspect_bag, progress_bar, replay_bag


def node_settings(args: argparse.Namespace) -> Any:
    """The node's settings this replay uses: defaults, the --params-file, then options."""
    from evf_sam_ros.node.parameters import default_settings, params_file_values

    try:
        values = params_file_values(args.params_file) if args.params_file else {}
        if args.score_threshold is not None:
            values['score_threshold'] = args.score_threshold
        if args.mode is not None:
            values['mode'] = args.mode
        if args.sync_tolerance is not None:
            values['depth_max_stamp_diff'] = args.sync_tolerance
        return default_settings(values)
    except ValueError as exc:
        raise ReplayError(str(exc)) from exc


def _options(args: argparse.Namespace, settings: Any) -> ReplayOptions:
    return ReplayOptions(
        image_topic=args.image_topic,
        depth_topic=args.depth_topic,
        camera_info_topic=args.camera_info_topic,
        command_topic=args.command_topic,
        ground_truth_topic=args.ground_truth_topic,
        ground_truth_prompt=args.ground_truth_prompt,
        max_frames=args.max_frames,
        sync_tolerance_s=settings.depth_max_stamp_diff,
        video=not args.no_video,
        output_storage=args.output_storage,
        overwrite=args.overwrite,
        progress=not args.quiet,
        start_s=args.start,
        duration_s=args.duration,
    )


def _offline(
    args: argparse.Namespace, options: ReplayOptions, settings: Any, predictor: Any = None
) -> dict[str, Any]:
    from evf_sam_ros.model import EvfSamPredictor
    from evf_sam_ros.replay.offline import OfflineSegmenter

    if not args.checkpoint:
        raise ReplayError('--checkpoint is required in offline mode (a hub id or a directory)')
    inspect_bag(args.bag, options)  # fail on a bad bag before loading the model
    if predictor is None:
        predictor = EvfSamPredictor.from_pretrained(args.checkpoint, args.device, args.dtype)
    tracking = settings.tracker_settings() if settings.mode == 'track' else None
    processor = OfflineSegmenter(
        predictor,
        settings.target_settings(),
        args.prompt,
        settings.max_prompt_chars,
        tracking,
        settings.pick_settings(),
    )
    meta = {
        'checkpoint': str(args.checkpoint),
        'device': str(predictor.device),
        'dtype': str(predictor.dtype).replace('torch.', ''),
        'prompts': list(args.prompt),
        'score_threshold': settings.score_threshold,
        'target_mode': settings.mode,
        'params_file': args.params_file,
    }
    return replay_bag(args.bag, args.output, processor, options, meta)


def _live(args: argparse.Namespace, options: ReplayOptions) -> dict[str, Any]:
    from evf_sam_ros.replay.live import LiveOptions, play_and_record
    from evf_sam_ros.replay.live_outputs import RecordedOutputs

    if options.windowed:
        raise ReplayError(
            '--start and --duration are offline-mode options; for live mode cut the bag '
            'first (ros2 bag convert with start/end times) or drop them'
        )
    selection, total = inspect_bag(args.bag, options)
    live = LiveOptions(
        namespace=args.namespace,
        speed=args.speed,
        grace_s=args.grace,
        wait_for_node_s=args.wait_for_node,
        prompts=tuple(args.prompt),
        max_frames=args.max_frames,
        lockstep=args.lockstep,
        mode=args.mode,
    )
    with progress_bar(total, options.progress, 'play') as bar:
        recording = play_and_record(str(args.bag), selection, live, bar)
    meta = {
        'namespace': args.namespace or '/',
        'speed': args.speed,
        'prompts': list(args.prompt),
        'frames_published': recording.frames_published,
    }
    return replay_bag(args.bag, args.output, RecordedOutputs(recording), options, meta)


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` and replay; returns the report dict (the fleet report for several bags)."""
    args = build_parser().parse_args(argv)
    return run_fleet(args) if is_fleet(args) else replay(_one_bag(args))


def _one_bag(args: argparse.Namespace) -> argparse.Namespace:
    args.bag = args.bag[0]
    return args


def replay(args: argparse.Namespace, predictor: Any = None) -> dict[str, Any]:
    """Replay the one bag ``args.bag`` with parsed arguments (offline with ``predictor`` when
    given, else the --checkpoint loaded here); returns the report dict.

    Raises ReplayError/EvfSamError.
    """
    settings = node_settings(args)
    options = _options(args, settings)
    report = _live(args, options) if args.live else _offline(args, options, settings, predictor)
    if not args.quiet:
        print(format_table(report))
        print(f'outputs in {args.output}')
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Console script entry point; returns the exit code (see the module docstring)."""
    args = build_parser().parse_args(argv)  # exits 2 on a bad option
    try:
        if is_fleet(args):
            reason = fleet_failure(run_fleet(args))
        else:
            reason = failure(replay(_one_bag(args)), args.strict)
    except (ReplayError, EvfSamError) as exc:
        message = ' '.join(str(exc).split())
        print(f'evf-sam-replay: error: {message}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('evf-sam-replay: interrupted', file=sys.stderr)
        return 130
    if reason is not None:
        print(f'evf-sam-replay: error: {reason}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
