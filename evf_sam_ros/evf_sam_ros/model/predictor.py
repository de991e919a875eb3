"""EvfSamPredictor: numpy image + text in, mask and target statistics out (no ROS here)."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch

from ..geometry import mask_bbox, mask_centroid
from . import preprocess
from .checkpoint import check_state_dict, load_state, read_config, resolve_checkpoint
from .config import EvfConfig, Regime, get_variant, variant_for
from .errors import CheckpointError, PromptError, VariantError
from .cuda_graphs import GraphedCallable
from .evf_model import EvfSamModel
from .sam_parts import SamFeatures
from .tokenizer import EvfTokenizer, clean_prompt

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
           "fp16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16,
           "bf16": torch.bfloat16}


@dataclass(frozen=True)
class SegmentationResult:
    """One prompt's answer on one image.

    mask: HxW bool (True = target) at the image's size. logits: HxW float32 mask logits
    (mask = logits > 0). score: predicted IoU of the chosen mask. object_score: SAM2's
    object-score logit (> 0: object present), None for SAM ViT. bbox: (x0, y0, x1, y1)
    pixels with x1, y1 exclusive, None when empty. centroid: (u, v) float pixels (column,
    row), None when empty. area: mask pixels. timings_ms: per stage (preprocess and
    image_encoder are the frame's, shared by every prompt of a predict_many call).
    """

    prompt: str
    mask: np.ndarray
    logits: np.ndarray
    score: float
    object_score: Optional[float]
    bbox: Optional[tuple[int, int, int, int]]
    centroid: Optional[tuple[float, float]]
    area: int
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class ImageEmbedding:
    """A frame encoded once: SAM features and the BEiT-3 pixels, on the model's device."""

    features: SamFeatures
    beit3_pixels: torch.Tensor
    timings_ms: dict[str, float]


class _Stopwatch:
    """Stage timer; synchronises CUDA at each mark so a stage's time is its own."""

    def __init__(self, device: torch.device):
        self.device, self.ms = device, {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.ms[name] = (time.perf_counter() - start) * 1000.0


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' = cuda when available, else cpu. Raises VariantError for an unusable device."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise VariantError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VariantError(f"device {device!r} asked for but CUDA is not available here; use cpu or auto")
    return dev


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """'auto' = float16 on CUDA, float32 elsewhere; bfloat16 and float32 work everywhere."""
    if str(dtype) == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    resolved = dtype if isinstance(dtype, torch.dtype) else _DTYPES.get(str(dtype).lower())
    if resolved not in (torch.float32, torch.float16, torch.bfloat16):
        raise VariantError(f"unknown dtype {dtype!r}; use auto, float32, float16 or bfloat16")
    if resolved == torch.float16 and device.type != "cuda":
        raise VariantError("float16 needs a CUDA device; on the CPU use float32 or bfloat16")
    return resolved


def _materialize(model: EvfSamModel) -> None:
    """Give real values to non-persistent buffers left on the meta device by the build."""
    sam = model.visual_model
    for name, values in (("pixel_mean", preprocess.SAM_PIXEL_MEAN), ("pixel_std", preprocess.SAM_PIXEL_STD)):
        buf = getattr(sam, name, None)
        if buf is not None and buf.is_meta:
            sam.register_buffer(name, torch.tensor(values).view(-1, 1, 1), persistent=False)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise CheckpointError(f"internal: tensors without values after loading: {left[:5]}")


def load_model(directory: Path, cfg: EvfConfig) -> EvfSamModel:
    """Build on the meta device, strictly check and assign the checkpoint's tensors (CPU)."""
    state = load_state(directory)
    model = EvfSamModel(cfg, device="meta")
    check_state_dict({k: v.shape for k, v in model.state_dict().items()}, state)
    model.load_state_dict(state, strict=True, assign=True)
    _materialize(model)
    return model.eval().requires_grad_(False)


class EvfSamPredictor:
    """Segment what a text prompt names, like segment-anything's SamPredictor.

    One call at a time: calls are serialised by an internal lock.
    """

    def __init__(self, model: EvfSamModel, tokenizer: EvfTokenizer, regime: Regime,
                 device: torch.device, dtype: torch.dtype, name: str = "", cuda_graphs: bool = False):
        self.model, self.tokenizer, self.regime = model, tokenizer, regime
        self.device, self.dtype, self.name = device, dtype, name
        self._runner = model.runner(regime)
        self.cuda_graphs = bool(cuda_graphs and device.type == "cuda")
        wrap = GraphedCallable if self.cuda_graphs else (lambda fn: fn)
        encode = self._runner.encode_tensors
        self._encode = wrap(encode) if self._runner.encoder_graph_safe else encode
        self._text = wrap(model.text_embedding)
        self._decode = wrap(self._runner.decode_tensors)
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, device: str = "auto", dtype: str = "auto",
                        variant: str | None = None, cuda_graphs: bool | None = None) -> "EvfSamPredictor":
        """Load a checkpoint directory (hub layout) or a hub id (downloaded and cached).

        variant: None detects it (SAM part from config.json, multitask from the tokenizer's
        ``[semantic]`` token), or one of evf-sam, evf-sam-multitask, evf-sam2,
        evf-sam2-multitask to force a preprocessing/decoding regime.
        cuda_graphs: on CUDA, replay BEiT-3 (one graph per prompt length), the mask decoder
        and the SAM2 image encoder as CUDA graphs. None (default) = on for CUDA. Measured on
        an H100 (fp16): identical logits, evf-sam2 640x480 92 -> 40 ms a frame. The first
        frame of each new prompt length pays a one-off capture.
        """
        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev)
        directory = resolve_checkpoint(name_or_path)
        forced = get_variant(variant) if variant else None
        cfg = read_config(directory, forced.sam_type if forced else None)
        tokenizer = EvfTokenizer.from_dir(directory)
        model = load_model(directory, cfg)
        if tokenizer.vocab_size > model.cfg.beit3.vocab_size:
            raise CheckpointError(f"the tokenizer produces ids up to {tokenizer.vocab_size - 1} but the "
                                  f"text embedding has {model.cfg.beit3.vocab_size} rows")
        regime = forced or variant_for(model.cfg.sam_type, tokenizer.is_multitask)
        model.to(device=dev, dtype=dt)
        model.keep_fp32_islands()
        graphs = dev.type == "cuda" if cuda_graphs is None else cuda_graphs
        return cls(model, tokenizer, regime, dev, dt, name=str(name_or_path), cuda_graphs=graphs)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype, cache_enabled=False)  # graph-safe

    def tokenize(self, prompt: str) -> list[int]:
        """Validated token ids. Raises PromptError (empty, unprintable, too long)."""
        text = clean_prompt(prompt)
        ids = self.tokenizer.encode(text)
        limit = self.model.cfg.beit3.max_text_tokens
        if len(ids) > limit:
            raise PromptError(f"the prompt is {len(ids)} tokens long; the model accepts at most {limit} "
                              f"(with <s> and </s>); shorten it")
        return ids

    def _sam_pixels(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        size = self.model.sam_image_size
        if self.model.cfg.sam_type == "sam":
            return preprocess.sam_vit_pixels(image, size, self.device)
        return preprocess.sam2_pixels(image, size, self.regime.sam2_resize, self.device)

    def encode_image(self, image: np.ndarray) -> ImageEmbedding:
        """Preprocess and run the SAM image encoder once for a frame.

        image: HxWx3 uint8 RGB (HxW gray and HxWx4 RGBA are converted).
        """
        rgb = preprocess.as_rgb_uint8(image)
        watch = _Stopwatch(self.device)
        with self._lock, torch.inference_mode():
            with watch.stage("preprocess"):  # float32 arithmetic, as in the official code
                sam_pixels, input_size = self._sam_pixels(rgb)
                sam_pixels = sam_pixels.to(self.dtype)
                beit = preprocess.beit3_pixels(rgb, self.model.cfg.beit3.img_size, self.regime.beit3_antialias,
                                               self.device).to(self.dtype)
            with watch.stage("image_encoder"), self._autocast():
                feats = SamFeatures(tuple(self._encode(sam_pixels)), input_size, rgb.shape[:2])
        return ImageEmbedding(feats, beit, watch.ms)

    def decode(self, embedding: ImageEmbedding, prompt: str) -> SegmentationResult:
        """Segment ``prompt`` on an encoded frame (BEiT-3 fusion, mask decoder, upscale)."""
        ids = torch.tensor([self.tokenize(prompt)], dtype=torch.long, device=self.device)
        watch = _Stopwatch(self.device)
        with self._lock, torch.inference_mode(), self._autocast():
            with watch.stage("beit3"):
                text = self._text(embedding.beit3_pixels, ids)
            with watch.stage("decoder"):
                low_res, iou, object_score = self._decode(text, *embedding.features.tensors)
            with watch.stage("postprocess"):
                logits = self._runner.upscale(low_res, embedding.features)[0, 0]
                logits = logits.float().cpu().numpy()
                mask = logits > 0.0
        return SegmentationResult(
            prompt=prompt, mask=mask, logits=logits, score=float(iou.reshape(-1)[0]),
            object_score=None if object_score is None else float(object_score.reshape(-1)[0]),
            bbox=mask_bbox(mask), centroid=mask_centroid(mask), area=int(np.count_nonzero(mask)),
            timings_ms={**embedding.timings_ms, **watch.ms})

    def predict(self, image: np.ndarray, prompt: str) -> SegmentationResult:
        """Segment what ``prompt`` names in ``image`` (HxWx3 uint8 RGB)."""
        self.tokenize(prompt)  # fail on a bad prompt before the expensive encoder
        return self.decode(self.encode_image(image), prompt)

    def predict_many(self, image: np.ndarray, prompts: Sequence[str]) -> list[SegmentationResult]:
        """Several prompts on one frame: the image encoder runs once, results equal predict()."""
        for prompt in prompts:
            self.tokenize(prompt)
        embedding = self.encode_image(image)
        return [self.decode(embedding, p) for p in prompts]

    def release(self) -> None:
        """Free the model's memory (GPU included); the predictor is unusable afterwards."""
        with self._lock:
            self.model = None  # type: ignore[assignment]
            self._runner = self._encode = self._text = self._decode = None  # type: ignore[assignment]
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
