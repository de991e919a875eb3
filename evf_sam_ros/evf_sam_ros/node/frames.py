"""The node's side of the shared frame pipeline: each frame the worker takes and each
one-shot request run through ``pipeline.process_frame`` with the node's model, depth and
settings; results published on the outputs and fed to find_target goals.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any, Callable

from evf_sam_ros.codecs.image import array_to_imgmsg, stamp_ns
from evf_sam_ros.model.errors import ClickError
from evf_sam_ros.node.diagnostics import NodeStats
from evf_sam_ros.node.inputs import CameraInputs
from evf_sam_ros.node.io import NodeIO
from evf_sam_ros.node.requests import GoalRegistry, PendingRequests, RequestRefused
from evf_sam_ros.node.settings import NodeSettings
from evf_sam_ros.node.worker import InferenceWorker
from evf_sam_ros.pipeline import (
    BAD_IMAGE,
    NO_PROMPT,
    ONE_SHOT,
    BoxMemory,
    BufferedDepth,
    FrameMessages,
    FrameOutput,
    NamedTarget,
    Segmenter,
    SourceImage,
    TargetList,
    TargetOutput,
    process_frame,
)
from evf_sam_ros.pipeline.drawing import draw_result
from evf_sam_ros.pipeline.messages import without_mask
from evf_sam_ros.pipeline.pick_messages import grasp_msgs
from evf_sam_ros.pipeline.track import TrackSegmenter


class FrameRunner:
    """Runs frames and one-shot requests for the node (on the inference worker's thread).

    ``settings()`` and ``segmenter()`` give the current ones (None: unconfigured);
    ``publishing()`` is False when results must not be published (inactive, closing);
    ``now_ns()`` is the node's clock; ``outputs`` builds the messages (and remembers the
    markers it published).
    """

    def __init__(
        self,
        settings: Callable[[], NodeSettings],
        segmenter: Callable[[], Segmenter | None],
        inputs: CameraInputs,
        io: NodeIO,
        targets: TargetList,
        goals: GoalRegistry,
        stats: NodeStats,
        outputs: FrameMessages,
        pending: PendingRequests,
        publishing: Callable[[], bool],
        now_ns: Callable[[], int],
    ):
        self._settings, self._segmenter, self._inputs, self._io = settings, segmenter, inputs, io
        self._targets, self._goals, self._stats = targets, goals, stats
        self._publishing, self._now_ns = publishing, now_ns
        self.outputs, self._pending = outputs, pending
        self.box_memory = BoxMemory()  # each target's last box: its axes for the next frame

    def run(
        self,
        source: SourceImage,
        targets: list[NamedTarget],
        segmenter: Segmenter | None = None,
        remember: bool = False,
    ) -> FrameOutput:
        """The shared frame pipeline with the node's model (or ``segmenter``), depth and
        settings; its problems are counted and warned (throttled). RequestRefused when no model
        is loaded. Track mode names the frame by its stamp (ns), for correction clicks.
        ``remember``: the frame of the targets (their boxes name the next frame's axes).
        """
        s = self._settings()
        depth = None
        if s.use_depth:
            present = self._io.publisher_present
            depth = BufferedDepth(
                self._inputs.depth,
                lambda: self._inputs.camera_info_now(s.depth_wait, present('camera_info')),
                s.depth_max_stamp_diff,
                s.depth_wait,
                present('depth'),
            )
        segmenter = segmenter or self._segmenter()
        if segmenter is None:
            raise RequestRefused('node is unconfigured: no model loaded')
        if isinstance(segmenter, TrackSegmenter):
            segmenter = segmenter.keyed(stamp_ns(source.header))
        out = process_frame(
            source,
            targets,
            segmenter,
            depth,
            s.target_settings(),
            with_cloud=self._io.has_subscribers('target_cloud'),
            pick=s.pick_settings(),
            memory=self.box_memory if remember else None,
        )
        for problem in out.problems:
            self._stats.warn(*problem)
        return out

    def process(self, source: SourceImage) -> None:
        """One frame from the camera: every target and every find_target goal's prompt."""
        targets = list(self._targets.snapshot())
        named = {t.prompt for t in targets}
        goals = [
            NamedTarget(ONE_SHOT, p)
            for p in dict.fromkeys(self._goals.prompts())
            if p not in named
        ]  # a goal on a target's prompt reads that target's result
        out = self.run(source, targets + goals, remember=True)
        if out.status == NO_PROMPT:
            self._stats.count('frames_skipped_no_prompt')
            return
        if out.status == BAD_IMAGE:
            self._stats.count('frames_bad')
            return
        self._stats.inference_ms.add(out.model_s * 1000.0)  # the frame's model time, all prompts
        self._stats.count('frames_processed')
        if targets:
            self._publish(out.targets[: len(targets)], out.rgb)
        self._feed_goals(out.targets)
        overhead_s = time.monotonic() - source.received_monotonic - out.model_s
        self._stats.overhead_ms.add(overhead_s * 1e3)

    def _feed_goals(self, outputs: list[TargetOutput]) -> None:
        """Give each find_target goal its prompt's result on this frame (the first target of
        that prompt), messages built only for prompts a goal waits on.
        """
        wanted = set(self._goals.prompts())
        if not wanted:
            return
        first = {t.prompt: t for t in reversed(outputs) if t.prompt in wanted}
        self._goals.feed(
            {p: without_mask(t.messages.segmentation) for p, t in first.items()},
            {p: grasp_msgs(t.pick, t.target.id) for p, t in first.items()},
        )

    def submit(
        self,
        prompt: str,
        image: Any | None,
        worker: InferenceWorker | None,
        segmenter: Segmenter,
    ) -> concurrent.futures.Future:
        """Queue a one-shot request (a checked ``prompt``, ``image`` a sensor_msgs/Image or
        None for the newest frame) on ``worker``; its Future gives the Segmentation or raises
        RequestRefused. RequestRefused at once when there is no image yet.
        """
        last = self._inputs.last_image
        source = SourceImage(image, False, time.monotonic()) if image is not None else last
        if source is None:
            raise RequestRefused('no image received yet on `image`; put one in the request')
        future = self._pending.new()
        if worker is None:
            self._pending.settle(future, error=RequestRefused('node is shutting down'))
        else:
            worker.submit(lambda: self.serve(source, prompt, future, segmenter))
        return future

    def serve(
        self,
        source: SourceImage,
        prompt: str,
        future: concurrent.futures.Future,
        segmenter: Segmenter,
    ) -> None:
        """One ~/segment request with ``segmenter`` (image mode: a one-shot request leaves
        the tracker alone): answer ``future`` with the Segmentation or the reason.
        """
        pending = self._pending
        if future.done():  # abandoned while queued
            return
        try:
            out = self.run(source, [NamedTarget(ONE_SHOT, prompt)], segmenter)
        except ClickError as exc:  # counted by kind, as clicks on the topics are
            self._stats.warn(exc.kind, f'~/segment refused its points: {exc}')
            self._pending.settle(future, error=exc)
            return
        except Exception as exc:  # answered to the caller and logged, never swallowed
            self._stats.warn('service_error', f'~/segment failed: {type(exc).__name__}: {exc}')
            pending.settle(future, error=RequestRefused(f'{type(exc).__name__}: {exc}'))
            return
        if out.status == BAD_IMAGE:
            pending.settle(future, error=RequestRefused(out.problems[0].message))
        else:
            pending.settle(future, result=out.targets[0].messages.segmentation)

    def _publish(self, outputs: list[TargetOutput], rgb: Any) -> None:
        """Every target on ``segmentations``, the first one on the single-target topics, the
        cloud and markers only while someone subscribes (FrameMessages).
        """
        if not self._publishing():
            return
        io = self._io
        subscribed = io.has_subscribers
        for role, msg in self.outputs.build(
            outputs, subscribed('target_cloud'), subscribed('markers'), subscribed('grasps')
        ):
            io.publish(role, msg)
        target = outputs[0]
        seg = target.messages.segmentation
        if self._settings().publish_overlay and io.has_subscribers('overlay'):
            picture = draw_result(rgb, target.result, seg.found)
            io.publish('overlay', array_to_imgmsg(picture, 'rgb8', seg.header))
        self._stats.latency_ms.add((self._now_ns() - stamp_ns(seg.header)) / 1e6)
