"""The first half of the node's parameter table: the model, track mode, start-up and prompts,
the found test and the inputs. ``settings.NodeSettings`` extends it with depth and 3D, pick and
place, and the outputs; the two are one table, in this order (see node/settings.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evf_sam_ros.model import DEFAULT_CHECKPOINT
from evf_sam_ros.node.param_spec import param


@dataclass(frozen=True)
class ModelInputSettings:
    """The model, track mode, start-up, found-test and input parameters (NodeSettings' first
    fields).
    """

    # ---- the model (applied at configure) ---------------------------------------------
    checkpoint: str = param(DEFAULT_CHECKPOINT, 'hub id or local checkpoint directory')
    device: str = param('auto', 'auto (cuda when available), cpu, cuda, cuda:N')
    dtype: str = param(
        'auto',
        'auto (float16 on CUDA, float32 on CPU), float32, float16, bfloat16',
        choices=('auto', 'float32', 'float16', 'bfloat16'),
    )
    variant: str = param(
        '',
        'force a preprocessing regime (empty: detect from the checkpoint)',
        choices=('', 'evf-sam', 'evf-sam-multitask', 'evf-sam2', 'evf-sam2-multitask'),
    )
    backend: str = param(
        'torch',
        'model runtime: torch, onnxruntime (exported graphs; CPU, or CUDA with '
        'onnxruntime-gpu) or tensorrt (CUDA; fp16 engines built at configure)',
        choices=('torch', 'onnxruntime', 'tensorrt'),
    )
    cuda_graphs: bool = param(
        True, 'on CUDA, replay model parts as CUDA graphs (same results, ~2x faster)'
    )
    preprocess: str = param(
        'auto',
        'auto (device on CUDA, exact on CPU), exact (official PIL steps), device (resizes on '
        'the GPU)',
        choices=('auto', 'exact', 'device'),
    )
    torch_compile: bool = param(
        False, 'compile the model parts with torch.compile (inductor); slow first start'
    )
    compile_cache_dir: str = param(
        '', 'persistent compile cache (empty: ~/.cache/evf_sam_ros/torch_compile)'
    )
    mode: str = param(
        'segment',
        'segment (ground the text on every frame) or track (ground once, '
        "then follow with SAM2's memory; SAM2 checkpoints)",
        choices=('segment', 'track'),
    )
    # ---- track mode ------------------------------------------------------------------
    lost_after: int = param(
        5,
        'track mode: weak frames in a row before a target is lost and re-grounded (0: never lost)',
        runtime=True,
        low=0,
        high=100000,
    )
    reground_interval: int = param(
        0,
        'track mode: also re-ground every this many frames (0: only when lost)',
        runtime=True,
        low=0,
        high=100000,
    )
    click_frames: int = param(
        8,
        'track mode: processed frames held for correction clicks (their encodings; 0: clicks '
        'refused)',
        runtime=True,
        low=0,
        high=1000,
    )
    click_memory: int = param(
        4,
        'track mode: clicked frames kept per target as SAM2 conditioning frames',
        runtime=True,
        low=1,
        high=1000,
    )
    # ---- start-up and prompts --------------------------------------------------------
    autostart: bool = param(
        True, 'configure and activate at start-up, so a plain `ros2 run` works'
    )
    prompt: str = param(
        '', 'current prompt (the `command` topic sets it too); empty: idle', runtime=True
    )
    max_targets: int = param(
        16,
        'most targets at once, the primary included; more are refused with the reason',
        runtime=True,
        low=1,
        high=1000,
    )
    # ---- found test ------------------------------------------------------------------
    score_threshold: float = param(
        0.5, 'least predicted IoU of a found target', runtime=True, low=0.0, high=1.0
    )
    use_object_score: bool = param(
        False, "also require SAM2's object score >= object_score_threshold", runtime=True
    )
    object_score_threshold: float = param(
        0.0,
        'least SAM2 object-score logit when use_object_score',
        runtime=True,
        low=-100.0,
        high=100.0,
    )
    # ---- inputs ----------------------------------------------------------------------
    max_rate: float = param(
        0.0,
        'most frames processed per second (0: as fast as the model runs)',
        runtime=True,
        low=0.0,
        high=1000.0,
    )
    image_qos_reliability: str = param(
        'reliable',
        'QoS of the image/depth subscriptions',
        name='image_qos.reliability',
        choices=('reliable', 'best_effort'),
    )
    image_qos_depth: int = param(
        1, 'QoS history depth of the image subscription', name='image_qos.depth', low=1, high=100
    )
    compressed_input: bool = param(
        False, 'subscribe image/compressed (sensor_msgs/CompressedImage)'
    )
    use_depth: bool = param(True, 'subscribe depth and camera_info and publish target_point')

    def tracker_settings(self) -> Any:
        """model.TrackerSettings of track mode: weak = predicted IoU under score_threshold or
        (with use_object_score) an object score not above object_score_threshold.
        """
        from evf_sam_ros.model.tracking.track_state import TrackerSettings

        return TrackerSettings(
            lost_after=int(self.lost_after),
            reground_interval=int(self.reground_interval),
            click_frames=int(self.click_frames),
            click_memory=int(self.click_memory),
            iou_threshold=float(self.score_threshold),
            object_score_threshold=float(self.object_score_threshold)
            if self.use_object_score
            else 0.0,
        )
