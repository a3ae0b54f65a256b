"""Hugging Face transformers reward models read at step marks: kind "tag" (Math-Shepherd) and "head" (Qwen2.5-Math-PRM).

Design choices (and why):

* PRM scores are read with ONE forward pass per path at character-exact positions (see
  models/prm_layouts.py).
* For the "tag" kind the full `batch x length x vocab` logits are never built: the LM body gives
  hidden states, only the mark positions are gathered and multiplied by the two output-embedding
  rows of the good/bad tokens.  A load-time self-check compares that shortcut with a plain forward
  so models whose LM head does more than a linear map are refused rather than scored wrongly.
  The "head" kind likewise runs the body once and applies the classifier only to the gathered
  separator rows when a load-time check shows that equals the plain forward (else it falls back).
  The "likelihood" kind (models/likelihood_prm.py, the nano PRM) scores a step from its own
  tokens' log-probabilities, so it needs the full logits of the step tokens.
* Every PRM kind reuses cached prefixes (models/kv_cache.py): a child path runs only its new
  step; the parent's step results come from the cache entry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import AutoModel, AutoModelForTokenClassification, PreTrainedModel

from search.models import StepScores

from .batching import TokenCounter, cached_block, right_padded, score_in_batches, split_by_counts
from .kv_cache import row_slice
from .loading import LoadedModel, ModelLoadError, distinct_pair
from .prm_layouts import PRMLayout, encode_marked, prm_text


def _lm_body(model: PreTrainedModel) -> torch.nn.Module:
    """The transformer under the LM head (gives final-normed hidden states), found across architectures."""
    candidates: list[Any] = []
    with contextlib.suppress(Exception):  # some architectures raise for get_decoder
        candidates.append(model.get_decoder())
    candidates += [
        getattr(model, "base_model", None),
        getattr(model, "model", None),
        getattr(model, "transformer", None),
    ]
    for cand in candidates:
        if isinstance(cand, torch.nn.Module) and cand is not model:
            return cand
    raise ModelLoadError(f"Cannot find the transformer body under {type(model).__name__}'s LM head.")


def _hidden(output: Any) -> torch.Tensor:
    return output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]



class HFPRM(LoadedModel):
    """A process reward model: an LM read at step tags ("tag") or a token classifier ("head")."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: Any,
        *,
        name: str,
        local: Path | None,
        trust_remote_code: bool,
        kind: Literal["tag", "head"],
        mark: str,
        sep: str,
        layout: PRMLayout,
        good_token: str = "+",
        bad_token: str = "-",
        head_label_index: int = 1,
        max_batch: int = 16,
        kv_reuse: bool = True,
        kv_cache_entries: int = 256,
        kv_cache_bytes: int | None = 256 * 2**20,
    ):
        super().__init__(name, local, model.device, model.dtype, trust_remote_code, kv_reuse=kv_reuse,
                         kv_cache_entries=kv_cache_entries, kv_cache_bytes=kv_cache_bytes)
        if not getattr(tokenizer, "is_fast", False):
            raise ModelLoadError(
                f"{name}: PRM scoring needs a fast tokenizer (offset mapping); this one is slow."
            )
        self.model, self.tokenizer, self.kind = model, tokenizer, kind
        self.mark, self.sep, self.layout = mark, sep, layout
        self.max_batch = max(1, int(max_batch))
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.tokens = TokenCounter()
        if kind == "tag":
            self._setup_tag(good_token, bad_token)
        else:
            self._setup_head(head_label_index)
        self.kv_reuse = kv_reuse and self._reader_body() is not None

    def _setup_tag(self, good_token: str, bad_token: str) -> None:
        self.good_id, self.bad_id = distinct_pair(self.tokenizer, good_token, bad_token, "good/bad token")
        self.body = _lm_body(self.model)
        head = self.model.get_output_embeddings()
        if head is None or getattr(head, "weight", None) is None:
            raise ModelLoadError(f"{self.name}: the model has no LM head to read the good/bad tokens from.")
        rows = torch.tensor([self.good_id, self.bad_id], device=head.weight.device)
        self.cand_weight = head.weight.detach()[rows].float()
        bias = getattr(head, "bias", None)
        self.cand_bias = bias.detach()[rows].float() if bias is not None else None
        self._check_tag_shortcut()

    def _setup_head(self, head_label_index: int) -> None:
        self.num_labels = int(getattr(self.model.config, "num_labels", 2))
        if self.num_labels > 1 and not 0 <= head_label_index < self.num_labels:
            raise ModelLoadError(
                f"head_label_index={head_label_index} but the head has {self.num_labels} labels."
            )
        self.head_label_index = head_label_index
        self.head_body, self.head = self._find_head()

    def _find_head(self) -> tuple[torch.nn.Module | None, torch.nn.Module | None]:
        """(body, classifier) when applying the classifier to gathered rows reproduces a plain forward.

        Why: the classifier is a per-position map, so running it only at the separator positions
        gives the same scores without building `batch x length x labels` for every token (and,
        for remote-code PRMs, without whatever else their forward computes).  Checked once at
        load on a short text; any mismatch (or unknown layout) falls back to the full forward.
        """
        head = next(
            (m for m in (getattr(self.model, "score", None), getattr(self.model, "classifier", None)) if m is not None),
            None,
        )
        body = getattr(self.model, "base_model", None)
        if not isinstance(head, torch.nn.Module) or not isinstance(body, torch.nn.Module) or body is self.model:
            return None, None
        ids, positions = self.encode("1 + 1", ["1 + 1 = 2", "2 + 2 = 4"])
        x = torch.tensor([ids], device=self.device)
        mask = torch.ones_like(x)
        try:
            with torch.inference_mode():
                full = self._head_logits(x, mask)[0, positions].float()
                got = head(_hidden(body(input_ids=x, attention_mask=mask))[0, positions]).float()
        except Exception:  # noqa: BLE001 - any failure just means "use the plain forward"
            return None, None
        tolerance = 1e-4 if self.dtype == torch.float32 else 3e-2
        if got.shape != full.shape or not torch.allclose(got, full, atol=tolerance, rtol=tolerance):
            return None, None
        return body, head

    # -- public protocol ---------------------------------------------------------------------

    def score(self, problem: str, paths: Sequence[Sequence[str]]) -> list[StepScores]:
        """Per-step scores for each path: one forward pass per path, paths batched.

        With `kv_reuse` a path whose prefix was scored before (its parent's path) runs only the
        new tokens from that prefix's cached KV; earlier steps' scores come from the cache.
        `tokens_read` is always the path's full length (what one pass reads), so event logs do
        not depend on what happened to be cached; `self.tokens` counts what was really run.
        An empty path gets no scores and tokens_read=0 (nothing is run for it).
        """
        scorer = self._score_cached if self.kv_reuse else self._score_batch
        with self._lock:  # the Rust tokenizer must not be used by two threads at once either
            encoded = [self.encode(problem, path) for path in paths]
            return score_in_batches(encoded, self.max_batch, scorer)

    def encode(self, problem: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        """(token ids, read positions) for one path; exposed so PRM training can use the same layout."""
        text, ends = prm_text(self.layout, problem, steps, self.mark, self.sep)
        if not steps:
            return [], []
        return encode_marked(self.tokenizer, text, ends, len(self.mark))

    # -- internals ---------------------------------------------------------------------------

    def _reader_body(self) -> torch.nn.Module | None:
        """The transformer whose hidden states are read at the marks (None: head kind without shortcut)."""
        return self.body if self.kind == "tag" else self.head_body

    def _scores_from_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores from hidden states gathered at the marks (`[marks, hidden]`)."""
        if self.kind == "tag":
            return torch.softmax(self._tag_logits(hidden), dim=-1)[:, 0]
        logits = self.head(hidden).float()  # type: ignore[misc]
        if self.num_labels == 1:
            return torch.sigmoid(logits[:, 0])
        return torch.softmax(logits, dim=-1)[:, self.head_label_index]

    def _score_cached(self, items: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        """Like `_score_batch`, but each path continues from its longest cached prefix.

        Layout as in the policy's prefill (`cached_block`).  A mark inside the reused prefix takes
        its score from the cache entry (it saw exactly the same tokens); if the entry lacks one,
        the reuse stops before that mark.
        """
        found = []
        for ids, positions in items:
            n, entry = self.kv_cache.lookup(ids, len(ids) - 1)
            known = entry.payload if entry is not None else {}
            n = min([n] + [p for p in positions if p < n and p not in known])
            found.append((n, entry))
        block = cached_block([ids for ids, _ in items], found, self.pad_id, self.device)
        rows, cols = [], []
        for r, ((_, positions), p) in enumerate(zip(items, block.prefix, strict=True)):
            new = [q for q in positions if q >= p]
            rows += [r] * len(new)
            cols += [q - block.shift(r) for q in new]
        self.tokens.count_prefill(block.tokens_run, block.suffix.numel())
        with torch.inference_mode():
            out = self._reader_body()(  # type: ignore[misc]
                input_ids=block.suffix, attention_mask=block.mask, position_ids=block.position_ids,
                past_key_values=block.cache, use_cache=True,
            )
            index = torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)
            hidden = _hidden(out)[index[0].to(self.device), index[1].to(self.device)]
            flat = self._scores_from_hidden(hidden).tolist()
        return self._collect_cached(items, found, block.prefix, flat, out.past_key_values, block.total)

    def _collect_cached(
        self,
        items: list[tuple[list[int], list[int]]],
        found: list[tuple[int, Any]],
        prefix: list[int],
        flat: list[float],
        cache: Any,
        total: int,
    ) -> list[list[float]]:
        """Per path: cached scores for marks before its block, fresh ones after; store the path."""
        out, at = [], 0
        for r, ((ids, positions), (_, entry), p) in enumerate(zip(items, found, prefix, strict=True)):
            fresh = [q for q in positions if q >= p]
            scores = dict(zip(fresh, flat[at : at + len(fresh)], strict=True))
            at += len(fresh)
            scores.update({q: entry.payload[q] for q in positions if q < p})
            out.append([scores[q] for q in positions])
            self.kv_cache.store(ids, row_slice(cache, r, total - len(ids), total), scores)
        return out

    def _score_batch(self, items: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        input_ids, mask = right_padded([ids for ids, _ in items], self.pad_id)
        self.tokens.count_prefill(sum(len(ids) for ids, _ in items), input_ids.numel())
        rows = [b for b, (_, positions) in enumerate(items) for _ in positions]
        cols = [q for _, positions in items for q in positions]
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        rows_t, cols_t = torch.tensor(rows, device=self.device), torch.tensor(cols, device=self.device)
        with torch.inference_mode():
            flat = self._read(input_ids, mask, rows_t, cols_t).tolist()
        return split_by_counts(flat, [len(positions) for _, positions in items])

    def _read(
        self, input_ids: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
    ) -> torch.Tensor:
        body = self._reader_body()
        if body is not None:  # hidden states at the marks only, then the 2 LM rows or the classifier
            return self._scores_from_hidden(_hidden(body(input_ids=input_ids, attention_mask=mask))[rows, cols])
        logits = self._head_logits(input_ids, mask)[rows, cols].float()
        if self.num_labels == 1:
            return torch.sigmoid(logits[:, 0])
        return torch.softmax(logits, dim=-1)[:, self.head_label_index]

    def _head_logits(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=input_ids, attention_mask=mask)
        return out.logits if hasattr(out, "logits") else out[0]

    def _tag_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """good/bad logits from gathered hidden states, mirroring common LM-head post-processing."""
        logits = hidden.float() @ self.cand_weight.T.to(hidden.device)
        if self.cand_bias is not None:
            logits = logits + self.cand_bias.to(hidden.device)
        config = self.model.config
        scale = getattr(config, "logit_scale", None)
        if isinstance(scale, (int, float)):
            logits = logits * scale
        cap = getattr(config, "final_logit_softcapping", None)
        if isinstance(cap, (int, float)) and cap > 0:
            logits = torch.tanh(logits / cap) * cap
        return logits

    def _check_tag_shortcut(self) -> None:
        """Refuse models whose LM head the 2-row shortcut does not reproduce (compared on a short text)."""
        ids, positions = self.encode("1 + 1", ["1 + 1 = 2"])
        x = torch.tensor([ids], device=self.device)
        mask = torch.ones_like(x)
        with torch.inference_mode():
            full = self.model(input_ids=x, attention_mask=mask).logits[0, positions[-1]].float()
            want = torch.softmax(full[[self.good_id, self.bad_id]], dim=-1)[0]
            got = self._read(
                x, mask, torch.tensor([0], device=self.device), torch.tensor(positions, device=self.device)
            )
        tolerance = 1e-4 if self.dtype == torch.float32 else 3e-2
        if abs(float(want) - float(got[0])) > tolerance:
            raise ModelLoadError(
                f"{self.name}: reading the LM head at the step tags from hidden states does not match a "
                f"plain forward ({float(got[0]):.4f} vs {float(want):.4f}); this architecture is not "
                "supported as a kind='tag' PRM."
            )


def head_loader(config: Any, trust_remote_code: bool) -> Any:
    """AutoModelForTokenClassification, or AutoModel for remote-code PRMs that only register that
    (Qwen2.5-Math-PRM ships `Qwen2ForProcessRewardModel` under auto_map["AutoModel"])."""
    auto_map = getattr(config, "auto_map", None) or {}
    if trust_remote_code and "AutoModelForTokenClassification" not in auto_map and "AutoModel" in auto_map:
        return AutoModel
    return AutoModelForTokenClassification
