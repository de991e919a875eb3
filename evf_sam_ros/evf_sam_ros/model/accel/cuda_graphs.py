"""CUDA graph replay for launch-bound model parts (BEiT-3 has ~900 small kernels per prompt).

``GraphedCallable(fn)`` captures ``fn`` once per input signature (shapes and dtypes; an
argument may also be None, which is part of the signature) and replays the graph afterwards;
outputs are cloned, so a later replay cannot overwrite a result the caller still holds. The
graphs of one callable share one memory pool (they never run at the same time; each one's
live memory is only its static inputs and outputs). Only for functions without CPU
synchronisation or data-dependent control flow; the caller keeps the autocast state
identical between capture and replay. On anything but CUDA tensors it simply calls ``fn``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Hashable

import torch


class GraphedCallable:
    """Replay ``fn`` as CUDA graphs keyed by input signature (at most ``max_graphs`` kept)."""

    def __init__(self, fn: Callable[..., Any], max_graphs: int = 8, warmup: int = 2):
        self.fn, self.max_graphs, self.warmup = fn, max_graphs, warmup
        self._graphs: 'OrderedDict[Hashable, tuple[torch.cuda.CUDAGraph, list, Any]]' = (
            OrderedDict()
        )
        self._pool: Any = None
        self.captures = 0

    def __call__(self, *inputs: torch.Tensor | None) -> Any:
        """``fn(*inputs)``: when the first input is a CUDA tensor, replayed from this
        signature's graph (captured on first use) with cloned outputs; else called directly.
        """
        if not inputs or inputs[0] is None or inputs[0].device.type != 'cuda':
            return self.fn(*inputs)
        key = tuple(None if t is None else (tuple(t.shape), t.dtype) for t in inputs)
        entry = self._graphs.get(key)
        if entry is None:
            entry = self._capture(inputs)
            self._graphs[key] = entry
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        graph, static_inputs, static_outputs = entry
        for static, value in zip(static_inputs, inputs):
            if static is not None:
                static.copy_(value)
        graph.replay()
        return _cloned(static_outputs)

    def _capture(
        self, inputs: tuple[torch.Tensor | None, ...]
    ) -> tuple[torch.cuda.CUDAGraph, list, Any]:
        static_inputs = [None if t is None else t.clone() for t in inputs]
        side = torch.cuda.Stream(device=inputs[0].device)
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up: lazy initialisation, caches, autotuning
            for _ in range(self.warmup):
                self.fn(*static_inputs)
        torch.cuda.current_stream().wait_stream(side)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            static_outputs = self.fn(*static_inputs)
        self.captures += 1
        return graph, static_inputs, static_outputs


def _cloned(outputs: Any) -> Any:
    """``outputs`` with every tensor cloned (in tuples, lists and dicts, at any depth): the
    graph's static outputs are overwritten by its next replay.
    """
    if isinstance(outputs, torch.Tensor):
        return outputs.clone()
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(_cloned(o) for o in outputs)
    if isinstance(outputs, dict):
        return {k: _cloned(v) for k, v in outputs.items()}
    return outputs
