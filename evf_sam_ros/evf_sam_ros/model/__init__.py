"""ROS-free EVF-SAM core: numpy image + text prompt in, mask and target statistics out.

from evf_sam_ros.model import EvfSamPredictor
predictor = EvfSamPredictor.from_pretrained("YxZhang/evf-sam2")   # or a local directory
result = predictor.predict(rgb_uint8_hxwx3, "the red mug left of the plate")
result.mask, result.score, result.centroid

tracker = EvfSamTracker.from_pretrained("YxZhang/evf-sam2")      # track mode (SAM2 memory)
first = tracker.add_target(rgb, "the red mug"); results = tracker.track(next_rgb)
"""

from evf_sam_ros.model.config import VARIANTS
from evf_sam_ros.model.errors import (
    CheckpointError,
    ClickError,
    EvfSamError,
    HubUnavailableError,
    InputImageError,
    PromptError,
    TargetError,
    VariantError,
)
from evf_sam_ros.model.predictor import EvfSamPredictor
from evf_sam_ros.model.results import ImageEmbedding, SegmentationResult
from evf_sam_ros.model.tracking.track_state import TargetStatus, TrackerCounters, TrackerSettings
from evf_sam_ros.model.tracking.tracker import EvfSamTracker, TargetResult

DEFAULT_CHECKPOINT = 'YxZhang/evf-sam2'

__all__ = [
    'CheckpointError',
    'ClickError',
    'DEFAULT_CHECKPOINT',
    'EvfSamError',
    'EvfSamPredictor',
    'EvfSamTracker',
    'HubUnavailableError',
    'ImageEmbedding',
    'InputImageError',
    'PromptError',
    'SegmentationResult',
    'TargetError',
    'TargetResult',
    'TargetStatus',
    'TrackerCounters',
    'TrackerSettings',
    'VARIANTS',
    'VariantError',
]
