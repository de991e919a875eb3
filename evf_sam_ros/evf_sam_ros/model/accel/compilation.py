"""torch.compile (inductor) for the model parts, with a persistent compile cache.

Inductor keeps what it compiled (FX graphs, AOT autograd graphs, Triton kernels) in one
directory, ``TORCHINDUCTOR_CACHE_DIR``; by default that is under /tmp, which a robot loses at
reboot. ``use_cache_dir`` points it at a lasting directory (default
``$XDG_CACHE_HOME/evf_sam_ros/torch_compile``, i.e. ``~/.cache/evf_sam_ros/torch_compile``),
so a restarted node loads its kernels instead of compiling them again. Dynamo still traces
the Python code at each start (seconds); the expensive kernel compilation is what is cached.

The setting is process-wide (an environment variable read by inductor): one process, one
cache directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from evf_sam_ros.model.accel.cuda_graphs import GraphedCallable

CACHE_ENV = 'TORCHINDUCTOR_CACHE_DIR'
RECOMPILE_LIMIT = 64  # shapes per compiled part: text buckets x prompt-batch sizes, with room


def default_cache_dir() -> Path:
    """$TORCHINDUCTOR_CACHE_DIR when set, else
    $XDG_CACHE_HOME (or ~/.cache)/evf_sam_ros/torch_compile.
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(base) / 'evf_sam_ros' / 'torch_compile'


def use_cache_dir(directory: str | Path | None = None) -> Path:
    """Make ``directory`` (default: default_cache_dir()) inductor's persistent cache for this
    process: created if missing, FX-graph and AOT-autograd caching on. Returns the path.
    """
    path = Path(directory).expanduser() if directory else default_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    os.environ[CACHE_ENV] = str(path.resolve())
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = True
    if hasattr(inductor_config, 'autograd_cache'):
        inductor_config.autograd_cache = True  # type: ignore[attr-defined]
    return path


def resolve_backend(torch_compile: bool | str) -> str | None:
    """False -> None (no compilation); True -> "inductor"; a string names a torch.compile
    backend ("inductor"; "aot_eager" traces and checks without generating kernels).
    """
    if torch_compile is False or torch_compile is None:
        return None
    if torch_compile is True:
        return 'inductor'
    if isinstance(torch_compile, str) and torch_compile:
        return torch_compile
    raise ValueError(f'torch_compile must be a bool or a backend name, got {torch_compile!r}')


def compile_part(fn: Callable[..., Any], backend: str = 'inductor') -> Callable[..., Any]:
    """torch.compile(fn, backend). Shapes start static; a dimension seen with a second size
    is recompiled once as dynamic (torch's automatic dynamic shapes), so the text buckets cost
    two compilations and prompt counts above one a third, all made during warm-up.
    """
    import torch._dynamo.config as dynamo_config

    for name in ('recompile_limit', 'cache_size_limit'):
        if hasattr(dynamo_config, name):
            setattr(dynamo_config, name, max(getattr(dynamo_config, name), RECOMPILE_LIMIT))
            break
    return torch.compile(fn, backend=backend, fullgraph=False)


def model_calls(
    model: Any, regime: Any, graphs: Any, compile_backend: str | None, cuda_graphs: bool
) -> tuple[Callable, Callable, Callable]:
    """The predictor's (image encoder, BEiT-3 text, decoder) calls: a graph backend's, or the
    torch model's, compiled with ``compile_backend`` (None: not) and replayed as CUDA graphs
    (``cuda_graphs``; the encoder only where its runner says it is graph-safe).
    """
    if graphs is not None:
        return graphs.encode, graphs.text, graphs.decode

    def fast(fn: Callable, graph_safe: bool = True, max_graphs: int = 8) -> Callable:
        if compile_backend:
            fn = compile_part(fn, compile_backend)
        return GraphedCallable(fn, max_graphs=max_graphs) if cuda_graphs and graph_safe else fn

    runner = model.runner(regime)
    return (
        fast(runner.encode_tensors, runner.encoder_graph_safe),
        fast(model.text_embedding, max_graphs=32),
        fast(runner.decode_tensors, max_graphs=16),
    )
