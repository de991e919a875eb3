"""Token ids of K prompts as one padded batch for BEiT-3, in a few fixed shapes.

With length buckets, a prompt of L tokens is padded (with <pad>, id 1) to the smallest bucket
>= L and BEiT-3 gets a key padding mask, so the text shapes a GPU sees are few and known in
advance: CUDA graphs and compiled code are made at load time, never for a new prompt. Padded
keys are masked out of attention, so the result equals the unpadded one within float rounding.
"""

from __future__ import annotations

from typing import Sequence

import torch

from evf_sam_ros.model.errors import VariantError
from evf_sam_ros.model.tokenizer import SPECIAL_IDS

PAD_ID = SPECIAL_IDS['<pad>']
DEFAULT_TEXT_BUCKETS = (16, 32, 64, 128, 256, 512)  # tokens, with <s> and </s>
MAX_PROMPT_BATCH = 8  # prompts per BEiT-3/decoder call; more are split into calls of 8


def resolve_buckets(buckets: object, device: torch.device, limit: int) -> tuple[int, ...] | None:
    """Bucket lengths in use: "auto" = DEFAULT_TEXT_BUCKETS on CUDA, None (exact lengths) on
    other devices; None = exact lengths; else increasing positive ints. ``limit`` (the longest
    prompt the model accepts) always closes the list, so every prompt has a bucket.
    """
    if buckets == 'auto':
        buckets = DEFAULT_TEXT_BUCKETS if device.type == 'cuda' else None
    if buckets is None:
        return None
    try:
        values = sorted({int(b) for b in buckets})  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise VariantError(
            f"text_buckets must be 'auto', None or token lengths, got {buckets!r}"
        ) from exc
    if not values or values[0] < 3:
        raise VariantError(f'text_buckets must hold lengths >= 3 (<s> x </s>), got {buckets!r}')
    return tuple(v for v in values if v < limit) + (limit,)


def bucket_length(length: int, buckets: Sequence[int]) -> int:
    """Smallest bucket >= length (buckets sorted; the last one is the model's limit)."""
    for bucket in buckets:
        if bucket >= length:
            return bucket
    raise ValueError(f'{length} tokens exceed the largest bucket {buckets[-1]}')


def filler_ids(length: int) -> list[int]:
    """A ``length``-token prompt of <unk> between <s> and </s> (warm-up input)."""
    return [SPECIAL_IDS['<s>']] + [SPECIAL_IDS['<unk>']] * (length - 2) + [SPECIAL_IDS['</s>']]


def batch_rows(count: int, static_shapes: bool) -> int:
    """Rows of a batch of ``count`` prompts: the next power of two (at most MAX_PROMPT_BATCH)
    with static shapes (CUDA graphs / compile), so a new prompt count adds no new shape.
    """
    if not static_shapes:
        return count
    rows = 1
    while rows < count:
        rows *= 2
    return min(rows, MAX_PROMPT_BATCH)


def pad_token_ids(
    ids: Sequence[Sequence[int]], buckets: Sequence[int] | None, rows: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """K token-id lists -> (rows x L int64 ids, rows x L bool mask or None) on ``device``.

    L = the bucket of the longest list (buckets) or the longest length (None). The mask
    (True = real token) is None only without buckets when no row is padded, which keeps a
    single unpadded prompt on exactly the unpadded computation. Rows beyond K repeat the last
    prompt (their results are dropped).
    """
    longest = max(len(i) for i in ids)
    length = bucket_length(longest, buckets) if buckets else longest
    rows_ids = [list(i) for i in ids] + [list(ids[-1])] * (rows - len(ids))
    padded = torch.full((rows, length), PAD_ID, dtype=torch.long)
    mask = torch.zeros((rows, length), dtype=torch.bool)
    for row, values in enumerate(rows_ids):
        padded[row, : len(values)] = torch.tensor(values, dtype=torch.long)
        mask[row, : len(values)] = True
    if not buckets and bool(mask.all()):
        return padded.to(device), None
    return padded.to(device), mask.to(device)
