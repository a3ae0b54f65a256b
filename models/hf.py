"""Hugging Face transformers backend: a `Policy` and a `RewardModel` over any local or hub checkpoint.

Design choices (and why):

* Loading always uses safetensors (`use_safetensors=True`) and passes `trust_remote_code` through,
  default False: pickled `.bin` weights can run code on load, so we refuse them with a message
  that says how to convert.
* The checkpoint's own `generation_config.json` sampling defaults (top-k/top-p, repetition
  penalty, ...) are replaced by a neutral config: the search controls sampling, and the reported
  log-probabilities must be those of the distribution actually sampled from.
* `Proposal.token_logprobs` are log-probabilities of the emitted tokens under the sampling
  distribution: `log_softmax(logits / temperature)` when sampling, and `log_softmax(logits)`
  (temperature 1, the model's own distribution) for greedy decoding, computed from the raw logits.
* Sampling is made reproducible by seeding torch's global RNG right before `generate`, inside a
  forked RNG state (the caller's RNG is left untouched) and under a module-level lock (two
  threads generating at once would otherwise interleave draws from the same RNG).
* PRM scores are read with ONE forward pass per path at character-exact positions: the path is
  laid out as text (`PRMLayout`), tokenized once as a whole (as the PRM saw text in training),
  and each score is read at the last token overlapping the end of that step's mark (step tag or
  separator), found through the fast tokenizer's offset mapping.  A step text that happens to
  contain the tag therefore cannot shift the read positions.
* For the "tag" kind the full `batch x length x vocab` logits are never built: the LM body gives
  hidden states, only the mark positions are gathered and multiplied by the two output-embedding
  rows of the good/bad tokens.  A load-time self-check compares that shortcut with a plain forward
  so models whose LM head does more than a linear map are refused rather than scored wrongly.
  The "head" kind likewise runs the body once and applies the classifier only to the gathered
  separator rows when a load-time check shows that equals the plain forward (else it falls back).
  The "likelihood" kind (models/likelihood_prm.py, the nano PRM) scores a step from its own
  tokens' log-probabilities, so it needs the full logits of the step tokens.
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
  sums run in another order).  Every PRM kind reuses cached prefixes the same way (a child path
  runs only its new step; the parent's step results come from the cache entry).  `run_search` empties
  both caches at the start of every search, so same-seed event logs stay identical.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForTokenClassification,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    StoppingCriteria,
    StoppingCriteriaList,
)

from search.models import Judgement, Proposal, StepScores

from .device import pick_device, pick_dtype
from .kv_cache import PrefixKVCache, build_batch, row_slice

if TYPE_CHECKING:
    from .likelihood_prm import LikelihoodPRM

#: Guards torch's global RNG between seeding and the end of `generate` (see module docstring).
_RNG_LOCK = threading.Lock()


class ModelLoadError(ValueError):
    """A checkpoint that cannot be loaded; the message says why and what to do."""


# --------------------------------------------------------------------------------------------
# Loading helpers


def _looks_like_local_path(name: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else path-like is meant as a local path."""
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def _resolve_source(name_or_path: str) -> tuple[str, Path | None]:
    """(what to pass to from_pretrained, the local directory or None for a hub id)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(
                f"{path} is a file; point at the checkpoint directory (the one with config.json)."
            )
        if not any(path.glob("*.safetensors")):
            if any(path.glob("*.bin")) or any(path.glob("*.pt")) or any(path.glob("*.pth")):
                raise ModelLoadError(
                    f"The checkpoint at {path} only has pickled weights (.bin/.pt), which can run code when "
                    "loaded. Convert it to safetensors first, e.g. load it once in a trusted environment and "
                    "call model.save_pretrained(dir) (safetensors is the default)."
                )
            raise ModelLoadError(f"no model at {path}: the directory has no *.safetensors weights.")
        return str(path), path
    if _looks_like_local_path(name_or_path):
        raise ModelLoadError(f"no model at {name_or_path}: that path does not exist.")
    return name_or_path, None


def _load_error(name: str, local: Path | None, err: Exception) -> ModelLoadError:
    """Turn a transformers/hub exception into a message that says what to check."""
    hint = ""
    if "safetensors" in str(err).lower():
        hint = " The checkpoint may only have .bin weights: convert it to safetensors."
    if local is None:
        return ModelLoadError(
            f"{name!r} does not exist locally and the Hugging Face hub could not be reached (or has no "
            f"such model; offline machines need a local directory).{hint} Original error: {err}"
        )
    return ModelLoadError(f"Could not load the checkpoint at {local}.{hint} Original error: {err}")


def _from_pretrained(loader: Any, source: str, local: Path | None, name: str, **kwargs: Any) -> Any:
    try:
        return loader.from_pretrained(source, **kwargs)
    except ModelLoadError:
        raise
    except Exception as err:  # OSError, ValueError, hub HTTP errors, ...: all mean "cannot load"
        raise _load_error(name, local, err) from err


def _load_model(
    loader: Any,
    source: str,
    local: Path | None,
    name: str,
    *,
    device: torch.device,
    dtype: torch.dtype,
    trc: bool,
) -> PreTrainedModel:
    """from_pretrained with safetensors only; refuses checkpoints whose weights do not all load."""
    model, info = _from_pretrained(
        loader,
        source,
        local,
        name,
        dtype=dtype,
        use_safetensors=True,
        trust_remote_code=trc,
        output_loading_info=True,
    )
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ModelLoadError(
            f"{name}: {len(missing)} weights of {type(model).__name__} are not in the checkpoint ({shown}); "
            "it is probably a different kind of model (e.g. a base model without an LM head, or a reward "
            "model with its own head code, which needs trust_remote_code=True)."
        )
    return model.to(device).eval()


#: tokenizer_config classes meaning "exactly the pipeline in tokenizer.json, nothing model-specific".
_GENERIC_TOKENIZERS = {"TokenizersBackend", "PreTrainedTokenizerFast"}


def _load_tokenizer(source: str, local: Path | None, name: str, trc: bool) -> Any:
    """AutoTokenizer, except for a checkpoint saved with a generic fast tokenizer.

    Why: transformers 5 picks the tokenizer class from the model type when the saved class is the
    generic backend, so a Qwen2-shaped model with its own tokenizer.json (the nano pack) would get
    Qwen2's pre-tokenizer on top of it and encode prompts differently from training (spaces lost).
    """
    saved_class = _saved_tokenizer_class(local)
    loader = PreTrainedTokenizerFast if saved_class in _GENERIC_TOKENIZERS else AutoTokenizer
    tokenizer = _from_pretrained(loader, source, local, name, trust_remote_code=trc)
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise ModelLoadError(f"{name}: the tokenizer has neither a pad nor an eos token; add one.")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _saved_tokenizer_class(local: Path | None) -> str | None:
    """`tokenizer_class` of a local checkpoint's tokenizer_config.json (None when unreadable)."""
    config = local / "tokenizer_config.json" if local is not None else None
    if config is None or not config.is_file() or not (local / "tokenizer.json").is_file():
        return None
    try:
        return json.loads(config.read_text()).get("tokenizer_class")
    except (OSError, ValueError):
        return None


def first_token_id(tokenizer: Any, text: str, what: str) -> int:
    """The first token of `text` encoded without special tokens (how yes/no/good/bad are matched)."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if not ids:
        raise ModelLoadError(f"The {what} {text!r} encodes to no tokens with this tokenizer.")
    return int(ids[0])


def _distinct_pair(tokenizer: Any, first: str, second: str, what: str) -> tuple[int, int]:
    a, b = first_token_id(tokenizer, first, what), first_token_id(tokenizer, second, what)
    if a == b:
        raise ModelLoadError(
            f"The {what}s {first!r} and {second!r} start with the same token "
            f"({tokenizer.convert_ids_to_tokens(a)!r}) in this tokenizer; choose tokens that differ."
        )
    return a, b


def weights_hash(directory: Path | None) -> str | None:
    """sha256 over names and bytes of a local checkpoint's *.safetensors files (None if not local)."""
    if directory is None or not directory.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(directory.glob("*.safetensors")):
        digest.update(file.name.encode() + b"\0")
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


class _LoadedModel:
    """What every backend shares: name, device, dtype, lock, the weights hash and the prefix KV cache."""

    def __init__(
        self,
        name: str,
        local: Path | None,
        device: torch.device,
        dtype: torch.dtype,
        trc: bool,
        *,
        kv_reuse: bool,
        kv_cache_entries: int,
        kv_cache_bytes: int | None,
    ):
        self.name = name
        self.local_path = local
        self.device = device
        self.dtype = dtype
        self.trust_remote_code = trc
        self._lock = threading.RLock()
        self._hash: str | None = None
        self.kv_reuse = kv_reuse
        self.kv_cache = PrefixKVCache(kv_cache_entries, kv_cache_bytes)

    def clear_cache(self) -> None:
        """Forget every cached prefix (run_search calls this at the start of each search)."""
        with self._lock:
            self.kv_cache.clear()

    def weights_hash(self) -> str | None:
        """sha256 of the local safetensors files (cached); None for a hub id."""
        if self._hash is None:
            self._hash = weights_hash(self.local_path)
        return self._hash

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, device={self.device}, dtype={self.dtype})"


# --------------------------------------------------------------------------------------------
# Policy


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


class HFPolicy(_LoadedModel):
    """A causal LM as the search's policy: proposes steps, completes paths and judges steps."""

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
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"  # generation continues right after each prompt
        self.max_batch = max(1, int(max_batch))
        self._stop_ids: dict[str, torch.Tensor] = {}
        self.tokens = TokenCounter()
        self.yes_id, self.no_id = _distinct_pair(tokenizer, yes_token, no_token, "yes/no token")
        self.eos_ids = _eos_ids(model, tokenizer)
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
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
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
        ids = [self.tokenizer(p)["input_ids"] for p in prompts]
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
                out = self.model(
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
        """The ids whose text contains a one-character ASCII stop (e.g. the step delimiter "\\n").

        Why: checking ids is exact for such a stop (one byte never spans two tokens) and skips
        decoding every row's tail at every step, the largest fixed cost of a tiny model's decode
        step.  Longer or non-ASCII stops return None and keep the text check.
        """
        if len(stop) != 1 or not stop.isascii():
            return None
        if stop not in self._stop_ids:
            vocab = range(len(self.tokenizer))
            texts = self.tokenizer.batch_decode([[i] for i in vocab], skip_special_tokens=False)
            ids = [i for i, text in zip(vocab, texts, strict=True) if stop in text]
            self._stop_ids[stop] = torch.tensor(ids, dtype=torch.long, device=self.device)
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
        blk = cached_block(ids, found, self.tokenizer.pad_token_id, self.device)
        self.tokens.count_prefill(blk.tokens_run, blk.suffix.numel())
        with torch.inference_mode():
            out = self.model(input_ids=blk.suffix, attention_mask=blk.mask, position_ids=blk.position_ids,
                             past_key_values=blk.cache, use_cache=True)
        return out.logits[:, -1, :].float(), out.past_key_values, blk.mask, [blk.total - len(row) for row in ids]

    def _store(
        self, ids: list[list[int]], n: int, new: torch.Tensor, cache: Any, pads: list[int], lengths: list[int]
    ) -> None:
        """Keep each row's `prompt + step` KV (up to its stop, and only what was fed back)."""
        fed = new.shape[1] - 1  # the last sampled token was never run through the model
        for r, length in enumerate(lengths):
            prompt = ids[r // n]
            m = min(length, fed)
            start = pads[r // n]
            key = prompt + new[r, :m].tolist()
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

    def _decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _cut(self, tokens: list[int], stop: str | None) -> tuple[int, str, bool]:
        """(tokens used, text before `stop`/EOS, hit EOS) for one generated row."""
        for n, token in enumerate(tokens, start=1):
            if token in self.eos_ids:
                return n, self._decode(tokens[: n - 1]), True
            if stop:
                text = self._decode(tokens[:n])
                at = text.find(stop)
                if at >= 0:
                    return n, text[:at], False
        return len(tokens), self._decode(tokens), False

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


def _eos_ids(model: PreTrainedModel, tokenizer: Any) -> set[int]:
    """EOS ids from the tokenizer and the checkpoint's generation config (chat models list several)."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    return ids


def load_policy(
    name_or_path: str,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    trust_remote_code: bool = False,
    yes_token: str = " yes",
    no_token: str = " no",
    max_batch: int = 64,
    kv_reuse: bool = True,
    kv_cache_entries: int = 256,
    kv_cache_bytes: int | None = 512 * 2**20,
) -> HFPolicy:
    """Load a causal LM (local directory or hub id) as the search policy.

    `kv_reuse` continues each prompt from the longest cached token prefix (children from their
    parent's `prompt + step`) instead of re-encoding it; the LRU holds at most `kv_cache_entries`
    prefixes and `kv_cache_bytes` bytes (None: no byte limit).
    """
    source, local = _resolve_source(name_or_path)
    picked = pick_device(device)
    picked_dtype = pick_dtype(picked, dtype)
    _from_pretrained(AutoConfig, source, local, name_or_path, trust_remote_code=trust_remote_code)
    tokenizer = _load_tokenizer(source, local, name_or_path, trust_remote_code)
    model = _load_model(
        AutoModelForCausalLM,
        source,
        local,
        name_or_path,
        device=picked,
        dtype=picked_dtype,
        trc=trust_remote_code,
    )
    return HFPolicy(
        model,
        tokenizer,
        name=name_or_path,
        local=local,
        trust_remote_code=trust_remote_code,
        yes_token=yes_token,
        no_token=no_token,
        max_batch=max_batch,
        kv_reuse=kv_reuse,
        kv_cache_entries=kv_cache_entries,
        kv_cache_bytes=kv_cache_bytes,
    )


# --------------------------------------------------------------------------------------------
# Process reward model


@dataclass(frozen=True)
class PRMLayout:
    """How a (problem, steps) path becomes PRM input text.

    `prefix` may use `{problem}`; `step` must use `{mark}` exactly once and may use `{step}` and
    `{sep}`.  The score of a step is read at the last token of its `{mark}`: the step tag for
    kind="tag", the separator token for kind="head".  Placeholders are replaced literally (not
    str.format), so templates may contain braces such as `\\boxed{}`.
    """

    prefix: str = "Problem: {problem}\nSolution:\n"
    step: str = "{step} {mark}{sep}"

    def __post_init__(self) -> None:
        if self.step.count("{mark}") != 1:
            raise ValueError(f"PRMLayout.step must contain '{{mark}}' exactly once, got {self.step!r}")


#: Our nano PRM (and the default for kind="tag"): `Problem: ...\nSolution:\n` then `step ки\n` per step.
TAG_LAYOUT = PRMLayout()
#: Default for kind="head": each step followed directly by the separator (e.g. "\n" or "<extra_0>").
HEAD_LAYOUT = PRMLayout(step="{step}{mark}")
#: peiyi9979/math-shepherd-mistral-7b-prm: `problem + " " + step1 + " ки\n" + ...`
#: (use with step_tag="ки", good_token="+", bad_token="-", step_separator="\n").
MATH_SHEPHERD_LAYOUT = PRMLayout(prefix="{problem} ", step="{step} {mark}{sep}")
#: Qwen/Qwen2.5-Math-PRM-7B: its chat template up to the assistant turn, steps joined by "<extra_0>"
#: (use with kind="head", step_separator="<extra_0>", trust_remote_code=True).
QWEN_PRM_LAYOUT = PRMLayout(
    prefix=(
        "<|im_start|>system\nPlease reason step by step, and put your final answer within "
        "\\boxed{}.<|im_end|>\n"
        "<|im_start|>user\n{problem}<|im_end|>\n<|im_start|>assistant\n"
    ),
    step="{step}{mark}",
)


def prm_text(
    layout: PRMLayout, problem: str, steps: Sequence[str], mark: str, sep: str = ""
) -> tuple[str, list[int]]:
    """The PRM input text of a path and, per step, the character offset where its mark ends."""
    before, after = layout.step.split("{mark}")
    text = layout.prefix.replace("{problem}", problem)
    ends = []
    for step in steps:
        text += before.replace("{step}", step).replace("{sep}", sep) + mark
        ends.append(len(text))
        text += after.replace("{step}", step).replace("{sep}", sep)
    return text, ends


def encode_marked(
    tokenizer: Any, text: str, mark_ends: Sequence[int], mark_len: int
) -> tuple[list[int], list[int]]:
    """Token ids of `text` (tokenized whole) and, per mark, the index of the token holding its last character.

    Uses the fast tokenizer's offsets; with byte-level tokenizers a character split over several
    tokens maps to the last of them, which is where the whole mark has been read.
    """
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    positions = []
    for end in mark_ends:
        hits = [j for j, (s, e) in enumerate(offsets) if e > s and s < end]
        if not hits or offsets[hits[-1]][1] <= end - mark_len:
            raise ValueError(
                f"No token covers the step mark ending at character {end}; the tokenizer dropped it."
            )
        positions.append(hits[-1])
    return ids, positions


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


class HFPRM(_LoadedModel):
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
        self.good_id, self.bad_id = _distinct_pair(self.tokenizer, good_token, bad_token, "good/bad token")
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
        tol = 1e-4 if self.dtype == torch.float32 else 3e-2
        if got.shape != full.shape or not torch.allclose(got, full, atol=tol, rtol=tol):
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
        blk = cached_block([ids for ids, _ in items], found, self.pad_id, self.device)
        rows, cols = [], []
        for r, ((_, positions), p) in enumerate(zip(items, blk.prefix, strict=True)):
            new = [q for q in positions if q >= p]
            rows += [r] * len(new)
            cols += [q - blk.shift(r) for q in new]
        self.tokens.count_prefill(blk.tokens_run, blk.suffix.numel())
        with torch.inference_mode():
            out = self._reader_body()(  # type: ignore[misc]
                input_ids=blk.suffix, attention_mask=blk.mask, position_ids=blk.position_ids,
                past_key_values=blk.cache, use_cache=True,
            )
            index = torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)
            hidden = _hidden(out)[index[0].to(self.device), index[1].to(self.device)]
            flat = self._scores_from_hidden(hidden).tolist()
        return self._collect_cached(items, found, blk.prefix, flat, out.past_key_values, blk.total)

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
        tol = 1e-4 if self.dtype == torch.float32 else 3e-2
        if abs(float(want) - float(got[0])) > tol:
            raise ModelLoadError(
                f"{self.name}: reading the LM head at the step tags from hidden states does not match a "
                f"plain forward ({float(got[0]):.4f} vs {float(want):.4f}); this architecture is not "
                "supported as a kind='tag' PRM."
            )


def load_prm(
    name_or_path: str,
    *,
    kind: Literal["tag", "head", "likelihood"] = "tag",
    step_tag: str = "ки",
    good_token: str = "+",
    bad_token: str = "-",
    step_separator: str = "\n",
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    trust_remote_code: bool = False,
    head_label_index: int = 1,
    layout: PRMLayout | None = None,
    max_batch: int = 16,
    kv_reuse: bool = True,
    kv_cache_entries: int = 256,
    kv_cache_bytes: int | None = 256 * 2**20,
) -> HFPRM | LikelihoodPRM:
    """Load a PRM (local directory or hub id).

    kind="tag" (Math-Shepherd style): a causal LM; each step is followed by `step_tag` and the
    score is P(good_token) vs bad_token at the tag.  kind="head" (Qwen2.5-Math-PRM style): a
    token classifier read at the `step_separator` after each step (2 labels: softmax, label
    `head_label_index`; 1 label: sigmoid).  `layout` sets the text around problem and steps
    (defaults: TAG_LAYOUT / HEAD_LAYOUT; see MATH_SHEPHERD_LAYOUT and QWEN_PRM_LAYOUT).
    kind="likelihood" (the nano PRM): a causal LM scoring each step by its own tokens'
    log-probabilities (see models/likelihood_prm.py), laid out as the policy's prompt (HEAD_LAYOUT).
    """
    if kind not in ("tag", "head", "likelihood"):
        raise ValueError(f"kind must be 'tag', 'head' or 'likelihood', got {kind!r}")
    source, local = _resolve_source(name_or_path)
    picked = pick_device(device)
    picked_dtype = pick_dtype(picked, dtype)
    config = _from_pretrained(AutoConfig, source, local, name_or_path, trust_remote_code=trust_remote_code)
    tokenizer = _load_tokenizer(source, local, name_or_path, trust_remote_code)
    loader = AutoModelForCausalLM if kind != "head" else _head_loader(config, trust_remote_code)
    model = _load_model(
        loader, source, local, name_or_path, device=picked, dtype=picked_dtype, trc=trust_remote_code
    )
    if kind == "likelihood":
        from .likelihood_prm import LikelihoodPRM

        return LikelihoodPRM(model, tokenizer, name=name_or_path, local=local, trust_remote_code=trust_remote_code,
                             layout=layout or HEAD_LAYOUT, sep=step_separator, max_batch=max_batch,
                             kv_reuse=kv_reuse, kv_cache_entries=kv_cache_entries, kv_cache_bytes=kv_cache_bytes)
    mark, sep = (step_tag, step_separator) if kind == "tag" else (step_separator, "")
    return HFPRM(
        model,
        tokenizer,
        name=name_or_path,
        local=local,
        trust_remote_code=trust_remote_code,
        kind=kind,
        mark=mark,
        sep=sep,
        layout=layout or (TAG_LAYOUT if kind == "tag" else HEAD_LAYOUT),
        good_token=good_token,
        bad_token=bad_token,
        head_label_index=head_label_index,
        max_batch=max_batch,
        kv_reuse=kv_reuse,
        kv_cache_entries=kv_cache_entries,
        kv_cache_bytes=kv_cache_bytes,
    )


def _head_loader(config: Any, trust_remote_code: bool) -> Any:
    """AutoModelForTokenClassification, or AutoModel for remote-code PRMs that only register that
    (Qwen2.5-Math-PRM ships `Qwen2ForProcessRewardModel` under auto_map["AutoModel"])."""
    auto_map = getattr(config, "auto_map", None) or {}
    if trust_remote_code and "AutoModelForTokenClassification" not in auto_map and "AutoModel" in auto_map:
        return AutoModel
    return AutoModelForTokenClassification
