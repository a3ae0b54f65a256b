"""A likelihood PRM: a causal LM that scores each step by how likely it finds the step's own tokens.

Why this kind exists: a small transformer checks a digit best at the place where it would have
written it.  Reading one score at a step tag asks the model to recompute the whole step inside a
single position, which our 0.9M-parameter nano PRM learned far more slowly than it learned to
write steps (measured in nano/README.md).  Here every token of the step is predicted by the LM
from the text before it, and the step's score is

    sigmoid(scale * min over the step's tokens of log p(token | text before it) + bias)

so one wrong digit (a token the verifier would not have written) sinks the step.  The minimum
runs over the path so far (steps 1..i), so a step's score is the PRM's view of the whole prefix,
as with Math-Shepherd labels: after a slip every later step stays low, and aggregation="last"
ranks paths by their weakest step.  `scale` and `bias` are trained together with the LM on
labelled steps (`nano train prm`, Math-Shepherd or checker labels) and saved in the model's
config.json under `likelihood_prm`; a causal LM without them scores a step by the least likely
token's probability (`exp(min log p)`).

The input is the policy's own prompt format by default (`HEAD_LAYOUT`: `Problem: ...\\nSolution:\\n`
then each step and the separator), so any policy checkpoint is also an (uncalibrated) verifier.

Prefix KV reuse (`kv_reuse=True`, the default) works as for the other kinds: a child path runs
only its new step from the parent's cached KV.  The cache entry keeps each scored step's smallest
log-probability keyed by its token span, and the forward starts one token before the first step
it must score, since a token's log-probability comes from the logits one position earlier.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from search.models import StepScores

from .batching import TokenCounter, cached_block, right_padded, score_in_batches, split_by_counts
from .kv_cache import Entry, row_slice
from .lean_qwen2 import lean_forward
from .loading import LoadedModel, ModelLoadError
from .prm_layouts import PRMLayout, prm_text

#: The config.json key holding the trained calibration {"scale": float, "bias": float}.
CALIBRATION_KEY = "likelihood_prm"


def step_token_spans(
    tokenizer: Any, text: str, char_spans: Sequence[tuple[int, int]]
) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of `text` (tokenized whole) and, per character span, the [first, last] token indices covering it.

    A token straddling the start of a step (a BPE merge across the boundary) counts as the step's;
    the first token of the text is never in a span, as nothing before it predicts it.
    """
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
    return list(enc["input_ids"]), spans_from_offsets(list(enc["offset_mapping"]), char_spans)


def spans_from_offsets(
    offsets: Sequence[tuple[int, int]], char_spans: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Per character span, the [first, last] indices of the tokens (by character offsets) covering it."""
    spans = []
    for start, end in char_spans:
        hits = [j for j, (a, b) in enumerate(offsets) if b > a and b > start and a < end]
        if not hits:
            raise ValueError(f"No token covers the step at characters {start}-{end}; the tokenizer dropped it.")
        spans.append((max(1, hits[0]), hits[-1]))
    return spans


def end_token_ids(tokenizer: Any, sep: str) -> list[int]:
    """Token ids that end a step: the separator when it is one token, and EOS."""
    ids = tokenizer(sep, add_special_tokens=False)["input_ids"] if sep else []
    found = ids if len(ids) == 1 else []
    return found + ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])


def encode_steps(
    tokenizer: Any, layout: PRMLayout, sep: str, problem: str, steps: Sequence[str]
) -> tuple[list[int], list[tuple[int, int]]]:
    """(token ids, per step its [first, last] token) of a path laid out with `layout` and separator `sep`."""
    if not steps:
        return [], []
    text, char_spans = _path_text(layout, sep, problem, steps)
    return step_token_spans(tokenizer, text, char_spans)


def encode_paths(
    tokenizer: Any, layout: PRMLayout, sep: str, problem: str, paths: Sequence[Sequence[str]]
) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """`encode_steps` of every path, the texts tokenized in one tokenizer call (same ids and spans)."""
    texts = {i: _path_text(layout, sep, problem, steps) for i, steps in enumerate(paths) if steps}
    if not texts:
        return [([], []) for _ in paths]
    enc = tokenizer([text for text, _ in texts.values()], return_offsets_mapping=True, add_special_tokens=True)
    done = {i: (list(ids), spans_from_offsets(list(offsets), char_spans))
            for i, (_, char_spans), ids, offsets
            in zip(texts, texts.values(), enc["input_ids"], enc["offset_mapping"], strict=True)}
    return [done.get(i, ([], [])) for i in range(len(paths))]


def _path_text(layout: PRMLayout, sep: str, problem: str, steps: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The path's PRM text and each step's [start, end) character span in it."""
    text, ends = prm_text(layout, problem, steps, sep)
    starts = [len(layout.prefix.replace("{problem}", problem)), *ends[:-1]]
    return text, list(zip(starts, ends, strict=True))


def prefix_minima(minima: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
    """Running minimum within each path (`counts` steps per path, concatenated): the prefix's weakest token."""
    return torch.cat([part.cummin(0).values for part in torch.split(minima, list(counts))])


def calibration(model: PreTrainedModel) -> tuple[float, float] | None:
    """(scale, bias) saved with the model, or None for an uncalibrated causal LM."""
    saved = getattr(model.config, CALIBRATION_KEY, None)
    if not isinstance(saved, dict):
        return None
    try:
        return float(saved["scale"]), float(saved["bias"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(
            f"config.json {CALIBRATION_KEY} must hold numbers 'scale' and 'bias', got {saved!r}"
        ) from exc


def step_scores(min_logprob: torch.Tensor, calib: tuple[float, float] | None) -> torch.Tensor:
    """Scores in [0, 1] from each step's smallest token log-probability (see the module docstring)."""
    if calib is None:
        return min_logprob.exp()
    scale, bias = calib
    return torch.sigmoid(scale * min_logprob + bias)


def step_min_logprobs(
    logits: torch.Tensor,
    input_ids: torch.Tensor,
    rows: Sequence[int],
    spans: Sequence[tuple[int, int]],
    end_ids: Sequence[int] = (),
) -> torch.Tensor:
    """Per (row, [first, last]) token span: the smallest log p(token | tokens before it) (differentiable).

    A span ending in one of `end_ids` (the step separator, EOS) scores that last token as
    log p(any end token): "the step ends here" is spelled as a newline before the next step but EOS after
    the final answer, and a verifier should not be surprised by which one the layout uses.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    ends = torch.tensor(sorted(set(end_ids)), dtype=torch.long, device=logits.device)
    out = []
    for r, (first, last) in zip(rows, spans, strict=True):
        targets = input_ids[r, first : last + 1]
        token_lp = logp[r, first - 1 : last].gather(-1, targets[:, None])[:, 0]
        if len(ends) and bool((ends == targets[-1]).any()):
            token_lp = torch.cat([token_lp[:-1], torch.logsumexp(logp[r, last - 1, ends], dim=0)[None]])
        out.append(token_lp.min())
    return torch.stack(out) if out else logits.new_zeros(0, dtype=torch.float32)


class LikelihoodPRM(LoadedModel):
    """`RewardModel` over a causal LM: one forward pass per path, steps scored by their own tokens."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: Any,
        *,
        name: str,
        local: Path | None,
        trust_remote_code: bool,
        layout: PRMLayout,
        sep: str,
        max_batch: int = 16,
        kv_reuse: bool = True,
        kv_cache_entries: int = 256,
        kv_cache_bytes: int | None = 256 * 2**20,
    ):
        super().__init__(name, local, model.device, model.dtype, trust_remote_code, kv_reuse=kv_reuse,
                         kv_cache_entries=kv_cache_entries, kv_cache_bytes=kv_cache_bytes)
        if not getattr(tokenizer, "is_fast", False):
            raise ModelLoadError(f"{name}: PRM scoring needs a fast tokenizer (offset mapping); this one is slow.")
        self.model, self.tokenizer, self.layout, self.sep = model, tokenizer, layout, sep
        self._forward = lean_forward(model)  # the model's forward, less per-call cost where supported
        self.kind = "likelihood"
        self.calibration = calibration(model)
        self.max_batch = max(1, int(max_batch))
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.end_ids = end_token_ids(tokenizer, sep)
        self.tokens = TokenCounter()

    def encode(self, problem: str, steps: Sequence[str]) -> tuple[list[int], list[tuple[int, int]]]:
        """(token ids, per step its [first, last] token) in this PRM's layout."""
        return encode_steps(self.tokenizer, self.layout, self.sep, problem, steps)

    def score(self, problem: str, paths: Sequence[Sequence[str]]) -> list[StepScores]:
        """Per-step scores for each path; an empty path gets none and tokens_read=0.

        With `kv_reuse` a path whose prefix was scored before (its parent's path) runs only its
        new tokens from that prefix's cached KV, and earlier steps' smallest log-probabilities
        come from the cache entry.  `tokens_read` is always the path's full length.
        """
        scorer = self._score_cached if self.kv_reuse else self._score_batch
        with self._lock:
            encoded = encode_paths(self.tokenizer, self.layout, self.sep, problem, paths)
            return score_in_batches(encoded, self.max_batch, scorer)

    def _score_batch(self, items: list[tuple[list[int], list[tuple[int, int]]]]) -> list[list[float]]:
        input_ids, mask = right_padded([ids for ids, _ in items], self.pad_id)
        self.tokens.count_prefill(sum(len(ids) for ids, _ in items), input_ids.numel())
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        rows = [b for b, (_, spans) in enumerate(items) for _ in spans]
        spans = [span for _, item_spans in items for span in item_spans]
        with torch.inference_mode():
            logits = self._forward(input_ids=input_ids, attention_mask=mask).logits
            minima = step_min_logprobs(logits, input_ids, rows, spans, self.end_ids)
        return self._scores_from_minima(minima, [len(item_spans) for _, item_spans in items])

    def _scores_from_minima(self, minima: torch.Tensor, counts: list[int]) -> list[list[float]]:
        """Per-path step scores from each step's own smallest log-probability (concatenated)."""
        flat = step_scores(prefix_minima(minima, counts), self.calibration).tolist()
        return split_by_counts(flat, counts)

    def _reusable(self, ids: list[int], spans: list[tuple[int, int]]) -> tuple[int, Entry | None]:
        """(where this path's forward must start, the cache entry to continue from).

        A step's tokens are predicted by the logits one position earlier, so a step is reused
        only when the entry scored the same token span inside the shared prefix; otherwise the
        forward starts one token before the step so those logits are computed again.
        """
        n, entry = self.kv_cache.lookup(ids, len(ids) - 1)
        known = entry.payload if entry is not None else {}
        redo = [first - 1 for first, last in spans if not (last < n and (first, last) in known)]
        return min([n, *redo]), entry

    def _score_cached(self, items: list[tuple[list[int], list[tuple[int, int]]]]) -> list[list[float]]:
        """Like `_score_batch`, but each path continues from its longest cached prefix."""
        found = [self._reusable(ids, spans) for ids, spans in items]
        block = cached_block([ids for ids, _ in items], found, self.pad_id, self.device)
        rows, shifted = [], []
        for r, ((_, spans), start) in enumerate(zip(items, block.prefix, strict=True)):
            fresh = [(first, last) for first, last in spans if first - 1 >= start]
            rows += [r] * len(fresh)
            shifted += [(first - block.shift(r), last - block.shift(r)) for first, last in fresh]
        self.tokens.count_prefill(block.tokens_run, block.suffix.numel())
        with torch.inference_mode():
            out = self._forward(input_ids=block.suffix, attention_mask=block.mask, position_ids=block.position_ids,
                               past_key_values=block.cache, use_cache=True)
            fresh_minima = iter(step_min_logprobs(out.logits, block.suffix, rows, shifted, self.end_ids).tolist())
            minima: list[float] = []
            for r, ((ids, spans), (_, entry), start) in enumerate(zip(items, found, block.prefix, strict=True)):
                minimum_by_span = {
                    span: (next(fresh_minima) if span[0] - 1 >= start else entry.payload[span]) for span in spans
                }
                minima += [minimum_by_span[span] for span in spans]
                kv_rows = row_slice(out.past_key_values, r, block.total - len(ids), block.total)
                self.kv_cache.store(ids, kv_rows, minimum_by_span)
        return self._scores_from_minima(torch.tensor(minima), [len(spans) for _, spans in items])
