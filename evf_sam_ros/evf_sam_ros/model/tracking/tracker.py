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

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from evf_sam_ros.model import preprocess
from evf_sam_ros.model.checkpoint import read_config, resolve_checkpoint
from evf_sam_ros.model.config import get_variant
from evf_sam_ros.model.errors import TargetError, VariantError
from evf_sam_ros.model.masks import mask_bbox, mask_centroid
from evf_sam_ros.model.predictor import EvfSamPredictor
from evf_sam_ros.model.results import SegmentationResult, Stopwatch
from evf_sam_ros.model.tracking.graph_video import AnyFrame, video_runner
from evf_sam_ros.model.tracking.sam2_video import StepOutput
from evf_sam_ros.model.tracking.track_memory import TargetMemory
from evf_sam_ros.model.tracking.track_state import (
    GROUND_ADDED,
    TargetState,
    TargetStatus,
    TrackerCounters,
    TrackerSettings,
)
from evf_sam_ros.model.tracking.video_frames import sam2_video_pixels

_NO_SAM2 = (
    'track mode needs a SAM2 checkpoint (evf-sam2 or evf-sam2-multitask): SAM ViT '
    'checkpoints (evf-sam, evf-sam-multitask) have no memory; use segment mode'
)


@dataclass(frozen=True)
class TargetResult:
    """One target on one frame: its state and its segmentation."""

    status: TargetStatus
    result: SegmentationResult


@dataclass(eq=False)
class _Target:
    prompt: str
    token_ids: list[int]
    state: Optional[TargetState] = None  # None until the target's first frame is committed
    memory: Optional[TargetMemory] = None
    status: Optional[TargetStatus] = None


def _share(stages_ms: dict[str, float], batch: int) -> dict[str, float]:
    """One target's share of a batch's stage times (so the targets' times add up)."""
    return {k: v / batch for k, v in stages_ms.items()}


class EvfSamTracker:
    """Track objects named by text across a stream of frames (numpy in, numpy out).

    Results' ``timings_ms``: preprocess and image_encoder are the frame's (shared by every
    target, as in predict_many); beit3, decoder (memory attention, mask decoder, memory
    encoder) are the target's share of its batch; postprocess is its own.

    One call at a time: calls are serialised by an internal lock. A frame passed to
    ``add_target(s)`` is seen only by the new targets; ``track_targets(rgb, add=...)``
    grounds new prompts and tracks the others on one frame with one image encoding.
    """

    def __init__(self, predictor: EvfSamPredictor, settings: Optional[TrackerSettings] = None):
        """Use ``predictor``'s model, tokenizer, regime, device and dtype (a node can share
        one loaded model between segment and track mode). Raises VariantError for SAM ViT.
        """
        if predictor.cfg.sam_type != 'sam2':
            raise VariantError(_NO_SAM2)
        self._predictor = predictor
        self._runner, self._window, self._text = video_runner(predictor)
        self._settings = settings or TrackerSettings()
        self._targets: dict[int, _Target] = {}
        self._next_id = 0
        self._totals = {name: 0 for name in TrackerCounters.__dataclass_fields__}
        # snapshots replaced whole after each change: read without waiting for a frame
        self._statuses: tuple[TargetStatus, ...] = ()
        self._counters = TrackerCounters()
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        device: str = 'auto',
        dtype: str = 'auto',
        variant: Optional[str] = None,
        settings: Optional[TrackerSettings] = None,
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

    def add_targets(self, image: np.ndarray, prompts: Sequence[str]) -> list[TargetResult]:
        """Ground several new targets on one frame (one image encoding, batched).

        Existing targets do not see this frame. Raises PromptError / InputImageError before
        anything changes.
        """
        return self._step(image, list(prompts), track_existing=False)

    def track(self, image: np.ndarray) -> list[SegmentationResult]:
        """Track every target on the next frame; one result per target, in the order added."""
        return [r.result for r in self._step(image, [], track_existing=True)]

    def track_targets(self, image: np.ndarray, add: Sequence[str] = ()) -> list[TargetResult]:
        """Track every target on this frame and ground the prompts in ``add`` on it as new
        targets (after the others); one image encoding for all. Results in the order added.
        """
        return self._step(image, list(add), track_existing=True)

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
            self._publish()

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype, device = self._predictor.dtype, self._predictor.device
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=dtype, cache_enabled=False)

    def _step(
        self, image: np.ndarray, prompts: list[str], track_existing: bool
    ) -> list[TargetResult]:
        """One frame: encode once, ground and track, then commit (nothing changes on error)."""
        rgb = preprocess.as_rgb_uint8(image)
        new_ids = [self._predictor.tokenize(p) for p in prompts]
        size = (int(rgb.shape[0]), int(rgb.shape[1]))
        with self._lock, torch.inference_mode(), self._autocast():
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
            results = self._results(existing + new, outputs, size, dict(watch.ms))
            return self._commit(
                existing, new, reasons + [GROUND_ADDED] * len(new), outputs, results, settings
            )

    def _run(
        self, rgb: np.ndarray, frame: AnyFrame, to_ground: list[_Target], to_track: list[_Target]
    ) -> dict[int, tuple[StepOutput, int, dict[str, float]]]:
        """Model work of one frame, no state changes: {id(target): (output, row, timings)}."""
        done: dict[int, tuple[StepOutput, int, dict[str, float]]] = {}
        if to_ground:
            watch = Stopwatch(self._predictor.device)
            with watch.stage('beit3'):
                text = self._text_features(rgb, to_ground)
            with watch.stage('decoder'):
                out = self._runner.ground(frame, text)
            done.update(
                {
                    id(t): (out, i, _share(watch.ms, len(to_ground)))
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
                {id(t): (out, i, _share(watch.ms, len(group))) for i, t in enumerate(group)}
            )
        return done

    def _text_features(self, rgb: np.ndarray, targets: list[_Target]) -> torch.Tensor:
        """BEiT-3 on this frame for each target's text: Bx1xC (the frame's pixels made once)."""
        cfg, device = self._predictor.cfg, self._predictor.device
        pixels = preprocess.beit3_pixels(
            rgb, cfg.beit3.img_size, self._predictor.regime.beit3_antialias, device
        ).to(self._predictor.dtype)
        ids = [torch.tensor([t.token_ids], device=device) for t in targets]
        return torch.cat([self._text(pixels, i, None) for i in ids])

    def _results(
        self,
        targets: list[_Target],
        outputs: dict,
        size: tuple[int, int],
        frame_ms: dict[str, float],
    ) -> list[SegmentationResult]:
        """SegmentationResults at the frame's size, one per target (no state changes)."""
        upscaled: dict[int, np.ndarray] = {}
        results = []
        for t in targets:
            out, row, ms = outputs[id(t)]
            watch = Stopwatch(self._predictor.device)
            with watch.stage('postprocess'):
                if id(out) not in upscaled:  # one resize per batch
                    upscaled[id(out)] = self._upscale(out.low_res, size)
                logits = upscaled[id(out)][row]
                mask = logits > 0.0
            results.append(
                SegmentationResult(
                    prompt=t.prompt,
                    mask=mask,
                    logits=logits,
                    score=float(out.iou[row]),
                    object_score=float(out.object_score[row]),
                    bbox=mask_bbox(mask),
                    centroid=mask_centroid(mask),
                    area=int(np.count_nonzero(mask)),
                    timings_ms={**frame_ms, **ms, **watch.ms},
                )
            )
        return results

    def _commit(
        self,
        existing: list[_Target],
        new: list[_Target],
        reasons: list[Optional[str]],
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

    @staticmethod
    def _upscale(low_res: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
        """Bx1xSxS logits -> BxHxW float32 numpy (one bilinear resize, as the official code)."""
        logits = F.interpolate(low_res, size=size, mode='bilinear', align_corners=False)
        return logits[:, 0].float().cpu().numpy()
