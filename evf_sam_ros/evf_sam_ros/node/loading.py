"""What configure loads: the model and the segmenter of the node's mode."""

from __future__ import annotations

from collections.abc import Callable

from evf_sam_ros.model import EvfSamPredictor
from evf_sam_ros.node.settings import NodeSettings
from evf_sam_ros.pipeline import Segmenter, predictor_segmenter
from evf_sam_ros.pipeline.track import TrackSegmenter


def load_model(
    s: NodeSettings, progress: Callable[[str], None] | None = None
) -> tuple[EvfSamPredictor, Segmenter]:
    """The predictor of ``s.checkpoint`` on ``s.backend`` and its segmenter: segment mode
    grounds every frame; track mode an EvfSamTracker on the same model. ``progress`` gets a
    line per step of a first-use graph export or engine build. Raises EvfSamError (VariantError for
    track mode with a SAM ViT checkpoint, which has no memory), RuntimeError or OSError
    (I/O, CUDA out of memory); nothing stays loaded then.
    """
    predictor = EvfSamPredictor.from_pretrained(
        s.checkpoint,
        s.device,
        s.dtype,
        s.variant or None,
        cuda_graphs=s.cuda_graphs,
        preprocess=s.preprocess,
        torch_compile=s.torch_compile,
        compile_cache_dir=s.compile_cache_dir or None,
        backend=s.backend,
        progress=progress,
    )
    if s.mode != 'track':
        return predictor, predictor_segmenter(predictor)
    from evf_sam_ros.model import EvfSamTracker

    try:
        return predictor, TrackSegmenter(EvfSamTracker(predictor, s.tracker_settings()))
    except BaseException:
        predictor.release()
        raise
