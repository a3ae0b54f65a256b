"""Batching helpers shared by the transformers policy and reward models.

Padding (`right_padded`), cutting flat per-step results back into paths (`split_by_counts`),
running a scorer `max_batch` paths at a time (`score_in_batches`), the `[pads][cached prefix][tail]`
batch layout of prefix KV reuse (`cached_block`, see models/kv_cache.py) and the token counter
the benchmarks read (`TokenCounter`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from search.models import StepScores

from .kv_cache import build_batch


def right_padded(id_lists: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`[batch, longest]` right-padded input ids and their attention mask (CPU tensors)."""
    width = max(len(ids) for ids in id_lists)
    input_ids = torch.full((len(id_lists), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(id_lists), width), dtype=torch.long)
    for b, ids in enumerate(id_lists):
        input_ids[b, : len(ids)] = torch.tensor(ids)
        mask[b, : len(ids)] = 1
    return input_ids, mask


def split_by_counts(flat: Sequence[float], counts: Sequence[int]) -> list[list[float]]:
    """Cut one flat list of step scores back into consecutive per-path lists of `counts` items."""
    out, at = [], 0
    for count in counts:
        out.append(list(flat[at : at + count]))
        at += count
    return out


def score_in_batches(
    encoded: Sequence[tuple[list[int], Sequence[Any]]],
    max_batch: int,
    scorer: Callable[[list[tuple[list[int], Any]]], list[list[float]]],
) -> list[StepScores]:
    """`scorer` over the encoded paths that have steps, `max_batch` at a time.

    Each item is (token ids, one mark per step); an empty path gets no scores and tokens_read=0
    (nothing is run for it), and `tokens_read` is always the path's full length.
    """
    results = [StepScores(scores=(), tokens_read=0) for _ in encoded]
    todo = [i for i, (_, marks) in enumerate(encoded) if marks]
    for start in range(0, len(todo), max_batch):
        batch = todo[start : start + max_batch]
        for i, scores in zip(batch, scorer([encoded[i] for i in batch]), strict=True):
            results[i] = StepScores(scores=tuple(scores), tokens_read=len(encoded[i][0]))
    return results


@dataclass
class CachedBlock:
    """One batch laid out `[pads][cached prefix][tail]`: what a cached forward runs and where rows sit.

    Row r runs its tokens from `prefix[r]` on (the rest comes from its cache entry), right-aligned
    in `suffix`; token position q of row r is column `q - shift(r)` of the forward's outputs.
    """

    lengths: list[int]
    prefix: list[int]
    suffix: torch.Tensor
    mask: torch.Tensor
    position_ids: torch.Tensor
    cache: Any
    block: int

    @property
    def width(self) -> int:
        return int(self.suffix.shape[1])

    @property
    def total(self) -> int:
        """Columns of the batch cache after the forward (cached block + run tokens)."""
        return self.block + self.width

    @property
    def tokens_run(self) -> int:
        return sum(n - p for n, p in zip(self.lengths, self.prefix, strict=True))

    def shift(self, row: int) -> int:
        return self.lengths[row] - self.width


def cached_block(
    id_lists: Sequence[Sequence[int]], found: Sequence[tuple[int, Any]], pad_id: int, device: torch.device
) -> CachedBlock:
    """Left-padded batch where row i continues from at most `found[i] = (start, cache entry)`.

    The run block is as wide as the longest uncached tail; a row with a shorter tail takes that
    many more of its own (cached) tokens into the block, so there are no holes.  Explicit
    position ids keep every row's positions as in one plain forward.
    """
    width = max(len(ids) - n for ids, (n, _) in zip(id_lists, found, strict=True))
    prefix = [max(0, len(ids) - width) for ids in id_lists]
    block = max(prefix)
    cache = build_batch([(e.layers if e else None, p) for (_, e), p in zip(found, prefix, strict=True)], block)
    suffix = torch.full((len(id_lists), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(id_lists), block + width), dtype=torch.long)
    for r, (ids, p) in enumerate(zip(id_lists, prefix, strict=True)):
        suffix[r, width - (len(ids) - p) :] = torch.tensor(list(ids[p:]))
        mask[r, block + width - len(ids) :] = 1
    position_ids = (mask.cumsum(1) - 1).masked_fill(mask == 0, 1)[:, block:]
    return CachedBlock([len(ids) for ids in id_lists], prefix, suffix.to(device), mask.to(device),
                       position_ids.to(device), cache, block)



@dataclass
class TokenCounter:
    """Tokens the policy ran through the model, to measure how much prompt text is re-encoded.

    `encoded` counts real (non-pad) positions of active rows; `padded` counts every position
    computed, padding and already-finished rows included; `generated` counts tokens sampled.
    """

    encoded: int = 0
    padded: int = 0
    generated: int = 0

    def count_prefill(self, real: int, computed: int) -> None:
        self.encoded += real
        self.padded += computed

    def count_decode(self, active: int, rows: int) -> None:
        self.encoded += active
        self.padded += rows

    def count_generate(self, prompt_tokens: int, lengths: list[int]) -> None:
        """generate's cost: the expanded prompts, then each row's tokens fed back."""
        self.encoded += prompt_tokens + sum(max(0, n - 1) for n in lengths)
        self.padded += prompt_tokens + sum(max(0, n - 1) for n in lengths)
        self.generated += sum(lengths)

    def reset(self) -> None:
        self.encoded = self.padded = self.generated = 0

