"""EvfSamPredictor: numpy image + text in, mask and target statistics out (no ROS here)."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from evf_sam_ros.model import preprocess as prep
from evf_sam_ros.model.accel.compilation import compile_part, resolve_backend, use_cache_dir
from evf_sam_ros.model.accel.cuda_graphs import GraphedCallable
from evf_sam_ros.model.accel.device_preprocess import DevicePreprocessor, FrameUploader
from evf_sam_ros.model.checkpoint import (
    check_state_dict,
    load_state,
    read_config,
    resolve_checkpoint,
)
from evf_sam_ros.model.config import EvfConfig, Regime, get_variant, variant_for
from evf_sam_ros.model.errors import CheckpointError, VariantError
from evf_sam_ros.model.masks import mask_bbox, mask_centroid
from evf_sam_ros.model.network.evf_model import EvfSamModel
from evf_sam_ros.model.network.sam_parts import SamFeatures
from evf_sam_ros.model.points import check_points, clicks_and_text
from evf_sam_ros.model.results import ImageEmbedding, SegmentationResult, Stopwatch
from evf_sam_ros.model.text_batch import (
    MAX_PROMPT_BATCH,
    batch_rows,
    pad_token_ids,
    resolve_buckets,
)
from evf_sam_ros.model.tokenizer import SPECIAL_IDS, EvfTokenizer

_DTYPES = {
    'float32': torch.float32,
    'fp32': torch.float32,
    'float16': torch.float16,
    'fp16': torch.float16,
    'half': torch.float16,
    'bfloat16': torch.bfloat16,
    'bf16': torch.bfloat16,
}


def resolve_device(device: str | torch.device = 'auto') -> torch.device:
    """'auto' = cuda when available, else cpu. Raises VariantError for an unusable device."""
    if str(device) == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise VariantError(f'unknown device {device!r}; use auto, cpu, cuda or cuda:N') from exc
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise VariantError(
            f'device {device!r} asked for but CUDA is not available here; use cpu or auto'
        )
    return dev


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """'auto' = float16 on CUDA, float32 elsewhere; bfloat16 and float32 work everywhere."""
    if str(dtype) == 'auto':
        return torch.float16 if device.type == 'cuda' else torch.float32
    resolved = dtype if isinstance(dtype, torch.dtype) else _DTYPES.get(str(dtype).lower())
    if resolved not in (torch.float32, torch.float16, torch.bfloat16):
        raise VariantError(f'unknown dtype {dtype!r}; use auto, float32, float16 or bfloat16')
    if resolved == torch.float16 and device.type != 'cuda':
        raise VariantError('float16 needs a CUDA device; on the CPU use float32 or bfloat16')
    return resolved


def resolve_preprocess(preprocess: str, device: torch.device) -> str:
    """'auto' = "device" on CUDA, "exact" elsewhere. Raises VariantError for other names."""
    if preprocess == 'auto':
        return 'device' if device.type == 'cuda' else 'exact'
    if preprocess not in ('exact', 'device'):
        raise VariantError(f'unknown preprocess {preprocess!r}; use auto, exact or device')
    return preprocess


def _materialize(model: EvfSamModel) -> None:
    """Give real values to non-persistent buffers left on the meta device by the build."""
    sam = model.visual_model
    for name, values in (('pixel_mean', prep.SAM_PIXEL_MEAN), ('pixel_std', prep.SAM_PIXEL_STD)):
        buf = getattr(sam, name, None)
        if buf is not None and buf.is_meta:
            sam.register_buffer(name, torch.tensor(values).view(-1, 1, 1), persistent=False)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise CheckpointError(f'internal: tensors without values after loading: {left[:5]}')


def load_model(directory: Path, cfg: EvfConfig) -> EvfSamModel:
    """Build on the meta device, strictly check and assign the checkpoint's tensors (CPU)."""
    state = load_state(directory)
    model = EvfSamModel(cfg, device='meta')
    check_state_dict({k: v.shape for k, v in model.state_dict().items()}, state)
    model.load_state_dict(state, strict=True, assign=True)
    _materialize(model)
    return model.eval().requires_grad_(False)


class EvfSamPredictor:
    """Segment what a text prompt names, like segment-anything's SamPredictor.

    One call at a time: calls are serialised by an internal lock. The fast-path options
    (see from_pretrained) change speed, not what is computed; "device" preprocessing and
    text buckets change results within float / one-grey-level rounding.
    """

    def __init__(
        self,
        model: EvfSamModel,
        tokenizer: EvfTokenizer,
        regime: Regime,
        device: torch.device,
        dtype: torch.dtype,
        name: str = '',
        cuda_graphs: bool = False,
        preprocess: str = 'exact',
        torch_compile: bool | str = False,
        text_buckets: object = None,
    ):
        self.model, self.tokenizer, self.regime = model, tokenizer, regime
        self.device, self.dtype, self.name = device, dtype, name
        self._runner = model.runner(regime)
        self.cuda_graphs = bool(cuda_graphs and device.type == 'cuda')
        self.compile_backend = resolve_backend(torch_compile)
        self.torch_compile = self.compile_backend is not None
        self.preprocess = resolve_preprocess(preprocess, device)
        self.text_buckets = resolve_buckets(text_buckets, device, model.cfg.beit3.max_text_tokens)
        self._static_shapes = self.cuda_graphs or self.torch_compile
        self._encode = self._accelerate(
            self._runner.encode_tensors, self._runner.encoder_graph_safe
        )
        self._text = self._accelerate(model.text_embedding, max_graphs=32)
        self._decode = self._accelerate(self._runner.decode_tensors, max_graphs=16)
        self._device_pixels = DevicePreprocessor(
            regime, model.sam_image_size, model.cfg.beit3.img_size, dtype
        )
        self._device_step = (
            GraphedCallable(self._device_pixels) if self.cuda_graphs else self._device_pixels
        )
        self._upload = FrameUploader(device)
        self._lock = threading.Lock()

    def _accelerate(self, fn, graph_safe: bool = True, max_graphs: int = 8):
        """fn, compiled (torch_compile) and replayed as CUDA graphs (cuda_graphs, graph-safe
        fn).
        """
        if self.compile_backend:
            fn = compile_part(fn, self.compile_backend)
        return (
            GraphedCallable(fn, max_graphs=max_graphs) if self.cuda_graphs and graph_safe else fn
        )

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        device: str = 'auto',
        dtype: str = 'auto',
        variant: str | None = None,
        cuda_graphs: bool | None = None,
        preprocess: str = 'auto',
        torch_compile: bool | str = False,
        compile_cache_dir: str | Path | None = None,
        text_buckets: object = 'auto',
        warmup: bool | None = None,
    ) -> 'EvfSamPredictor':
        """Load a checkpoint directory (hub layout) or a hub id (downloaded and cached).

        variant: None detects it (SAM part from config.json, multitask from the tokenizer's
        ``[semantic]`` token), or one of evf-sam, evf-sam-multitask, evf-sam2,
        evf-sam2-multitask to force a preprocessing/decoding regime.
        cuda_graphs: on CUDA, replay BEiT-3 (one graph per text bucket and prompt count), the
        mask decoder, the SAM2 image encoder and device preprocessing (per frame size) as
        CUDA graphs. None (default) = on for CUDA.
        preprocess: "exact" (the official PIL / uint8 steps on the CPU), "device" (one upload,
        every resize on the device; see device_preprocess.py), "auto" = device on CUDA,
        exact elsewhere.
        torch_compile: compile the image encoder, BEiT-3 and the decoder with inductor (True),
        or another torch.compile backend named here; CUDA graphs replay the compiled parts on
        CUDA. Kernels are cached in ``compile_cache_dir`` (default
        compilation.default_cache_dir()) so a restart does not compile again.
        text_buckets: pad prompts to these token lengths with an attention mask; "auto" =
        text_batch.DEFAULT_TEXT_BUCKETS on CUDA, None (exact lengths) elsewhere.
        warmup: make every graph and compiled kernel of the text buckets now, not on the first
        frames; None = when cuda_graphs or torch_compile are on.
        """
        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev)
        resolve_preprocess(preprocess, dev)  # fail before the slow load
        if resolve_backend(torch_compile):
            use_cache_dir(compile_cache_dir)
        directory = resolve_checkpoint(name_or_path)
        forced = get_variant(variant) if variant else None
        cfg = read_config(directory, forced.sam_type if forced else None)
        tokenizer = EvfTokenizer.from_dir(directory)
        model = load_model(directory, cfg)
        if tokenizer.vocab_size > model.cfg.beit3.vocab_size:
            raise CheckpointError(
                f'the tokenizer produces ids up to {tokenizer.vocab_size - 1} '
                f'but the text embedding has {model.cfg.beit3.vocab_size} rows'
            )
        regime = forced or variant_for(model.cfg.sam_type, tokenizer.is_multitask)
        model.to(device=dev, dtype=dt)
        model.keep_fp32_islands()
        graphs = dev.type == 'cuda' if cuda_graphs is None else cuda_graphs
        predictor = cls(
            model,
            tokenizer,
            regime,
            dev,
            dt,
            name=str(name_or_path),
            cuda_graphs=graphs,
            preprocess=preprocess,
            torch_compile=torch_compile,
            text_buckets=text_buckets,
        )
        if predictor._static_shapes if warmup is None else warmup:
            predictor.warmup()
        return predictor

    def autocast(self) -> contextlib.AbstractContextManager:
        """torch.autocast to this predictor's dtype on its device (nothing for float32)."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(
            self.device.type, dtype=self.dtype, cache_enabled=False
        )  # graph-safe

    def tokenize(self, prompt: str) -> list[int]:
        """Validated token ids, worked out once per prompt (EvfTokenizer.prompt_ids).
        Raises PromptError (empty, unprintable, too long).
        """
        return self.tokenizer.prompt_ids(prompt, self.model.cfg.beit3.max_text_tokens)

    def _pixels(self, rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """(SAM input, BEiT-3 input, SAM input size) in the compute dtype, by self.preprocess."""
        if self.preprocess == 'device':
            sam, beit = self._device_step(self._upload(rgb))
            return sam, beit, self._device_pixels.input_size(*rgb.shape[:2])
        size = self.model.sam_image_size
        if self.model.cfg.sam_type == 'sam':
            sam, input_size = prep.sam_vit_pixels(rgb, size, self.device)
        else:
            sam, input_size = prep.sam2_pixels(rgb, size, self.regime.sam2_resize, self.device)
        beit = prep.beit3_pixels(
            rgb, self.model.cfg.beit3.img_size, self.regime.beit3_antialias, self.device
        )
        return sam.to(self.dtype), beit.to(self.dtype), input_size

    def encode_image(self, image: np.ndarray) -> ImageEmbedding:
        """Preprocess and run the SAM image encoder once for a frame.

        image: HxWx3 uint8 RGB (HxW gray and HxWx4 RGBA are converted).
        """
        rgb = prep.as_rgb_uint8(image)
        watch = Stopwatch(self.device)
        with self._lock, torch.inference_mode():
            with watch.stage('preprocess'):  # float32 arithmetic, as in the official code
                sam_pixels, beit, input_size = self._pixels(rgb)
            with watch.stage('image_encoder'), self.autocast():
                feats = SamFeatures(tuple(self._encode(sam_pixels)), input_size, rgb.shape[:2])
        return ImageEmbedding(feats, beit, watch.ms)

    def decode(self, embedding: ImageEmbedding, prompt: str) -> SegmentationResult:
        """Segment ``prompt`` on an encoded frame (BEiT-3 fusion, mask decoder, upscale)."""
        return self.decode_many(embedding, [prompt])[0]

    def decode_many(
        self, embedding: ImageEmbedding, prompts: Sequence[str]
    ) -> list[SegmentationResult]:
        """Segment several prompts on an encoded frame: BEiT-3 and the decoder run once per
        batch of up to MAX_PROMPT_BATCH prompts. Results equal decode() per prompt (within
        float rounding: rows of one batch are padded to one length).
        """
        ids = [self.tokenize(p) for p in prompts]
        results: list[SegmentationResult] = []
        for start in range(0, len(ids), MAX_PROMPT_BATCH):
            stop = start + MAX_PROMPT_BATCH
            results += self._decode_ids(embedding, list(prompts[start:stop]), ids[start:stop])
        return results

    def _decode_ids(
        self,
        embedding: ImageEmbedding,
        prompts: list[str],
        ids: list[list[int]],
        points: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> list[SegmentationResult]:
        count = len(ids)
        tokens, mask = pad_token_ids(
            ids, self.text_buckets, batch_rows(count, self._static_shapes), self.device
        )
        watch = Stopwatch(self.device)
        with self._lock, torch.inference_mode(), self.autocast():
            with watch.stage('beit3'):
                text = self._text(embedding.beit3_pixels, tokens, mask)
            with watch.stage('decoder'):
                decode = self._decode
                if points is not None:  # clicks: EVF's points-then-text prompt, not graphed
                    text, decode = clicks_and_text(
                        self.model, self.regime, text, embedding, points
                    )
                low_res, iou, object_score = decode(text, *embedding.features.tensors)
            with watch.stage('postprocess'):
                logits = self._runner.upscale(low_res[:count], embedding.features)[:, 0]
                logits = logits.float().cpu().numpy()
                scores = iou[:count, 0].float().cpu().numpy()
                objects = (
                    None if object_score is None else object_score[:count, 0].float().cpu().numpy()
                )
        timings = {**embedding.timings_ms, **watch.ms}
        return [
            _result(
                p,
                logits[i],
                float(scores[i]),
                None if objects is None else float(objects[i]),
                timings,
            )
            for i, p in enumerate(prompts)
        ]

    def predict(
        self,
        image: np.ndarray,
        prompt: str,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
    ) -> SegmentationResult:
        """Segment what ``prompt`` names in ``image`` (HxWx3 uint8 RGB), optionally helped by
        clicks: point_coords Nx2 (x = column, y = row) in pixels of ``image``, point_labels N
        (1 positive, 0 negative), given to the prompt encoder next to the text as EVF-SAM's
        model takes them. Raises ClickError for bad points (model.points.check_points).
        """
        if point_coords is None and point_labels is None:
            return self.predict_many(image, [prompt])[0]
        ids = self.tokenize(prompt)
        points = check_points(point_coords, point_labels, prep.as_rgb_uint8(image).shape[:2])
        return self._decode_ids(self.encode_image(image), [prompt], [ids], points)[0]

    def predict_many(self, image: np.ndarray, prompts: Sequence[str]) -> list[SegmentationResult]:
        """Several prompts on one frame: the image encoder runs once, BEiT-3 and the decoder
        once per batch of up to MAX_PROMPT_BATCH prompts; results equal predict() per prompt
        within float rounding.
        """
        for prompt in prompts:
            self.tokenize(prompt)  # fail on a bad prompt before the expensive encoder
        return self.decode_many(self.encode_image(image), prompts)

    def warmup(
        self, prompt_counts: Sequence[int] = (1,), image_size: tuple[int, int] = (480, 640)
    ) -> float:
        """Run every text bucket (or one short prompt without buckets) for each prompt count
        on a blank frame, so the graphs and compiled kernels exist before the first real
        frame. image_size: (H, W) of the blank frame (device preprocessing graphs are per
        frame size). Returns the seconds it took.
        """
        start = time.perf_counter()
        frame = np.zeros((*image_size, 3), np.uint8)
        lengths = self.text_buckets or (8,)
        filler = SPECIAL_IDS['<unk>']
        for _ in range(2):  # twice: sam2 fills a position-encoding cache on the first call
            embedding = self.encode_image(frame)
            for count in prompt_counts:
                for length in lengths:
                    ids = [
                        [SPECIAL_IDS['<s>']] + [filler] * (length - 2) + [SPECIAL_IDS['</s>']]
                    ] * count
                    self._decode_ids(embedding, ['<warm-up>'] * count, ids)
        return time.perf_counter() - start

    def release(self) -> None:
        """Free the model's memory (GPU included); the predictor is unusable afterwards."""
        with self._lock:
            self.model = None  # type: ignore[assignment]
            self._runner = self._encode = self._text = self._decode = None  # type: ignore[assignment]
            self._device_step = self._upload = None  # type: ignore[assignment]
            if self.device.type == 'cuda':
                torch.cuda.empty_cache()


def _result(
    prompt: str,
    logits: np.ndarray,
    score: float,
    object_score: float | None,
    timings: dict[str, float],
) -> SegmentationResult:
    """SegmentationResult of one prompt from its HxW float32 logits."""
    mask = logits > 0.0
    return SegmentationResult(
        prompt=prompt,
        mask=mask,
        logits=logits,
        score=score,
        object_score=object_score,
        bbox=mask_bbox(mask),
        centroid=mask_centroid(mask),
        area=int(np.count_nonzero(mask)),
        timings_ms=dict(timings),
    )
