"""EvfSamTracker: follow named objects across frames with SAM2 memory (EVF-SAM2 video mode).

    from evf_sam_ros.model import EvfSamTracker
    tracker = EvfSamTracker.from_pretrained('YxZhang/evf-sam2', device='auto', dtype='auto')
    first = tracker.add_target(rgb, 'the red mug')   # SegmentationResult on this frame; id 0
    results = tracker.track(next_rgb)               # one SegmentationResult per target
    tracker.remove_target(0); tracker.reset()

A target is grounded on the frame it is added on exactly as the official video inference
grounds its first frame, and every later frame gives what the official offline
``propagate_in_video`` gives for that frame, computed online from the frames seen so far
with a bounded memory (``track_memory``). Several targets share each frame's image encoder
and run batched. Lost targets are re-grounded from their text (``track_state``).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evf_sam_ros.model import preprocess
from evf_sam_ros.model.checkpoint import read_config, resolve_checkpoint
from evf_sam_ros.model.config import get_variant
from evf_sam_ros.model.errors import TargetError, VariantError
from evf_sam_ros.model.predictor import EvfSamPredictor
from evf_sam_ros.model.results import SegmentationResult, Stopwatch
from evf_sam_ros.model.tracking.clicks import ClickCorrection, HeldFrames
from evf_sam_ros.model.tracking.graph_video import AnyFrame, video_runner
from evf_sam_ros.model.tracking.sam2_video import StepOutput
from evf_sam_ros.model.tracking.track_memory import TargetMemory
from evf_sam_ros.model.tracking.track_results import (
    TargetResult,
    segmentation_results,
    share_times,
)
from evf_sam_ros.model.tracking.track_state import (
    GROUND_ADDED,
    TargetState,
    TargetStatus,
    TrackerCounters,
    TrackerSettings,
)
from evf_sam_ros.model.tracking.video_frames import sam2_video_pixels, text_features

_NO_SAM2 = (
    'track mode needs a SAM2 checkpoint (evf-sam2 or evf-sam2-multitask): SAM ViT '
    'checkpoints (evf-sam, evf-sam-multitask) have no memory; use segment mode'
)


@dataclass(eq=False)
class _Target:
    prompt: str
    token_ids: list[int]
    state: TargetState | None = None  # None until the target's first frame is committed
    memory: TargetMemory | None = None
    status: TargetStatus | None = None


class EvfSamTracker(ClickCorrection):
    """Track objects named by text across a stream of frames (numpy in, numpy out).

    Results' ``timings_ms``: preprocess and image_encoder are the frame's (shared by every
    target, as in predict_many); beit3, decoder (memory attention, mask decoder, memory
    encoder) are the target's share of its batch; postprocess is its own. One call at a time:
    calls are serialised by an internal lock. A frame passed to ``add_target(s)`` is seen
    only by the new targets; ``track_targets(rgb, add=...)`` grounds new prompts and tracks
    the others on one frame with one image encoding.
    ``correct`` (clicks.ClickCorrection) applies correction clicks on a held frame.
    """

    def __init__(self, predictor: EvfSamPredictor, settings: TrackerSettings | None = None):
        """Use ``predictor``'s model, tokenizer, regime, device and dtype (a node can share
        one loaded model between segment and track mode). Raises VariantError for SAM ViT.
        """
        if predictor.cfg.sam_type != 'sam2':
            raise VariantError(_NO_SAM2)
        self._predictor = predictor
        self._runner, self._window, self._text = video_runner(predictor)
        self._settings = settings or TrackerSettings()
        self._targets: dict[int, _Target] = {}
        self._next_id, self._lock = 0, threading.Lock()
        self._totals = {name: 0 for name in TrackerCounters.__dataclass_fields__}
        # snapshots replaced whole after each change: read without waiting for a frame
        self._statuses, self._counters = (), TrackerCounters()
        self._held = HeldFrames()  # frames kept for correction clicks (clicks.py)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        device: str = 'auto',
        dtype: str = 'auto',
        variant: str | None = None,
        settings: TrackerSettings | None = None,
        backend: str = 'torch',
        onnx_dir: str | Path | None = None,
        engine_cache_dir: str | Path | None = None,
    ) -> 'EvfSamTracker':
        """Load a SAM2 checkpoint (directory or hub id) as EvfSamPredictor.from_pretrained
        does, backends included (graph backends: the track graphs too); SAM ViT checkpoints
        are refused before their weights are read.
        """
        directory = resolve_checkpoint(name_or_path)
        forced = get_variant(variant) if variant else None
        if read_config(directory, forced.sam_type if forced else None).sam_type != 'sam2':
            raise VariantError(_NO_SAM2)
        graphs = dict(backend=backend, onnx_dir=onnx_dir, engine_cache_dir=engine_cache_dir)
        predictor = EvfSamPredictor.from_pretrained(
            name_or_path, device=device, dtype=dtype, variant=variant, cuda_graphs=False, **graphs
        )
        return cls(predictor, settings)

    @property
    def predictor(self) -> EvfSamPredictor:
        """The predictor whose model this tracker runs (segment mode on the same weights)."""
        return self._predictor

    @property
    def settings(self) -> TrackerSettings:
        """Current lost-and-found settings."""
        return self._settings

    def update_settings(self, **changes: object) -> TrackerSettings:
        """Change settings (validated; ValueError names the bad one); applies from the next
        frame. Does not wait for a frame in progress.
        """
        self._settings = self._settings.replace(**changes)
        return self._settings

    @property
    def targets(self) -> list[TargetStatus]:
        """Every target's status after its last frame, in the order added (a snapshot that
        does not wait for a frame in progress).
        """
        return list(self._statuses)

    @property
    def counters(self) -> TrackerCounters:
        """Totals since the tracker was made (for /diagnostics; does not wait for a frame)."""
        return self._counters

    def memory_tensors(self) -> int:
        """Tensors held in all targets' memories (bounded: 2 x (1 + window) per target)."""
        with self._lock:
            return sum(t.memory.tensors() for t in self._targets.values() if t.memory)

    def add_target(self, image: np.ndarray, prompt: str) -> SegmentationResult:
        """Ground a new target on ``image`` (HxWx3 uint8 RGB); ids are 0, 1, ... in order."""
        return self.add_targets(image, [prompt])[0].result

    def add_targets(
        self, image: np.ndarray, prompts: Sequence[str], frame_key: Hashable = None
    ) -> list[TargetResult]:
        """Ground several new targets on one frame (one image encoding, batched).

        Existing targets do not see this frame. Raises PromptError / InputImageError before
        anything changes. frame_key: names the frame for clicks (``correct``), e.g. its stamp.
        """
        return self._step(image, list(prompts), False, frame_key)

    def track(self, image: np.ndarray, frame_key: Hashable = None) -> list[SegmentationResult]:
        """Track every target on the next frame; one result per target, in the order added."""
        return [r.result for r in self._step(image, [], True, frame_key)]

    def track_targets(
        self, image: np.ndarray, add: Sequence[str] = (), frame_key: Hashable = None
    ) -> list[TargetResult]:
        """Track every target on this frame and ground the prompts in ``add`` on it as new
        targets (after the others); one image encoding for all. Results in the order added.
        """
        return self._step(image, list(add), True, frame_key)

    def remove_target(self, target_id: int) -> None:
        """Forget a target and its memory. Raises TargetError for an unknown id."""
        with self._lock:
            if target_id not in self._targets:
                raise TargetError(
                    f'no target with id {target_id!r}; current ids: {list(self._targets)}'
                )
            del self._targets[target_id]
            self._publish()

    def reset(self) -> None:
        """Forget every target. Ids are not reused; counters keep their totals."""
        with self._lock:
            self._targets.clear()
            self._held.clear()
            self._publish()

    def _step(
        self, image: np.ndarray, prompts: list[str], track_existing: bool, key: Hashable
    ) -> list[TargetResult]:
        """One frame: encode once, ground and track, then commit (nothing changes on error)."""
        rgb = preprocess.as_rgb_uint8(image)
        new_ids = [self._predictor.tokenize(p) for p in prompts]
        size = (int(rgb.shape[0]), int(rgb.shape[1]))
        with self._lock, torch.inference_mode(), self._predictor.autocast():
            existing = list(self._targets.values()) if track_existing else []
            if not existing and not prompts:
                return []
            settings, watch = self._settings, Stopwatch(self._predictor.device)
            with watch.stage('preprocess'):
                pixels = sam2_video_pixels(rgb, self._runner.image_size, self._predictor.device)
            with watch.stage('image_encoder'):
                frame = self._runner.encode(pixels)
            reasons = [t.state.ground_reason(settings, size) for t in existing]
            new = [_Target(p, ids) for p, ids in zip(prompts, new_ids)]
            to_ground = [t for t, r in zip(existing, reasons) if r] + new
            to_track = [t for t, r in zip(existing, reasons) if not r]
            outputs = self._run(rgb, frame, to_ground, to_track)
            results = segmentation_results(
                existing + new, outputs, size, dict(watch.ms), self._predictor.device
            )
            clicks = self._predictor.model is not None  # graphs take no clicks: hold nothing
            before = HeldFrames.before(existing, reasons, settings.click_frames if clicks else 0)
            done = self._commit(
                existing, new, reasons + [GROUND_ADDED] * len(new), outputs, results, settings
            )
            if clicks:
                self._held.keep(key, frame, size, existing + new, before, outputs, settings)
            return done

    def _run(
        self, rgb: np.ndarray, frame: AnyFrame, to_ground: list[_Target], to_track: list[_Target]
    ) -> dict[int, tuple[StepOutput, int, dict[str, float]]]:
        """Model work of one frame, no state changes: {id(target): (output, row, timings)}."""
        done: dict[int, tuple[StepOutput, int, dict[str, float]]] = {}
        if to_ground:
            watch = Stopwatch(self._predictor.device)
            with watch.stage('beit3'):
                ids = [t.token_ids for t in to_ground]
                text = text_features(self._predictor, self._text, rgb, ids)
            with watch.stage('decoder'):
                out = self._runner.ground(frame, text)
            done.update(
                {
                    id(t): (out, i, share_times(watch.ms, len(to_ground)))
                    for i, t in enumerate(to_ground)
                }
            )
        groups: dict[int, list[_Target]] = {}
        for t in to_track:
            assert t.memory is not None
            groups.setdefault(t.memory.batch_key, []).append(t)
        for group in groups.values():
            watch = Stopwatch(self._predictor.device)
            with watch.stage('decoder'):
                out = self._runner.track(frame, [t.memory for t in group])
            done.update(
                {id(t): (out, i, share_times(watch.ms, len(group))) for i, t in enumerate(group)}
            )
        return done

    def _commit(
        self,
        existing: list[_Target],
        new: list[_Target],
        reasons: list[str | None],
        outputs: dict,
        results: list[SegmentationResult],
        settings: TrackerSettings,
    ) -> list[TargetResult]:
        """Apply one frame to the targets' memories and states; ids for the new ones."""
        for t in new:
            t.state = TargetState(self._next_id, t.prompt)
            self._targets[self._next_id] = t
            self._next_id += 1
        self._totals['frames'] += bool(existing)
        done = []
        for t, reason, result in zip(existing + new, reasons, results):
            out, row, _ = outputs[id(t)]
            if reason is None:
                t.memory.append(out.memories[row])
            else:
                t.memory = TargetMemory(out.memories[row], self._window)
            found, became_lost = t.state.record(
                settings,
                reason,
                result.score,
                float(result.object_score),
                result.area,
                result.mask.shape,
            )
            t.status = t.state.status(found, reason)
            done.append(TargetResult(t.status, result))
            self._totals['groundings'] += reason == GROUND_ADDED
            self._totals['regrounded'] += reason not in (None, GROUND_ADDED)
            self._totals['lost'] += became_lost
        self._publish()
        return done

    def _publish(self) -> None:
        self._statuses = tuple(t.status for t in self._targets.values() if t.status is not None)
        self._counters = TrackerCounters(**self._totals)
