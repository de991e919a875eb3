"""Deterministic random weights keyed by checkpoint name, for full-size benchmarks without the
hub: our model and the official EVF-SAM code get the same values for the same tensor name
(EVF's fuser rename mapped), so their masks can be compared, not only their speed.

Norm layers get weight 1 + N(0, 0.05) and bias N(0, 0.02) (real-looking activations);
SAM's random positional matrix N(0, 1); every other tensor N(0, 0.02). Values depend on the
generator's device type: fill both models on the same kind of device.
"""

from __future__ import annotations

import re
import zlib

import torch
from torch import nn

_FUSER_SCALE = re.compile(r'(memory_encoder\.fuser\.layers\.\d+)\.weight$')


def canonical_name(name: str) -> str:
    """Our state-dict name of an official one (EVF stores sam2's fuser ``gamma`` as ``weight``)."""
    return _FUSER_SCALE.sub(r'\1.gamma', name)


def _norm_tensors(module: nn.Module) -> set[str]:
    names = set()
    for prefix, sub in module.named_modules():
        if 'Norm' in type(sub).__name__:
            names.update(
                f'{prefix}.{p}' if prefix else p for p, _ in sub.named_parameters(recurse=False)
            )
    return names


@torch.no_grad()
def fill_random(module: nn.Module, seed: int = 0) -> None:
    """Overwrite every state-dict tensor of ``module`` in place (see the module docstring)."""
    norms = _norm_tensors(module)
    for name, tensor in module.state_dict(keep_vars=True).items():
        if not tensor.is_floating_point():
            continue
        key = canonical_name(name)
        gen = torch.Generator(device=tensor.device).manual_seed(
            seed * 1_000_003 + zlib.crc32(key.encode())
        )
        values = torch.empty(tensor.shape, dtype=torch.float32, device=tensor.device)
        if name in norms and name.endswith('weight'):
            values.normal_(1.0, 0.05, generator=gen)
        elif 'gaussian' in name:
            values.normal_(0.0, 1.0, generator=gen)
        else:
            values.normal_(0.0, 0.02, generator=gen)
        tensor.data.copy_(values)
