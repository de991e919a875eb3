"""EvfSamPredictor: numpy image + text in, mask and target statistics out (no ROS here).

The model runs in one of three backends behind the same calls: torch (the modules, with the
optional CUDA-graph and torch.compile fast paths), onnxruntime or TensorRT (exported graphs,
accel/onnx). Preprocessing and postprocessing are the same code for all of them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from evf_sam_ros.model import preprocess as prep
from evf_sam_ros.model.accel.compilation import model_calls, resolve_backend
from evf_sam_ros.model.accel.cuda_graphs import GraphedCallable
from evf_sam_ros.model.accel.device_preprocess import DevicePreprocessor, FrameUploader
from evf_sam_ros.model.config import EvfConfig, Regime
from evf_sam_ros.model.loading import (
    load_backend_parts,
    resolve_device,
    resolve_dtype,
    resolve_preprocess,
)
from evf_sam_ros.model.network.evf_model import EvfSamModel
from evf_sam_ros.model.network.sam_parts import SamFeatures, upscale_logits
from evf_sam_ros.model.points import check_points, clicks_and_text, refuse_on_graphs
from evf_sam_ros.model.results import ImageEmbedding, SegmentationResult, Stopwatch, from_logits
from evf_sam_ros.model.text_batch import (
    MAX_PROMPT_BATCH,
    batch_rows,
    filler_ids,
    pad_token_ids,
    resolve_buckets,
)
from evf_sam_ros.model.tokenizer import EvfTokenizer

__all__ = ['EvfSamPredictor', 'resolve_device', 'resolve_dtype', 'resolve_preprocess']


class EvfSamPredictor:
    """Segment what a text prompt names, like segment-anything's SamPredictor.

    One call at a time: calls are serialised by an internal lock. The fast-path options
    (see from_pretrained) change speed, not what is computed; "device" preprocessing and
    text buckets change results within float / one-grey-level rounding. ``model`` is the
    torch module tree (None with a graph backend: ``graphs`` runs instead).
    """

    def __init__(
        self,
        model: EvfSamModel | None,
        tokenizer: EvfTokenizer,
        regime: Regime,
        device: torch.device,
        dtype: torch.dtype,
        name: str = '',
        cuda_graphs: bool = False,
        preprocess: str = 'exact',
        torch_compile: bool | str = False,
        text_buckets: object = None,
        graphs: object = None,
    ):
        self.model, self.graphs, self.tokenizer, self.regime = model, graphs, tokenizer, regime
        self.cfg: EvfConfig = model.cfg if model is not None else graphs.cfg
        self.backend = 'torch' if graphs is None else graphs.runtime
        self.device, self.dtype, self.name = device, dtype, name
        self.cuda_graphs = bool(cuda_graphs and device.type == 'cuda' and graphs is None)
        self.compile_backend = resolve_backend(torch_compile) if graphs is None else None
        self.torch_compile = self.compile_backend is not None
        self.preprocess = resolve_preprocess(preprocess, device)
        self.text_buckets = resolve_buckets(text_buckets, device, self.cfg.beit3.max_text_tokens)
        self._static_shapes = self.cuda_graphs or self.torch_compile
        self._encode, self._text, self._decode = model_calls(
            model, regime, graphs, self.compile_backend, self.cuda_graphs
        )
        self._device_pixels = DevicePreprocessor(
            regime, self.cfg.sam.image_size, self.cfg.beit3.img_size, dtype
        )
        self._device_step = (
            GraphedCallable(self._device_pixels) if self.cuda_graphs else self._device_pixels
        )
        self._upload = FrameUploader(device)
        self._lock = threading.Lock()

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
        backend: str = 'torch',
        onnx_dir: str | Path | None = None,
        engine_cache_dir: str | Path | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> 'EvfSamPredictor':
        """Load a checkpoint directory (hub layout), a hub id (downloaded and cached) or, with
        a graph backend, a directory written by evf-sam-export.

        variant: None detects it (SAM part from config.json, multitask from the tokenizer's
        ``[semantic]`` token), or one of evf-sam, evf-sam-multitask, evf-sam2,
        evf-sam2-multitask to force a preprocessing/decoding regime.
        cuda_graphs (torch backend): on CUDA, replay BEiT-3, the mask decoder, the SAM2 image
        encoder and device preprocessing as CUDA graphs. None (default) = on for CUDA.
        preprocess: "exact" (the official PIL / uint8 steps on the CPU), "device" (one upload,
        every resize on the device; see device_preprocess.py), "auto" = device on CUDA,
        exact elsewhere.
        torch_compile (torch backend): compile the parts with inductor (True) or the
        torch.compile backend named here; kernels are cached in ``compile_cache_dir``.
        text_buckets: pad prompts to these token lengths with an attention mask; "auto" =
        text_batch.DEFAULT_TEXT_BUCKETS on CUDA, None (exact lengths) elsewhere.
        warmup: run every text bucket once now; None = when cuda_graphs or torch_compile.
        backend: "torch", "onnxruntime" (CPU, or CUDA with onnxruntime-gpu) or "tensorrt" (CUDA;
        fp16 engines built on first use into ``engine_cache_dir``, default under
        ~/.cache/evf_sam_ros/tensorrt); graph backends export the checkpoint on first use into
        ~/.cache/evf_sam_ros/onnx/<hash> unless ``onnx_dir`` names an evf-sam-export output.
        Missing backend: BackendUnavailableError with the install command. progress: called
        per step of a first-use export or engine build (default: logging, INFO).
        """
        dev = resolve_device(device)
        resolve_preprocess(preprocess, dev)  # fail before the slow load
        parts = load_backend_parts(
            name_or_path, dev, dtype, variant, backend, torch_compile, compile_cache_dir,
            onnx_dir, engine_cache_dir, progress,
        )  # fmt: skip
        on_cuda = dev.type == 'cuda' if cuda_graphs is None else cuda_graphs
        predictor = cls(
            parts.model, parts.tokenizer, parts.regime, dev, parts.dtype,
            name=str(name_or_path), cuda_graphs=on_cuda, preprocess=preprocess,
            torch_compile=torch_compile, text_buckets=text_buckets, graphs=parts.graphs,
        )  # fmt: skip
        if predictor._static_shapes if warmup is None else warmup:
            predictor.warmup()
        return predictor

    def autocast(self) -> contextlib.AbstractContextManager:
        """torch.autocast to this predictor's dtype on its device (nothing for float32)."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype, cache_enabled=False)

    def tokenize(self, prompt: str) -> list[int]:
        """Validated token ids, worked out once per prompt (EvfTokenizer.prompt_ids).
        Raises PromptError (empty, unprintable, too long).
        """
        return self.tokenizer.prompt_ids(prompt, self.cfg.beit3.max_text_tokens)

    def _pixels(self, rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """(SAM input, BEiT-3 input, SAM input size) in the compute dtype, by self.preprocess."""
        if self.preprocess == 'device':
            sam, beit = self._device_step(self._upload(rgb))
            return sam, beit, self._device_pixels.input_size(*rgb.shape[:2])
        size = self.cfg.sam.image_size
        if self.cfg.sam_type == 'sam':
            sam, input_size = prep.sam_vit_pixels(rgb, size, self.device)
        else:
            sam, input_size = prep.sam2_pixels(rgb, size, self.regime.sam2_resize, self.device)
        beit = prep.beit3_pixels(
            rgb, self.cfg.beit3.img_size, self.regime.beit3_antialias, self.device
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
                logits = upscale_logits(low_res[:count], embedding.features, self.cfg.sam)[:, 0]
                logits = logits.float().cpu().numpy()
                scores = iou[:count, 0].float().cpu().numpy()
                objects = (
                    None if object_score is None else object_score[:count, 0].float().cpu().numpy()
                )
        timings = {**embedding.timings_ms, **watch.ms}
        return [
            from_logits(
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
        refuse_on_graphs(self)
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
        for _ in range(2):  # twice: sam2 fills a position-encoding cache on the first call
            embedding = self.encode_image(frame)
            for count in prompt_counts:
                for length in self.text_buckets or (8,):
                    ids = [filler_ids(length)] * count
                    self._decode_ids(embedding, ['<warm-up>'] * count, ids)
        return time.perf_counter() - start

    def release(self) -> None:
        """Free the model's memory (GPU included); the predictor is unusable afterwards."""
        with self._lock:
            self.model = self.graphs = self._encode = self._text = self._decode = None
            self._device_step = self._upload = None
            if self.device.type == 'cuda':
                torch.cuda.empty_cache()
