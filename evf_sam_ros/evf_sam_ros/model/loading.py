"""Building a predictor's parts: device / dtype / preprocessing choices and the torch model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from evf_sam_ros.model import preprocess as prep
from evf_sam_ros.model.accel.compilation import resolve_backend, use_cache_dir
from evf_sam_ros.model.checkpoint import (
    check_state_dict,
    load_state,
    read_config,
    resolve_checkpoint,
)
from evf_sam_ros.model.config import EvfConfig, Regime, get_variant, variant_for
from evf_sam_ros.model.errors import CheckpointError, VariantError
from evf_sam_ros.model.network.evf_model import EvfSamModel
from evf_sam_ros.model.tokenizer import EvfTokenizer

BACKENDS = ('torch', 'onnxruntime', 'tensorrt')
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


def check_backend(backend: str, dtype: str | torch.dtype, torch_compile: bool | str) -> None:
    """Refuse an unknown backend, and torch-only options with a graph backend (which
    computes in its own precision: onnxruntime fp32, TensorRT fp16 with fp32 islands).
    """
    if backend not in BACKENDS:
        raise VariantError(f'unknown backend {backend!r}; use one of {", ".join(BACKENDS)}')
    if backend == 'torch':
        return
    if str(dtype) not in ('auto', 'float32', 'fp32', 'torch.float32'):
        raise VariantError(
            f'dtype {dtype} is for the torch backend; {backend} sets its own precision '
            '(leave dtype at auto)'
        )
    if torch_compile:
        raise VariantError(f'torch_compile is for the torch backend, not {backend}')


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


def load_parts(
    directory: Path, variant: str | None = None
) -> tuple[EvfSamModel, EvfTokenizer, Regime]:
    """Model (CPU, the checkpoint's dtypes), tokenizer and decoding regime of a checkpoint
    directory. variant: None detects it (SAM type from config.json, multitask from the
    tokenizer's ``[semantic]`` token), a name forces it.
    """
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
    return model, tokenizer, regime


@dataclass
class BackendParts:
    """What a predictor runs: the torch model (torch backend) or the opened graphs (graphs,
    onnxruntime / tensorrt), the tokenizer, the decoding regime and the compute dtype.
    """

    model: EvfSamModel | None
    graphs: Any
    tokenizer: EvfTokenizer
    regime: Regime
    dtype: torch.dtype


def load_backend_parts(
    name_or_path: str | Path,
    device: torch.device,
    dtype: str | torch.dtype,
    variant: str | None,
    backend: str,
    torch_compile: bool | str = False,
    compile_cache_dir: str | Path | None = None,
    onnx_dir: str | Path | None = None,
    engine_cache_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> BackendParts:
    """Load a checkpoint for ``backend`` (see EvfSamPredictor.from_pretrained)."""
    check_backend(backend, dtype, torch_compile)
    if backend != 'torch':
        from evf_sam_ros.model.accel.onnx.backend import open_graphs

        graphs, tokenizer, regime = open_graphs(
            name_or_path, backend, device, variant, onnx_dir, engine_cache_dir, progress
        )
        return BackendParts(None, graphs, tokenizer, regime, torch.float32)
    if onnx_dir is not None or engine_cache_dir is not None:
        raise VariantError('onnx_dir and engine_cache_dir are for onnxruntime / tensorrt')
    dt = resolve_dtype(dtype, device)
    if resolve_backend(torch_compile):
        use_cache_dir(compile_cache_dir)
    model, tokenizer, regime = load_parts(resolve_checkpoint(name_or_path), variant)
    model.to(device=device, dtype=dt)
    model.keep_fp32_islands()
    return BackendParts(model, None, tokenizer, regime, dt)
