"""onnxruntime sessions for exported graphs: torch tensors in, torch tensors out.

On the CPU the tensors are shared with numpy (no copy for contiguous fp32). On CUDA
(onnxruntime-gpu) inputs and outputs go through host memory; the GPU fast path is TensorRT.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evf_sam_ros.model.errors import BackendUnavailableError

INSTALL = {
    'cpu': 'pip install onnxruntime',
    'cuda': 'pip install onnxruntime-gpu (instead of onnxruntime)',
}


def require_onnxruntime(device: torch.device) -> Any:
    """The onnxruntime module, or BackendUnavailableError saying what to install."""
    try:
        ort = importlib.import_module('onnxruntime')
    except ImportError:
        raise BackendUnavailableError(
            f'backend onnxruntime is not installed; install it with: {INSTALL[device.type]}'
        ) from None
    if device.type == 'cuda' and 'CUDAExecutionProvider' not in ort.get_available_providers():
        raise BackendUnavailableError(
            'backend onnxruntime on cuda needs the CUDA build of onnxruntime; install it '
            f'with: {INSTALL["cuda"]}, or use device cpu'
        )
    if device.type not in INSTALL:
        raise BackendUnavailableError(f'backend onnxruntime runs on cpu or cuda, not {device}')
    return ort


class OrtGraph:
    """One exported graph in an onnxruntime InferenceSession.

    Call with the graph's inputs in manifest order (torch tensors); returns its outputs as
    torch tensors on ``device``, in manifest order.
    """

    def __init__(self, path: Path, device: torch.device, threads: int | None = None):
        ort = require_onnxruntime(device)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        providers = ['CPUExecutionProvider']
        if device.type == 'cuda':
            index = device.index or 0
            providers.insert(0, ('CUDAExecutionProvider', {'device_id': index}))
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.device = device
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run the graph on these inputs (one per graph input, in order)."""
        if len(tensors) != len(self.input_names):
            raise ValueError(f'graph takes {self.input_names}, got {len(tensors)} tensors')
        feeds = {
            name: np.ascontiguousarray(t.detach().cpu().numpy())
            for name, t in zip(self.input_names, tensors)
        }
        outs = self.session.run(self.output_names, feeds)
        return tuple(torch.from_numpy(o).to(self.device) for o in outs)
