"""One frame through the model: decode, predict, depth, target decision, result messages.

``process_frame`` is what the node's inference thread and the offline replay both run, so
an offline replay publishes exactly what the node would for the same messages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from evf_sam_ros.model.errors import InputImageError
from evf_sam_ros.model.results import SegmentationResult
from evf_sam_ros.pipeline.depth import DepthInput, DepthSource
from evf_sam_ros.pipeline.messages import TargetMessages, inference_seconds, target_messages
from evf_sam_ros.pipeline.pick_messages import fill_pick
from evf_sam_ros.pipeline.problems import FrameProblem, Problem
from evf_sam_ros.pipeline.prompts import NamedTarget
from evf_sam_ros.pipeline.source import SourceImage
from evf_sam_ros.target3d.estimate import TargetEstimate, TargetSettings, estimate_target
from evf_sam_ros.target3d.pick import PickSettings, PickTarget, pick_target

#: Segments targets on an HxWx3 uint8 RGB image: (one result per target, in order; the
#: number of results the frame's shared stages are split over, for inference_time; one
#: Tracking or None per target, or None in segment mode).
Segmenter = Callable[
    [np.ndarray, Sequence[NamedTarget]],
    tuple[Sequence[SegmentationResult], int, Sequence[Any] | None],
]


def predictor_segmenter(predictor: Any, clicks: tuple[Any, Any] | None = None) -> Segmenter:
    """Segment mode: each distinct prompt grounded on the frame (image encoder once).
    clicks: (point_coords Nx2 (x, y) pixels, point_labels N) given with the text to every
    prompt (EvfSamPredictor.predict; ~/segment with points).
    """

    def segment(
        rgb: np.ndarray, targets: Sequence[NamedTarget]
    ) -> tuple[list[SegmentationResult], int, None]:
        prompts = list(dict.fromkeys(t.prompt for t in targets))
        if clicks is None:
            results = predictor.predict_many(rgb, prompts)
        else:
            results = [predictor.predict(rgb, p, *clicks) for p in prompts]
        by_prompt = dict(zip(prompts, results))
        return [by_prompt[t.prompt] for t in targets], len(prompts), None

    return segment


PROCESSED, NO_PROMPT, BAD_IMAGE = 'processed', 'no_prompt', 'bad_image'


@dataclass(frozen=True)
class TargetOutput:
    """One target's answer on one frame: the model result, the decision and 3D target, the
    messages to publish, and (found, with depth, when asked for) its grasps, place surface
    and instances.
    """

    target: NamedTarget
    result: SegmentationResult
    estimate: TargetEstimate
    messages: TargetMessages
    pick: PickTarget | None = None

    @property
    def prompt(self) -> str:
        """The (cleaned) prompt this answers."""
        return self.result.prompt


@dataclass
class FrameOutput:
    """What became of one frame.

    status: PROCESSED, NO_PROMPT (no target: not decoded) or BAD_IMAGE (see problems).
    rgb: the decoded HxWx3 uint8 RGB image (None unless decoded). targets: one per target,
    in order. problems: everything wrong with this frame, in one vocabulary
    (pipeline.problems.KINDS). model_s: seconds of the model call. depth: the depth used.
    """

    status: str
    header: Any
    rgb: np.ndarray | None = None
    targets: list[TargetOutput] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    model_s: float = 0.0
    depth: DepthInput | None = None


class BoxMemory:
    """The last box rotation of each persistent target (id >= 0): the reference that keeps
    the names of its box's axes from frame to frame (``target3d.box_frame``), so its pose
    follows a tracked object instead of jumping between faces.
    """

    def __init__(self) -> None:
        self._last: dict[int, np.ndarray] = {}

    def get(self, target_id: int) -> np.ndarray | None:
        """The target's last box rotation (3x3), or None."""
        return self._last.get(target_id)

    def update(self, outputs: Sequence[TargetOutput]) -> None:
        """Remember this frame's boxes; forget targets that are gone."""
        present = {o.target.id for o in outputs}
        self._last = {k: v for k, v in self._last.items() if k in present}
        for o in outputs:
            if o.target.id >= 0 and o.estimate.found and o.estimate.box is not None:
                self._last[o.target.id] = o.estimate.box.rotation


def process_frame(
    image: SourceImage,
    targets: Sequence[NamedTarget],
    segment: Segmenter,
    depth: DepthSource | None,
    settings: TargetSettings,
    with_cloud: bool = False,
    pick: PickSettings | None = None,
    memory: BoxMemory | None = None,
) -> FrameOutput:
    """Run one frame: nothing without targets; decode; segment every target; then match
    depth (after the model, so late depth can still arrive); decide found and estimate the
    3D target (point, box; the cloud only ``with_cloud``) of each result; with ``pick``, its
    grasps, place surface and instances (written into its Segmentation); build the messages
    (Segmentation.target_id = the target's). ``memory``: the targets' previous boxes (read
    and updated).

    Prompts must be cleaned already (pipeline.prompts.check_prompt). Model errors other
    than a refused image (InputImageError -> bad_image) propagate.
    """
    header = image.header
    if not targets:
        return FrameOutput(NO_PROMPT, header)
    try:
        rgb = image.decode()
    except FrameProblem as exc:
        return FrameOutput(BAD_IMAGE, header, problems=[exc.problem])
    started = time.monotonic()
    try:
        results, passes, tracking = segment(rgb, targets)
    except InputImageError as exc:
        return FrameOutput(BAD_IMAGE, header, rgb, problems=[Problem('bad_image', str(exc))])
    out = FrameOutput(PROCESSED, header, rgb, model_s=time.monotonic() - started)
    out.depth = depth.match(header, rgb.shape[:2]) if depth is not None else None
    if out.depth is not None:
        out.problems.extend(out.depth.problems)
    tracking = tracking or [None] * len(results)
    out.targets = [
        _target(out, t, r, settings, passes, with_cloud, tr, pick, memory)
        for t, r, tr in zip(targets, results, tracking)
    ]
    if memory is not None:
        memory.update(out.targets)
    return out


def _target(
    out: FrameOutput,
    target: NamedTarget,
    result: SegmentationResult,
    settings: TargetSettings,
    prompts_on_frame: int,
    with_cloud: bool,
    tracking: Any | None,
    pick: PickSettings | None,
    memory: BoxMemory | None,
) -> TargetOutput:
    header, depth, problems = out.header, out.depth, out.problems
    depth_m = depth.depth_m if depth else None
    intrinsics = depth.intrinsics if depth else None
    if tracking is not None and tracking.lost:  # lost: not found, whatever this frame shows
        estimate = TargetEstimate(False, None, None)
    else:
        reference = memory.get(target.id) if memory is not None else None
        estimate = estimate_target(
            result, settings, depth_m, intrinsics, out.rgb, with_cloud, reference
        )
    if estimate.found and depth_m is not None and estimate.point is None:
        problems.append(
            Problem(
                'depth_invalid',
                f'too little valid depth inside the mask of '
                f"'{result.prompt}' (valid fraction "
                f'{estimate.depth_valid_fraction:.2f}): no target_point',
            )
        )
    seconds = inference_seconds(result, prompts_on_frame)
    messages = target_messages(result, header, estimate, seconds, target.id, tracking)
    picked = None
    if pick is not None and estimate.found:
        picked = pick_target(estimate, result.mask, intrinsics, settings, pick)
        fill_pick(messages.segmentation, picked)
    return TargetOutput(target, result, estimate, messages, picked)
