"""One pass over a bag's frames: get each frame's result, write it, draw it, report it.

The result comes from a ``FrameProcessor``: the shared frame pipeline with a local predictor
(offline mode) or the outputs recorded from a running node (live mode).  Output directory layout::

    OUT/results/          rosbag2 bag: /evf_sam/segmentation, /evf_sam/mask, /evf_sam/target_point
    OUT/report.json       the report (see report.ReplayReport)
    OUT/frames.jsonl      one record per frame (status, warnings, each target's result)
    OUT/overlay.mp4       overlay video (unless disabled)
    OUT/contact_sheet.png about 12 frames on one picture

Every output is streamed: memory does not grow with the bag's length.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from evf_sam_ros.pipeline import FrameProblem, Problem, normalize_prompt
from evf_sam_ros.replay.bagio import BagWriter, list_topics, open_bag
from evf_sam_ros.replay.errors import ReplayError
from evf_sam_ros.replay.frames import BagFrame, FrameReader
from evf_sam_ros.replay.report import FRAMES_FILE, ReplayReport
from evf_sam_ros.replay.results import OUTPUT_TOPICS, FrameOutcome, FrameResult
from evf_sam_ros.replay.topics import TopicSelection, select_topics
from evf_sam_ros.replay.visuals import VisualsWriter

OUTPUT_FILES = ('results', 'report.json', FRAMES_FILE, 'overlay.mp4', 'contact_sheet.png')


@dataclass(frozen=True)
class ReplayOptions:
    """Topic choices (None = auto, "none" = off) and run settings.

    ground_truth_prompt: the prompt the ground truth shows; default the bag's command, else
    the first prompt. sync_tolerance_s: largest depth/image stamp difference accepted.
    start_s, duration_s: the window of bag time replayed, seconds from the bag's first
    message (None: from the start / to the end); commands and camera_info recorded before
    the window still apply.
    """

    image_topic: str | None = None
    depth_topic: str | None = None
    camera_info_topic: str | None = None
    command_topic: str | None = None
    ground_truth_topic: str | None = None
    ground_truth_prompt: str | None = None
    max_frames: int | None = None
    sync_tolerance_s: float = 0.05
    video: bool = True
    output_storage: str = 'mcap'
    overwrite: bool = False
    progress: bool = True
    start_s: float | None = None
    duration_s: float | None = None

    @property
    def windowed(self) -> bool:
        """True when a window of bag time is replayed (frame counts unknown beforehand)."""
        return self.start_s is not None or self.duration_s is not None


class FrameProcessor(Protocol):
    """Gives a bag frame's FrameResult (offline: the pipeline; live: the node's outputs).

    ``problems`` (optional): Problems not tied to a frame, added to the report.
    """

    mode: str
    latency_kind: str

    def process(self, frame: BagFrame) -> FrameResult:
        """The result of one frame (never raises for a bad frame: see FrameResult.problems)."""


def inspect_bag(bag: str | Path, options: ReplayOptions) -> tuple[TopicSelection, int | None]:
    """The topic selection and the number of frames that will be read (None: unknown, a
    window of bag time is replayed).  Raises ReplayError.
    """
    with open_bag(bag) as reader:
        topics = list_topics(reader)
        selection = select_topics(
            topics,
            options.image_topic,
            options.depth_topic,
            options.camera_info_topic,
            options.command_topic,
            options.ground_truth_topic,
        )
    total = None if options.windowed else topics[selection.image].count
    if options.max_frames is not None:
        total = min(total or options.max_frames, options.max_frames)
    return selection, total


def prepare_output(out_dir: str | Path, overwrite: bool) -> Path:
    """Create ``out_dir``; existing outputs are an error unless ``overwrite`` (then removed)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ReplayError(f'output {str(out_dir)!r} exists and is not a directory')
    existing = [out_dir / name for name in OUTPUT_FILES if (out_dir / name).exists()]
    if existing and not overwrite:
        raise ReplayError(
            f'{str(out_dir)!r} already holds replay outputs '
            f'({", ".join(p.name for p in existing)}); use --overwrite or another '
            f'directory'
        )
    for path in existing:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def progress_bar(total: int | None, enabled: bool, desc: str) -> Any:
    """A tqdm bar with ETA on stderr; inactive when not ``enabled`` or stderr is no TTY."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit='frame',
        desc=desc,
        file=sys.stderr,
        dynamic_ncols=True,
        disable=not enabled or not sys.stderr.isatty(),
    )


def _scored_prompt(frame: BagFrame, outcome: FrameOutcome, options: ReplayOptions) -> str | None:
    """The prompt the ground truth shows: --ground-truth-prompt, else the bag's newest command
    when it was segmented, else the first prompt segmented (white space normalised).
    """
    segmented = [p.prompt for p in outcome.prompts]
    wanted = options.ground_truth_prompt or frame.command
    if wanted:
        wanted = normalize_prompt(wanted)
        if options.ground_truth_prompt or wanted in segmented:
            return wanted
    return segmented[0] if segmented else None


def _picture_rgb(frame: BagFrame, result: FrameResult) -> Any | None:
    """The frame's RGB for the pictures: the pipeline's, else decoded here (None if not)."""
    if result.rgb is not None or frame.image is None:
        return result.rgb
    try:
        return frame.image.decode()
    except FrameProblem:
        return None


def _check_ground_truth(frame: BagFrame, rgb: Any | None) -> None:
    """Drop a ground-truth mask of another size than the image (the decoded one, else the
    Image message's size fields; a CompressedImage that did not decode has none).
    """
    msg = frame.image.msg if frame.image is not None else None
    size = (
        rgb.shape[:2]
        if rgb is not None
        else ((int(msg.height), int(msg.width)) if hasattr(msg, 'height') else None)
    )
    if frame.gt_mask is not None and size is not None and frame.gt_mask.shape != size:
        h, w = frame.gt_mask.shape
        frame.problems.append(
            Problem(
                'ground_truth_size_mismatch',
                f'mask {w}x{h} vs image {size[1]}x{size[0]}: not scored',
            )
        )
        frame.gt_mask = None


def _handle(
    frame: BagFrame,
    processor: FrameProcessor,
    options: ReplayOptions,
    report: ReplayReport,
    bag: BagWriter,
    visuals: VisualsWriter,
) -> None:
    result = processor.process(frame)
    frame.problems.extend(result.problems)
    rgb = _picture_rgb(frame, result)
    _check_ground_truth(frame, rgb)
    outcome = result.outcome
    scored = _scored_prompt(frame, outcome, options) if outcome is not None else None
    report.add(frame, result.status, outcome, scored)
    if outcome is not None:
        for role, data in outcome.messages:
            topic, msgtype = OUTPUT_TOPICS[role]
            bag.write(topic, msgtype, frame.log_time_ns, data)
    if rgb is not None:
        visuals.add(frame.index, frame.stamp_ns, rgb, outcome, result.reason)


def replay_bag(
    bag: str | Path,
    out_dir: str | Path,
    processor: FrameProcessor,
    options: ReplayOptions,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Run ``processor`` over the bag's frames and write OUT/results, report.json and pictures.

    Returns:
        The report dict (also saved as OUT/report.json).
    """
    selection, total = inspect_bag(bag, options)
    out_dir = prepare_output(out_dir, options.overwrite)
    report = ReplayReport(
        {
            'bag': str(bag),
            'mode': processor.mode,
            'frames_in_bag': total,
            **meta,
            'topics': selection.as_dict(),
            'topic_notes': list(selection.notes),
        },
        processor.latency_kind,
        out_dir / FRAMES_FILE,
    )
    if options.windowed:
        report.meta['window_s'] = {'start': options.start_s, 'duration': options.duration_s}
    visuals = VisualsWriter(out_dir, video=options.video)
    with open_bag(bag) as reader, BagWriter(out_dir / 'results', options.output_storage) as writer:
        report.meta['topic_notes'] += reader.notes
        frames = FrameReader(
            reader,
            selection,
            options.max_frames,
            options.sync_tolerance_s,
            window=_window(options),
        )
        with progress_bar(total, options.progress, processor.mode) as bar:
            for frame in frames:
                _handle(frame, processor, options, report, writer, visuals)
                bar.update(1)
        problems = [*reader.problems, *getattr(processor, 'problems', ()), *frames.problems]
        for problem in problems:
            report.warn(*problem)  # (kind, detail) or (kind, detail, count)
    report.meta['files'] = [str(p) for p in visuals.close()] + [
        str(out_dir / 'results'),
        str(out_dir / FRAMES_FILE),
    ]
    return report.save(out_dir / 'report.json')


def _window(options: ReplayOptions) -> tuple[float, float | None] | None:
    """(start, duration) seconds of bag time, or None for the whole bag."""
    if not options.windowed:
        return None
    return (options.start_s or 0.0, options.duration_s)
