"""ROS-free EVF-SAM core: numpy image + text prompt in, mask and target statistics out.

    from evf_sam_ros.model import EvfSamPredictor
    predictor = EvfSamPredictor.from_pretrained("YxZhang/evf-sam2")   # or a local directory
    result = predictor.predict(rgb_uint8_hxwx3, "the red mug left of the plate")
    result.mask, result.score, result.centroid
"""

from .config import VARIANTS
from .errors import (CheckpointError, EvfSamError, HubUnavailableError, InputImageError, PromptError,
                     VariantError)
from .predictor import EvfSamPredictor, ImageEmbedding, SegmentationResult

DEFAULT_CHECKPOINT = "YxZhang/evf-sam2"

__all__ = [
    "CheckpointError", "DEFAULT_CHECKPOINT", "EvfSamError", "EvfSamPredictor", "HubUnavailableError",
    "ImageEmbedding", "InputImageError", "PromptError", "SegmentationResult", "VARIANTS", "VariantError",
]
