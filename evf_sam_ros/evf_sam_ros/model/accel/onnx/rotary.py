"""sam2's rotary position encoding in real arithmetic, swapped in while a graph is exported.

sam2's ``RoPEAttention`` keeps its rotary table as a complex tensor (``torch.polar``) and
rotates queries and keys with complex products (``apply_rotary_enc``); neither ONNX exporter
accepts complex tensors. The rotation of the interleaved pair (x0, x1) by the angle whose
(cos, sin) the table holds is the same product written with real numbers::

    out0 = x0 * cos - x1 * sin        out1 = x0 * sin + x1 * cos

``real_rotary(module)`` swaps, for as long as it is active: sam2's ``apply_rotary_enc`` (the
name ``RoPEAttention.forward`` calls) for ``apply_rotary_real``, and every ``RoPEAttention``
table under ``module`` for its real view (N x D/2 x 2: cos, sin). Both are restored on exit.
Nothing of sam2 is changed on disk; the swap is process-wide while active, so export only
from one thread and run nothing else on the model meanwhile.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import torch
from torch import nn

_SWAP_LOCK = threading.Lock()


def _broadcast(table: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) of a N x D/2 x 2 table shaped 1 x .. x N x D/2 x 1 to broadcast over x
    (x: ... x N x D/2 x 2, the pairs of a ... x N x D query or key).
    """
    if table.shape[:2] != x.shape[-3:-1]:
        raise ValueError(
            f'rotary table {tuple(table.shape)} does not fit pairs {tuple(x.shape[-3:-1])}'
        )
    shape = [1] * (x.dim() - 3) + [table.shape[0], table.shape[1], 1]
    return table[..., 0].reshape(shape), table[..., 1].reshape(shape)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the interleaved pairs of x (... x N x D/2 x 2); returns ... x N x D float32."""
    x0, x1 = x[..., 0:1], x[..., 1:2]
    return torch.cat([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2)


def apply_rotary_real(
    xq: torch.Tensor,
    xk: torch.Tensor,
    freqs_cis: torch.Tensor,
    repeat_freqs_k: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """sam2's ``apply_rotary_enc`` with a real table.

    xq: B x heads x N x D queries, xk: B x heads x M x D keys (M a multiple of N when
    ``repeat_freqs_k``: M / N memory frames each rotated by the same table), freqs_cis:
    N x D/2 x 2 float32 (cos, sin). Returns the rotated (xq, xk) in their own dtypes; keys
    are returned unchanged when M is 0, as sam2 does.
    """
    pairs_q = xq.float().reshape(*xq.shape[:-1], -1, 2)
    cos, sin = _broadcast(freqs_cis, pairs_q)
    xq_out = _rotate(pairs_q, cos, sin).type_as(xq)
    if xk.shape[-2] == 0:
        return xq_out, xk  # no keys to rotate
    pairs_k = xk.float().reshape(*xk.shape[:-1], -1, 2)
    if repeat_freqs_k:
        repeat = pairs_k.shape[-3] // pairs_q.shape[-3]
        cos = cos.repeat(*([1] * (cos.dim() - 3)), repeat, 1, 1)
        sin = sin.repeat(*([1] * (sin.dim() - 3)), repeat, 1, 1)
    return xq_out, _rotate(pairs_k, cos, sin).type_as(xk)


def real_table(freqs_cis: torch.Tensor) -> torch.Tensor:
    """A complex N x D/2 rotary table as N x D/2 x 2 float32 (cos, sin): the same numbers."""
    return torch.view_as_real(freqs_cis).float().clone()


@contextlib.contextmanager
def real_rotary(module: nn.Module) -> Iterator[None]:
    """While active, sam2's rotary encoding under ``module`` runs in real arithmetic (see the
    module docstring). Raises RuntimeError when another swap is active.
    """
    import sam2.modeling.sam.transformer as transformer

    if not _SWAP_LOCK.acquire(blocking=False):
        raise RuntimeError('real_rotary is already active (one export at a time)')
    attentions = [m for m in module.modules() if isinstance(m, transformer.RoPEAttention)]
    tables = [m.freqs_cis for m in attentions]
    original = transformer.apply_rotary_enc
    try:
        for attention, table in zip(attentions, tables):
            attention.freqs_cis = real_table(table.cpu())
        transformer.apply_rotary_enc = apply_rotary_real
        yield
    finally:
        transformer.apply_rotary_enc = original
        for attention, table in zip(attentions, tables):
            attention.freqs_cis = table
        _SWAP_LOCK.release()
