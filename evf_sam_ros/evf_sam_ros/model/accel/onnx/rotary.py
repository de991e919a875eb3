"""sam2's rotary position encoding in real arithmetic, swapped in while a graph is exported.

sam2's ``RoPEAttention`` keeps its rotary table as a complex tensor (``torch.polar``) and
rotates queries and keys with complex products (``apply_rotary_enc``); neither ONNX exporter
accepts complex tensors. The rotation of the interleaved pair (x0, x1) by the angle whose
(cos, sin) the table holds is the same product written with real numbers::

    out0 = x0 * cos - x1 * sin        out1 = x0 * sin + x1 * cos

``RealRotary(module).swap()`` swaps, for as long as it is active: the name
``apply_rotary_enc`` that ``RoPEAttention.forward`` calls (in sam2's transformer module) for
``apply_rotary_real``, and every ``RoPEAttention`` table under ``module`` for its real view
(N x D/2 x 2: cos, sin). Both are restored on exit. Nothing of sam2 is changed on disk. The
name swap is process-wide while active: other models' complex tables still go through sam2's
own function; the module itself must not be run by another thread meanwhile.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import torch
from sam2.modeling import position_encoding
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
    if freqs_cis.is_complex():  # a model outside the swap (another thread): sam2's own
        return position_encoding.apply_rotary_enc(xq, xk, freqs_cis, repeat_freqs_k)
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


class RealRotary:
    """The real tables of every ``RoPEAttention`` under a module, made once; ``swap()`` is
    the context in which that module's rotary encoding runs on them (module docstring).

    The tables are computed here, outside any trace, so an exporter tracing inside ``swap()``
    sees only real constants.
    """

    def __init__(self, module: nn.Module):
        from sam2.modeling.sam.transformer import RoPEAttention

        self._attentions = [m for m in module.modules() if isinstance(m, RoPEAttention)]
        self._real = [real_table(m.freqs_cis.cpu()) for m in self._attentions]

    @contextlib.contextmanager
    def swap(self) -> Iterator[None]:
        """Run the module's rotary encoding in real arithmetic while active. Raises
        RuntimeError when another swap is active (one at a time in a process).
        """
        import sam2.modeling.sam.transformer as transformer

        if not _SWAP_LOCK.acquire(blocking=False):
            raise RuntimeError('a real rotary swap is already active (one at a time)')
        complex_tables = [m.freqs_cis for m in self._attentions]
        try:
            for attention, table in zip(self._attentions, self._real):
                attention.freqs_cis = table
            transformer.apply_rotary_enc = apply_rotary_real
            yield
        finally:
            transformer.apply_rotary_enc = position_encoding.apply_rotary_enc
            for attention, table in zip(self._attentions, complex_tables):
                attention.freqs_cis = table
            _SWAP_LOCK.release()
