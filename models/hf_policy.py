"""Hugging Face transformers policy: a causal LM (local directory or hub id) as the search's `Policy`.

Design choices (and why):

* The checkpoint's own `generation_config.json` sampling defaults (top-k/top-p, repetition
  penalty, ...) are replaced by a neutral config: the search controls sampling, and the reported
  log-probabilities must be those of the distribution actually sampled from.
* `Proposal.token_logprobs` are log-probabilities of the emitted tokens under the sampling
  distribution: `log_softmax(logits / temperature)` when sampling, and `log_softmax(logits)`
  (temperature 1, the model's own distribution) for greedy decoding, computed from the raw logits.
  The inference-server backend (models/server_policy.py) returns the same quantities.
* Prompts become token ids through `models.prompting.prompt_token_ids`, the one builder every
  policy backend uses.
* Sampling is made reproducible by seeding torch's global RNG right before `generate`, inside a
  forked RNG state (the caller's RNG is left untouched) and under a module-level lock (two
  threads generating at once would otherwise interleave draws from the same RNG).
* Prefix KV reuse (`kv_reuse=True`, the default; see models/kv_cache.py): `propose`/`complete`
  do not call `generate` but a small decode loop of their own, so that after each step the KV
  of `prompt + step` can be kept in a bounded LRU.  A child's prompt then runs only the tokens
  past its longest cached prefix.  Rows with different cached lengths share one left-padded
  batch laid out `[pads][cached prefix][uncached tail]`: the tail block is as wide as the
  longest uncached tail, and a row with a shorter tail re-runs a few of its cached tokens to
  fill it, so there are no holes in the mask and positions come from the mask's cumsum, as in
  `generate`.  The loop samples exactly as `generate` does (raw float32 logits / T, one
  multinomial over the whole batch per step, finished rows padded), so greedy AND seeded
  sampling give the same tokens with and without reuse; log-probabilities agree to ~1e-6 (float
  sums run in another order).  `run_search` empties the cache at the start of every search, so
  same-seed event logs stay identical.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from transformers import (
    GenerationConfig,
    PreTrainedModel,
    StoppingCriteria,
    StoppingCriteriaList,
)

from search.models import Judgement, Proposal

from .batching import TokenCounter, cached_block
from .kv_cache import row_slice
from .lean_qwen2 import lean_forward
from .loading import LoadedModel, distinct_pair
from .prompting import (
    ChatFormat,
    cut_generation,
    decode,
    eos_token_ids,
    prompt_token_id_batch,
    stop_token_ids,
)

if TYPE_CHECKING:
    from pathlib import Path


#: Guards torch's global RNG between seeding and the end of `generate` (see module docstring).
_RNG_LOCK = threading.Lock()


@contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's RNG for one generate call without disturbing the caller's RNG state."""
    accelerated = device.type in ("cuda", "mps")
    devices = [device] if accelerated else []  # the CPU state is always forked
    with (
        _RNG_LOCK,
        torch.random.fork_rng(devices=devices, device_type=device.type if accelerated else "cuda"),
    ):
        torch.manual_seed(seed)
        yield


class _StopOnText(StoppingCriteria):
    """Marks a row done once its new text contains `stop` (decodes only a short tail per step)."""

    def __init__(self, tokenizer: Any, stop: str, prompt_len: int):
        self.tokenizer = tokenizer
        self.stop = stop
        self.prompt_len = prompt_len
        # a character is at most 4 byte-level tokens; the margin absorbs partial bytes at the window start
        self.window = 4 * len(stop) + 8

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        tails = input_ids[:, self.prompt_len :][:, -self.window :].tolist()
        texts = self.tokenizer.batch_decode(
            tails, skip_special_tokens=False, clean_up_tokenization_spaces=False
        )
        return torch.tensor([self.stop in t for t in texts], dtype=torch.bool, device=input_ids.device)


class HFPolicy(LoadedModel):
    """A causal LM as the search's policy: proposes steps, completes paths and judges steps.

    `chat` (a `ChatFormat`, or None): the engine writes prompts and self-evaluation questions
    through it (see models.factory.attach_chat, which also reads P(yes) from its yes/no tokens).
    """

    chat: ChatFormat | None = None

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: Any,
        *,
        name: str,
        local: Path | None,
        trust_remote_code: bool,
        yes_token: str = " yes",
        no_token: str = " no",
        max_batch: int = 64,
        kv_reuse: bool = True,
        kv_cache_entries: int = 256,
        kv_cache_bytes: int | None = 512 * 2**20,
    ):
        super().__init__(name, local, model.device, model.dtype, trust_remote_code, kv_reuse=kv_reuse,
                         kv_cache_entries=kv_cache_entries, kv_cache_bytes=kv_cache_bytes)
        self.model = model
        self._forward = lean_forward(model)  # the model's forward, less per-call cost where supported
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"  # generation continues right after each prompt
        self.max_batch = max(1, int(max_batch))
        self._stop_ids: dict[str, torch.Tensor | None] = {}
        self._stop_sets: dict[str, frozenset[int]] = {}
        self.tokens = TokenCounter()
        self.yes_id, self.no_id = distinct_pair(tokenizer, yes_token, no_token, "yes/no token")
        self.eos_ids = eos_token_ids(tokenizer, model.generation_config)
        model.generation_config = GenerationConfig(
            eos_token_id=sorted(self.eos_ids), pad_token_id=tokenizer.pad_token_id
        )

    # -- public protocol ---------------------------------------------------------------------

    def propose(
        self,
        prompts: Sequence[str],
        k: int,
        *,
        temperature: float,
        max_new_tokens: int,
        stop: str,
        seed: int,
    ) -> list[list[Proposal]]:
        """k proposals per prompt, each cut before the first `stop`; greedy (temperature 0) gives k copies."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        return self._generate(
            prompts, k, temperature=temperature, max_new_tokens=max_new_tokens, stop=stop or None, seed=seed
        )

    def complete(
        self, prompts: Sequence[str], *, temperature: float, max_new_tokens: int, seed: int
    ) -> list[Proposal]:
        """Each prompt continued to EOS or `max_new_tokens`, full text (not cut at any delimiter)."""
        rows = self._generate(
            prompts, 1, temperature=temperature, max_new_tokens=max_new_tokens, stop=None, seed=seed
        )
        return [row[0] for row in rows]

    def judge(self, questions: Sequence[str]) -> list[Judgement]:
        """P(yes) from the last-position logits of the yes/no tokens, plus <= 8 greedy words.

        The greedy generate's first step IS the single forward pass over the questions, so the
        probability and the words cost one batched prefill plus a few decode steps.
        """
        judgements: list[Judgement] = []
        with self._lock:
            for start in range(0, len(questions), self.max_batch):
                judgements += self._judge_chunk(list(questions[start : start + self.max_batch]))
        return judgements

    # -- internals ---------------------------------------------------------------------------

    def _generate(
        self,
        prompts: Sequence[str],
        k: int,
        *,
        temperature: float,
        max_new_tokens: int,
        stop: str | None,
        seed: int,
    ) -> list[list[Proposal]]:
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        prompts = list(prompts)
        if not prompts:
            return []
        sample = temperature > 0
        per_prompt = k if sample else 1
        chunk = max(1, self.max_batch // per_prompt)
        rows: list[Proposal] = []
        with self._lock, _seeded(seed, self.device):
            for start in range(0, len(prompts), chunk):
                rows += self._generate_chunk(
                    prompts[start : start + chunk], per_prompt, temperature, max_new_tokens, stop
                )
        if not sample:
            return [[row] * k for row in rows]
        return [rows[i * k : (i + 1) * k] for i in range(len(prompts))]

    def _generation_config(self, *, temperature: float, max_new_tokens: int, n: int) -> GenerationConfig:
        sample = temperature > 0
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=sample,
            temperature=temperature if sample else None,
            top_k=0 if sample else None,  # transformers' global default is top_k=50: turn it off
            top_p=1.0 if sample else None,
            num_return_sequences=n,
            return_dict_in_generate=True,
            output_logits=True,
            eos_token_id=sorted(self.eos_ids),
            pad_token_id=self.tokenizer.pad_token_id,
        )

    def _run_generate(
        self, prompts: list[str], n: int, temperature: float, max_new_tokens: int, stop: str | None
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        """(new token ids [rows, T], their logprobs [rows, T], raw logits per step)."""
        if self.kv_reuse:
            new, logits = self._decode_cached(prompts, n, temperature, max_new_tokens, stop)
            return new, _emitted_logprobs(new, logits, temperature), logits
        ids = prompt_token_id_batch(self.tokenizer, prompts)
        enc = self.tokenizer.pad({"input_ids": ids}, return_tensors="pt").to(self.device)
        prompt_len = enc["input_ids"].shape[1]
        criteria = StoppingCriteriaList([_StopOnText(self.tokenizer, stop, prompt_len)]) if stop else None
        config = self._generation_config(temperature=temperature, max_new_tokens=max_new_tokens, n=n)
        with torch.inference_mode():
            out = self.model.generate(**enc, generation_config=config, stopping_criteria=criteria)
        new = out.sequences[:, prompt_len:]
        self.tokens.count_generate(int(enc["attention_mask"].sum()) * n, self._used_lengths(new))
        return new, _emitted_logprobs(new, out.logits, temperature), out.logits

    # -- prefix KV reuse ---------------------------------------------------------------------

    def _decode_cached(
        self, prompts: list[str], n: int, temperature: float, max_new_tokens: int, stop: str | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """`generate` re-done by hand so each prompt starts from its longest cached prefix.

        Mirrors generate's sampling exactly (raw float32 logits / temperature, softmax, one
        multinomial draw over the whole batch per step, finished rows padded), so a seeded call
        samples the same tokens with or without reuse, up to float noise in the logits.
        """
        ids = prompt_token_id_batch(self.tokenizer, prompts)
        logits, cache, mask, pads = self._prefill(ids)
        if n > 1:
            logits, mask = logits.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)
            cache.batch_repeat_interleave(n)
        rows = logits.shape[0]
        eos = torch.tensor(sorted(self.eos_ids), device=self.device)
        stop_ids = self._stop_token_ids(stop) if stop else None
        stopper = _StopOnText(self.tokenizer, stop, 0) if stop and stop_ids is None else None
        unfinished = torch.ones(rows, dtype=torch.bool, device=self.device)
        used = torch.full((rows,), max_new_tokens, dtype=torch.long, device=self.device)
        new = torch.empty((rows, 0), dtype=torch.long, device=self.device)
        steps: list[torch.Tensor] = []
        positions = mask.sum(1, keepdim=True) - 1
        for t in range(max_new_tokens):
            steps.append(logits)
            token = self._pick(logits, temperature)
            token = torch.where(unfinished, token, torch.full_like(token, self.tokenizer.pad_token_id))
            new = torch.cat([new, token[:, None]], dim=1)
            unfinished &= ~torch.isin(token, eos)
            if stop_ids is not None:
                unfinished &= ~torch.isin(token, stop_ids)
            elif stopper is not None:
                unfinished &= ~stopper(new, None)
            used = torch.where(unfinished | (used < max_new_tokens), used, torch.full_like(used, t + 1))
            if not bool(unfinished.any()) or t + 1 == max_new_tokens:
                break
            self.tokens.count_decode(int(unfinished.sum()), rows)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            positions = positions + 1
            with torch.inference_mode():
                out = self._forward(
                    input_ids=token[:, None],
                    attention_mask=mask,
                    position_ids=positions,
                    past_key_values=cache,
                    use_cache=True,
                )
            logits = out.logits[:, -1, :].float()
        lengths = used.clamp(max=new.shape[1]).tolist()  # tokens each row used, through its EOS/stop token
        self.tokens.generated += sum(lengths)
        if stop:
            self._store(ids, n, new, cache, pads, lengths)
        return new, tuple(steps)

    def _stop_token_ids(self, stop: str) -> torch.Tensor | None:
        """`models.prompting.stop_token_ids` as a tensor on the model's device (cached per stop)."""
        if stop not in self._stop_ids:
            ids = stop_token_ids(self.tokenizer, stop)
            self._stop_ids[stop] = None if ids is None else torch.tensor(ids, dtype=torch.long, device=self.device)
        return self._stop_ids[stop]

    def _pick(self, logits: torch.Tensor, temperature: float) -> torch.Tensor:
        if temperature <= 0:
            return logits.argmax(dim=-1)
        return torch.multinomial(torch.softmax(logits / temperature, dim=-1), num_samples=1).squeeze(1)

    def _prefill(self, ids: list[list[int]]) -> tuple[torch.Tensor, Any, torch.Tensor, list[int]]:
        """Run only what the cache does not hold, as one left-padded batch.

        The suffix block is as wide as the longest uncached tail; a row with a shorter tail
        takes that many more of its own (cached) tokens into the block, so the layout stays
        `[pads][cached prefix][tail]` with no holes.  Returns last-position logits, the batch
        cache, the attention mask and each row's left padding.
        """
        found = [self.kv_cache.lookup(row, len(row) - 1) for row in ids]
        block = cached_block(ids, found, self.tokenizer.pad_token_id, self.device)
        self.tokens.count_prefill(block.tokens_run, block.suffix.numel())
        with torch.inference_mode():
            out = self._forward(input_ids=block.suffix, attention_mask=block.mask, position_ids=block.position_ids,
                               past_key_values=block.cache, use_cache=True)
        return out.logits[:, -1, :].float(), out.past_key_values, block.mask, [block.total - len(row) for row in ids]

    def _store(
        self, ids: list[list[int]], n: int, new: torch.Tensor, cache: Any, pads: list[int], lengths: list[int]
    ) -> None:
        """Keep each row's `prompt + step` KV (up to its stop, and only what was fed back)."""
        fed = new.shape[1] - 1  # the last sampled token was never run through the model
        for r, length in enumerate(lengths):
            prompt = ids[r // n]
            kept = min(length, fed)
            start = pads[r // n]
            key = prompt + new[r, :kept].tolist()
            self.kv_cache.store(key, row_slice(cache, r, start, start + len(key)))

    def _used_lengths(self, new: torch.Tensor) -> list[int]:
        """Per row, about how many generated tokens it used: all but the trailing padding that
        `generate` adds after a row finishes (instrumentation only; cheap, no decoding)."""
        pad = self.tokenizer.pad_token_id
        trailing = (new != pad).int().flip(1).cumsum(1).eq(0).sum(1)
        lengths = new.shape[1] - trailing
        if pad in self.eos_ids:  # the EOS that ended the row is the same id as the padding
            lengths = torch.where(trailing > 0, lengths + 1, lengths)
        return lengths.tolist()

    def _generate_chunk(
        self, prompts: list[str], n: int, temperature: float, max_new_tokens: int, stop: str | None
    ) -> list[Proposal]:
        new, logprobs, _ = self._run_generate(prompts, n, temperature, max_new_tokens, stop)
        proposals = []
        for tokens, lps in zip(new.tolist(), logprobs.tolist(), strict=True):
            count, text, ended = self._cut(tokens, stop)
            proposals.append(
                Proposal(text=text, token_count=count, token_logprobs=tuple(lps[:count]), ended=ended)
            )
        return proposals

    def _cut(self, tokens: list[int], stop: str | None) -> tuple[int, str, bool]:
        """(tokens used, text before `stop`/EOS, hit EOS) for one generated row: `cut_generation`'s answer.

        `cut_generation` decodes every prefix of the row until one holds the stop.  For a
        one-character ASCII stop (its ids known, see `stop_token_ids`; the decode loop already
        stops rows on them) the first EOS or stop-holding token is found by id and the text is
        decoded at most twice; whenever the text disagrees with the ids, `cut_generation` decides.
        """
        stop_ids = self._stop_token_ids(stop) if stop else None
        if stop_ids is None:
            return cut_generation(self.tokenizer, tokens, self.eos_ids, stop)
        if stop not in self._stop_sets:
            self._stop_sets[stop] = frozenset(stop_ids.tolist())
        stops = self._stop_sets[stop]
        at = next((i for i, token in enumerate(tokens) if token in self.eos_ids or token in stops), len(tokens))
        before = decode(self.tokenizer, tokens[:at])
        if stop in before:
            return cut_generation(self.tokenizer, tokens, self.eos_ids, stop)
        if at == len(tokens):
            return at, before, False
        if tokens[at] in self.eos_ids:
            return at + 1, before, True
        text = decode(self.tokenizer, tokens[: at + 1])
        found = text.find(stop)
        if found < 0:
            return cut_generation(self.tokenizer, tokens, self.eos_ids, stop)
        return at + 1, text[:found], False

    def _judge_chunk(self, questions: list[str]) -> list[Judgement]:
        new, _, logits = self._run_generate(questions, 1, 0.0, 8, "\n")
        pair = logits[0].float()[:, [self.yes_id, self.no_id]]
        p_yes = torch.softmax(pair, dim=-1)[:, 0].tolist()
        judgements = []
        for tokens, p in zip(new.tolist(), p_yes, strict=True):
            count, words, _ = self._cut(tokens, "\n")
            judgements.append(Judgement(p_yes=float(p), words=words.strip(), token_count=count))
        return judgements


def _emitted_logprobs(new: torch.Tensor, logits: Sequence[torch.Tensor], temperature: float) -> torch.Tensor:
    """log-probabilities of the emitted tokens under the distribution sampled from (see module docstring)."""
    scale = temperature if temperature > 0 else 1.0
    return torch.stack(
        [
            torch.log_softmax(step.float() / scale, dim=-1).gather(1, new[:, t : t + 1]).squeeze(1)
            for t, step in enumerate(logits)
        ],
        dim=1,
    )
