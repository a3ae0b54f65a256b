"""Prefix key/value reuse for the transformers policy: a bounded LRU of per-prefix KV tensors.

Why: in a reasoning tree every child's prompt is its parent's prompt plus one step, so a
search that re-encodes each prompt from scratch spends most of its policy compute on text the
model has already read.  After a step is generated, the KV of `prompt + step` is kept here;
the next call for a child finds the longest cached token prefix and runs only the rest.

Design choices (and why):

* Keys are token-id tuples of the prompt as the tokenizer encodes it whole (not text): the
  reuse path then runs exactly the ids a plain forward would, so outputs match it up to float
  noise.  A child prompt may tokenize differently from "parent ids + sampled ids" around the
  step boundary; matching by longest common prefix (then cropping) absorbs that.
* Entries hold plain per-layer `(keys, values)` tensors of shape `[heads, length, head_dim]`,
  cloned out of the batch cache (a view would keep the whole batch's cache alive and break the
  byte accounting).  `build_batch` turns rows of them into one left-padded `DynamicCache`.
* Memory is bounded by entry count and by bytes; least recently used entries go first.  An
  entry whose key is a prefix of a newly stored key is dropped (the new one covers it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache

#: One layer's cached keys and values for one sequence: `[heads, length, head_dim]` each.
LayerKV = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Entry:
    """One cached prefix: per-layer KV and whatever the owner keeps with it (PRMs: per-step results)."""

    layers: list[LayerKV]
    payload: dict[Any, Any] = field(default_factory=dict)


@dataclass
class CacheStats:
    """What the cache did: lookups, hits and how many prompt tokens were served from it."""

    lookups: int = 0
    hits: int = 0
    reused_tokens: int = 0
    stored: int = 0
    evicted: int = 0


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the common prefix, by binary search over slice comparisons (C speed, not a Python loop)."""
    a, b = tuple(a), tuple(b)
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while lo < hi:  # a[:lo] == b[:lo] holds; a[:hi + 1] != b[:hi + 1]
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class PrefixKVCache:
    """LRU of token-prefix -> per-layer KV tensors, bounded by entries and bytes."""

    def __init__(self, max_entries: int = 256, max_bytes: int | None = 512 * 2**20):
        self.max_entries = max(1, int(max_entries))
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[int, ...], Entry] = OrderedDict()
        self._sizes: dict[tuple[int, ...], int] = {}
        self.nbytes = 0
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._sizes.clear()
        self.nbytes = 0

    def lookup(self, ids: Sequence[int], limit: int) -> tuple[int, Entry | None]:
        """(usable prefix length <= limit, the entry) for the longest common prefix with `ids`."""
        self.stats.lookups += 1
        ids = tuple(ids)
        best, best_key = 0, None
        for key in self._entries:
            n = common_prefix_len(key, ids)
            if n > best:
                best, best_key = n, key
        best = min(best, limit)
        if best_key is None or best <= 0:
            return 0, None
        self._entries.move_to_end(best_key)
        self.stats.hits += 1
        self.stats.reused_tokens += best
        return best, self._entries[best_key]

    def store(self, ids: Sequence[int], layers: list[LayerKV], payload: dict[Any, Any] | None = None) -> None:
        """Keep the KV of `ids` (already cloned, exactly len(ids) positions) unless an entry covers it."""
        key = tuple(ids)
        if not key:
            return
        for old in list(self._entries):
            if len(old) >= len(key) and old[: len(key)] == key:
                self._entries.move_to_end(old)
                return
            if len(old) < len(key) and key[: len(old)] == old:
                self._drop(old)
        size = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)
        if self.max_bytes is not None and size > self.max_bytes:
            return
        self._entries[key] = Entry(layers, payload or {})
        self._sizes[key] = size
        self.nbytes += size
        self.stats.stored += 1
        while len(self._entries) > self.max_entries or (self.max_bytes is not None and self.nbytes > self.max_bytes):
            self._drop(next(iter(self._entries)))
            self.stats.evicted += 1

    def _drop(self, key: tuple[int, ...]) -> None:
        del self._entries[key]
        self.nbytes -= self._sizes.pop(key)


def layers_of(cache: DynamicCache) -> list[LayerKV]:
    """The batch cache's per-layer (keys, values) `[batch, heads, length, head_dim]` tensors."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def row_slice(cache: DynamicCache, row: int, start: int, stop: int) -> list[LayerKV]:
    """Clone one row's KV for positions [start, stop) out of a batch cache."""
    return [(k[row, :, start:stop].clone(), v[row, :, start:stop].clone()) for k, v in layers_of(cache)]


def build_batch(rows: Sequence[tuple[list[LayerKV] | None, int]], width: int) -> DynamicCache:
    """A left-padded batch cache of `width` positions from (entry layers, prefix length) per row.

    Row i's first `length` cached positions go at the right end of the block; the left is zeros
    (masked out by the caller's attention mask).  Rows without an entry are all padding.
    """
    cache = DynamicCache()
    if width == 0:
        return cache
    template = next(layers for layers, n in rows if layers is not None and n > 0)
    for index, (k0, v0) in enumerate(template):
        keys = k0.new_zeros((len(rows), k0.shape[0], width, k0.shape[-1]))
        values = v0.new_zeros((len(rows), v0.shape[0], width, v0.shape[-1]))
        for r, (layers, n) in enumerate(rows):
            if layers is not None and n > 0:
                keys[r, :, width - n :] = layers[index][0][:, :n]
                values[r, :, width - n :] = layers[index][1][:, :n]
        cache.update(keys, values, index)
    return cache
