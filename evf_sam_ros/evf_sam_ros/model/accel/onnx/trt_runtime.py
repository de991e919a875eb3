"""TensorRT engines built from the exported graphs, run on torch CUDA tensors.

Engines are fp16 with the numerically fragile islands kept in fp32 (LayerNorm, softmax, GELU:
layer precision constraints, as the official code keeps them fp32 in torch), one optimisation
profile per graph spanning the prompt batch (1..MAX_PROMPT_BATCH) and the text length
(3..max_text_tokens). They are cached by cache.engine_path (GPU name, TensorRT version, graph
hash, build settings) and the missing ones are built when the predictor is made (the node's
configure), with progress logged. Inputs and outputs stay fp32 (token ids int64, masks bool).

Nothing here runs without TensorRT and a GPU; profile_shapes and keep_fp32 are plain Python.
"""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path
from typing import Any, Callable

import torch

from evf_sam_ros.model.accel.onnx.cache import engine_path
from evf_sam_ros.model.errors import BackendUnavailableError
from evf_sam_ros.model.text_batch import MAX_PROMPT_BATCH

INSTALL = (
    'pip install tensorrt (x86_64 with a CUDA GPU); on a Jetson it ships with JetPack: '
    'sudo apt install python3-libnvinfer'
)
FP32_TYPES = ('NORMALIZATION', 'SOFTMAX')
FP32_NAME_PARTS = ('layernorm', 'layer_norm', 'softmax', 'gelu', 'erf')
OPT_TEXT = 16  # tokens: typical prompt length the kernels are tuned for
_LOG = logging.getLogger(__name__)


def require_tensorrt(device: torch.device) -> Any:
    """The tensorrt module, or BackendUnavailableError with the install command."""
    try:
        trt = importlib.import_module('tensorrt')
    except ImportError:
        raise BackendUnavailableError(
            f'backend tensorrt is not installed; install it with: {INSTALL}'
        ) from None
    if device.type != 'cuda':
        raise BackendUnavailableError(f'backend tensorrt needs a CUDA device, not {device}')
    return trt


def profile_shapes(
    inputs: list[dict], ranges: dict[str, tuple[int, int, int]] | None = None
) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """(min, opt, max) shape per dynamic input of a graph's manifest inputs.

    A symbolic axis takes its range from ``ranges`` (name -> (min, opt, max)); the defaults
    cover ``prompts`` (1, 1, MAX_PROMPT_BATCH). Static inputs are left out. Raises ValueError
    for a symbolic axis without a range.
    """
    known = {'prompts': (1, 1, MAX_PROMPT_BATCH), **(ranges or {})}
    shapes = {}
    for entry in inputs:
        if all(isinstance(n, int) for n in entry['shape']):
            continue
        picks = []
        for axis in entry['shape']:
            if isinstance(axis, int):
                picks.append((axis, axis, axis))
            elif axis in known:
                picks.append(known[axis])
            else:
                raise ValueError(f'no optimisation-profile range for axis {axis!r}')
        shapes[entry['name']] = tuple(tuple(p[i] for p in picks) for i in range(3))
    return shapes


def text_ranges(max_text_tokens: int) -> dict[str, tuple[int, int, int]]:
    """The text-length profile range: 3 tokens (<s> x </s>) to the longest prompt."""
    return {'text_len': (3, min(OPT_TEXT, max_text_tokens), max_text_tokens)}


def keep_fp32(layer_type: str, layer_name: str) -> bool:
    """Whether a layer stays fp32 in an fp16 engine: LayerNorm, softmax and GELU (Erf)
    layers, by TensorRT layer type name or the ONNX node name the layer came from.
    """
    name = layer_name.lower()
    return layer_type.upper() in FP32_TYPES or any(p in name for p in FP32_NAME_PARTS)


def build_engine(
    trt: Any, onnx_path: Path, out: Path, shapes: dict, log: Callable[[str], None]
) -> None:
    """Parse onnx_path (external data beside it), build an fp16 engine with fp32 islands and
    one optimisation profile, write it to ``out`` (atomically).
    """
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError(f'TensorRT cannot parse {onnx_path}: {errors[:3]}')
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    kept = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if keep_fp32(layer.type.name, layer.name):
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
            kept += 1
    if shapes:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in shapes.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    log(f'{onnx_path.stem}: {network.num_layers} layers, {kept} kept fp32; building')
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise RuntimeError(f'TensorRT failed to build an engine for {onnx_path}')
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f'.{out.name}.tmp')
    tmp.write_bytes(bytes(blob))
    tmp.replace(out)


def engine_for(
    trt: Any,
    export_dir: Path,
    name: str,
    entry: dict,
    ranges: dict,
    cache_dir: Path,
    log: Callable[[str], None] = _LOG.info,
    gpu_name: str | None = None,
) -> Path:
    """The cached engine of graph ``name``, built first when missing (logged, timed).
    gpu_name: default the current CUDA device's name.
    """
    shapes = profile_shapes(entry['inputs'], ranges)
    build = {'precision': 'fp16+fp32-islands', 'profile': {k: list(v) for k, v in shapes.items()}}
    gpu = gpu_name or torch.cuda.get_device_name()
    path = engine_path(cache_dir, gpu, trt.__version__, name, entry['sha256'], build)
    if path.is_file():
        log(f'TensorRT engine {name}: cached {path}')
        return path
    log(f'TensorRT engine {name}: building for {gpu}, TensorRT {trt.__version__} (minutes)')
    start = time.perf_counter()
    build_engine(trt, Path(export_dir) / entry['file'], path, shapes, log)
    log(f'TensorRT engine {name}: built in {time.perf_counter() - start:.0f} s -> {path}')
    return path


class TrtGraph:
    """A deserialised engine; call with CUDA tensors in manifest input order, get the
    outputs (new CUDA tensors) in manifest output order.
    """

    def __init__(self, trt: Any, path: Path, device: torch.device):
        self.trt, self.device = trt, device
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise RuntimeError(f'TensorRT cannot load the engine {path}; delete it to rebuild')
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = [n for n in names if is_input[n]]
        self.output_names = [n for n in names if not is_input[n]]
        self._dtypes = {
            trt.float32: torch.float32,
            trt.float16: torch.float16,
            trt.int32: torch.int32,
            trt.int64: torch.int64,
            trt.bool: torch.bool,
        }

    def __call__(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run on the current CUDA stream."""
        keep = []
        for name, tensor in zip(self.input_names, tensors):
            want = self._dtypes[self.engine.get_tensor_dtype(name)]
            t = tensor.to(self.device, want).contiguous()
            keep.append(t)
            self.context.set_input_shape(name, tuple(t.shape))
            self.context.set_tensor_address(name, t.data_ptr())
        outs = []
        for name in self.output_names:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = self._dtypes[self.engine.get_tensor_dtype(name)]
            out = torch.empty(shape, dtype=dtype, device=self.device)
            self.context.set_tensor_address(name, out.data_ptr())
            outs.append(out)
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError('TensorRT execution failed')
        return tuple(outs)
