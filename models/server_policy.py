"""A `Policy` served by an OpenAI-compatible completions server (vLLM; SGLang and others: see README).

Design choices (and why):

* Prompts are token ids built on the client by `models.prompting.prompt_token_ids` with the
  model's own tokenizer (the local directory or hub id the server serves), exactly as the
  transformers backend builds them; the server's own tokenizer never reads our text (vLLM loads
  some tokenizers differently, e.g. it reads the nano pack's as `Qwen2Tokenizer` and drops
  spaces).  Generated text is decoded on the client from `token_ids` (`return_token_ids`), and
  one-character stops are sent as `stop_token_ids` (`models.prompting.stop_token_ids`).
* Sampling parameters are sent explicitly (`top_p=1`, `top_k` off, `min_p=0`, penalties off):
  start vLLM with `--generation-config vllm` too, so the checkpoint's `generation_config.json`
  does not change them.
* `Proposal.token_logprobs` are log-probabilities of the emitted tokens under the distribution
  sampled from, `log_softmax(logits / temperature)` (greedy: `log_softmax(logits)`), as in the
  transformers backend.  vLLM returns those only when started with
  `--logprobs-mode processed_logprobs`; with its default (`raw_logprobs`, temperature 1) sampled
  log-probabilities differ from the transformers backend's, so loading checks which mode the
  server uses (`logprobs_mode`) and refuses a raw server unless `allow_raw_logprobs=True`.
* A frontier is one round trip when greedy (all prompts in one request, `max_batch` at a time)
  and one request per distinct prompt, sent concurrently (bounded), when sampling: every row
  gets its own seed derived from the call's seed and its position (a request's `seed` applies
  to all its prompts, and identical prompts in one request would draw identical samples).
* judge: P(yes) from the log-probabilities of the yes/no tokens at the first generated position
  (`logprob_token_ids`), and the model's words from the same short greedy request.
* `usage` sums what the server said it spent (prompt/completion/cached tokens, round trips);
  the search's spend events carry it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import GenerationConfig

from search.models import Judgement, Proposal

from .loading import ModelLoadError, distinct_pair, from_pretrained, load_tokenizer, resolve_source, weights_hash
from .prompting import cut_generation, eos_token_ids, prompt_token_ids, stop_token_ids
from .server_client import ServerClient, ServerError, ServerUsage
from .specs import PolicySpec

#: Sampling fields sent with every generation request, so no server default changes the distribution.
NEUTRAL_SAMPLING: dict[str, Any] = {
    "top_p": 1.0,
    "top_k": -1,
    "min_p": 0.0,
    "repetition_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "skip_special_tokens": False,
    "spaces_between_special_tokens": False,
    "return_token_ids": True,
    "include_stop_str_in_output": True,
    "return_tokens_as_token_ids": True,
}


def row_seed(seed: int, row: int) -> int:
    """The seed of prompt row `row` in a call seeded `seed` (distinct per row, reproducible)."""
    return (seed * 1_000_003 + row * 7_919 + 1) % (2**31 - 1)


class ServerPolicy:
    """The search policy on an inference server: propose, complete and judge through `/v1/completions`.

    `client`: the served model; `tokenizer`: the same checkpoint's tokenizer (client-side
    tokenization); `eos_ids`: ids that end a solution; `max_batch`: prompts per greedy request.
    """

    def __init__(
        self,
        client: ServerClient,
        tokenizer: Any,
        *,
        name: str,
        local: Path | None,
        eos_ids: set[int],
        yes_token: str = " yes",
        no_token: str = " no",
        max_batch: int = 64,
    ):
        self.client = client
        self.tokenizer = tokenizer
        self.name = name
        self.local_path = local
        self.eos_ids = set(eos_ids)
        self.max_batch = max(1, int(max_batch))
        self.yes_id, self.no_id = distinct_pair(tokenizer, yes_token, no_token, "yes/no token")
        self._stop_cache: dict[str, list[int] | None] = {}
        self._hash: str | None = None
        self.logprobs_mode = "unknown"

    @property
    def usage(self) -> ServerUsage:
        """What the server reported spending for the calling search (outside one: since `clear_cache`)."""
        return self.client.usage

    def bind_stop(self, stop: threading.Event) -> None:
        """Abandon every request once `stop` is set (each search's own Stop needs no binding: search/scope.py)."""
        self.client.bind_stop(stop)

    def clear_cache(self) -> None:
        """Start counting usage afresh (outside searches; each search counts its own: search/scope.py).

        The server's prefix cache is its own business (vLLM keeps it across requests)."""
        self.client.usage.reset()

    def weights_hash(self) -> str | None:
        """sha256 of the local checkpoint's safetensors (the tokenizer's directory); None for a hub id."""
        if self._hash is None:
            self._hash = weights_hash(self.local_path)
        return self._hash

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
        return self._generate(prompts, k, temperature, max_new_tokens, stop or None, seed)

    def complete(
        self, prompts: Sequence[str], *, temperature: float, max_new_tokens: int, seed: int
    ) -> list[Proposal]:
        """Each prompt continued to EOS or `max_new_tokens` (capped to the served context)."""
        return [row[0] for row in self._generate(prompts, 1, temperature, max_new_tokens, None, seed)]

    def judge(self, questions: Sequence[str]) -> list[Judgement]:
        """P(yes) = softmax over the yes/no tokens' log-probabilities at the first answer position,
        plus up to 8 greedy words (one request for a whole batch of questions)."""
        out: list[Judgement] = []
        for start in range(0, len(questions), self.max_batch):
            chunk = [prompt_token_ids(self.tokenizer, q) for q in questions[start : start + self.max_batch]]
            body = self._request(chunk, n=1, temperature=0.0, max_tokens=8, stop="\n", seed=0,
                                 logprob_token_ids=[self.yes_id, self.no_id])
            for choice in _choices(body, len(chunk), 1):
                tokens = _token_ids(choice)
                count, words, _ = cut_generation(self.tokenizer, tokens, self.eos_ids, "\n")
                first = _first_position_logprobs(choice, self.tokenizer)
                lp_yes, lp_no = first.get(self.yes_id, -math.inf), first.get(self.no_id, -math.inf)
                p_yes = 1.0 / (1.0 + math.exp(min(700.0, lp_no - lp_yes))) if lp_yes > -math.inf else 0.0
                out.append(Judgement(p_yes=p_yes, words=words.strip(), token_count=count))
        return out

    # -- internals ---------------------------------------------------------------------------

    def _generate(
        self, prompts: Sequence[str], k: int, temperature: float, max_new_tokens: int, stop: str | None, seed: int
    ) -> list[list[Proposal]]:
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        ids = [prompt_token_ids(self.tokenizer, p) for p in prompts]
        if not ids:
            return []
        if temperature <= 0:  # greedy: every prompt in one request (per max_batch), one row each
            rows: list[Proposal] = []
            for start in range(0, len(ids), self.max_batch):
                chunk = ids[start : start + self.max_batch]
                body = self._request(chunk, n=1, temperature=0.0, max_tokens=max_new_tokens, stop=stop, seed=seed)
                rows += [self._proposal(c, stop) for c in _choices(body, len(chunk), 1)]
            return [[row] * k for row in rows]
        return self._sample(ids, k, temperature, max_new_tokens, stop, seed)

    def _sample(
        self, ids: list[list[int]], k: int, temperature: float, max_new_tokens: int, stop: str | None, seed: int
    ) -> list[list[Proposal]]:
        """One request per distinct prompt (n = all the rows it has), concurrent; rows keep their order."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for row, prompt in enumerate(ids):
            groups.setdefault(tuple(prompt), []).append(row)

        def run(item: tuple[tuple[int, ...], list[int]]) -> list[Proposal]:
            prompt, rows = item
            body = self._request([list(prompt)], n=k * len(rows), temperature=temperature,
                                 max_tokens=max_new_tokens, stop=stop, seed=row_seed(seed, rows[0]))
            return [self._proposal(c, stop) for c in _choices(body, 1, k * len(rows))]

        results = self.client.map(run, list(groups.items()))
        out: list[list[Proposal]] = [[] for _ in ids]
        for (_, rows), proposals in zip(groups.items(), results, strict=True):
            for i, row in enumerate(rows):
                out[row] = proposals[i * k : (i + 1) * k]
        return out

    def _stop_ids(self, stop: str) -> list[int] | None:
        if stop not in self._stop_cache:
            self._stop_cache[stop] = stop_token_ids(self.tokenizer, stop)
        return self._stop_cache[stop]

    def _request(
        self,
        prompts: list[list[int]],
        *,
        n: int,
        temperature: float,
        max_tokens: int,
        stop: str | None,
        seed: int,
        logprob_token_ids: list[int] | None = None,
    ) -> dict[str, Any]:
        """One `/v1/completions` call; `max_tokens` is capped so prompt + output fit the served context."""
        longest = max(len(p) for p in prompts)
        limit = self.client.max_model_len
        if limit is not None:
            if longest >= limit:
                raise ServerError(
                    f"A prompt of {longest} tokens does not fit the {limit}-token context {self.name!r} is served "
                    f"with at {self.client.url}; start the server with a larger --max-model-len."
                )
            max_tokens = min(max_tokens, limit - longest)
        payload: dict[str, Any] = {
            **NEUTRAL_SAMPLING,
            "prompt": prompts,
            "n": n,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "logprobs": 0,
            "seed": seed,
        }
        if logprob_token_ids:
            payload["logprob_token_ids"] = logprob_token_ids
            payload["logprobs"] = len(logprob_token_ids)
        ids = self._stop_ids(stop) if stop else None
        if ids is not None:
            payload["stop_token_ids"] = ids
        elif stop:
            payload["stop"] = [stop]
        return self.client.completions(payload)

    def _proposal(self, choice: dict[str, Any], stop: str | None) -> Proposal:
        tokens = _token_ids(choice)
        logprobs = _sampled_logprobs(choice)
        count, text, ended = cut_generation(self.tokenizer, tokens, self.eos_ids, stop)
        if not tokens and choice.get("finish_reason") == "stop":
            ended = True  # an EOS the server left out of token_ids
        return Proposal(text=text, token_count=count, token_logprobs=tuple(logprobs[:count]), ended=ended)


def _choices(body: dict[str, Any], prompts: int, n: int) -> list[dict[str, Any]]:
    """The response's choices in prompt-major order (`index = prompt * n + j`), checked complete."""
    choices = sorted(body.get("choices") or [], key=lambda c: int(c.get("index", 0)))
    if len(choices) != prompts * n:
        raise ServerError(f"The server returned {len(choices)} completions for {prompts} prompts x n={n}.")
    return choices


def _token_ids(choice: dict[str, Any]) -> list[int]:
    ids = choice.get("token_ids")
    if ids is None:
        raise ServerError(
            "The server did not return token_ids (vLLM's return_token_ids); ThoughtScope decodes generated "
            "tokens itself. Use vLLM >= 0.10 (SGLang and other servers: see the README's server section)."
        )
    return [int(i) for i in ids]


def _sampled_logprobs(choice: dict[str, Any]) -> list[float]:
    block = choice.get("logprobs") or {}
    values = block.get("token_logprobs")
    if values is None:
        raise ServerError("The server returned no token log-probabilities (`logprobs`); it must support them.")
    return [float(v) if v is not None else -math.inf for v in values]


def _first_position_logprobs(choice: dict[str, Any], tokenizer: Any) -> dict[int, float]:
    """token id -> log-probability at the first generated position (from `top_logprobs`)."""
    block = choice.get("logprobs") or {}
    tops = block.get("top_logprobs") or []
    if not tops or not tops[0]:
        return {}
    out = {}
    for key, value in tops[0].items():
        token_id = _parse_token(key, tokenizer)
        if token_id is not None:
            out[token_id] = float(value)
    return out


def _parse_token(key: str, tokenizer: Any) -> int | None:
    """A `top_logprobs` key: `token_id:N` (return_tokens_as_token_ids) or the token's text."""
    if key.startswith("token_id:"):
        return int(key.split(":", 1)[1])
    token_id = tokenizer.convert_tokens_to_ids(key)
    return int(token_id) if isinstance(token_id, int) and token_id != tokenizer.unk_token_id else None


def probe_logprobs_mode(client: ServerClient, prompt: list[int]) -> str:
    """"processed" when the server's sampled log-probabilities include temperature, else "raw".

    Two one-token requests at temperatures 1 and 0.5 ask for the same token's log-probability
    (`logprob_token_ids`); a raw-mode server reports the same number for both.
    """
    values = []
    for temperature in (1.0, 0.5):
        body = client.completions({**NEUTRAL_SAMPLING, "prompt": [prompt], "max_tokens": 1, "temperature": temperature,
                                   "seed": 1, "logprobs": 1, "logprob_token_ids": [prompt[-1]]})
        first = (body["choices"][0].get("logprobs") or {}).get("top_logprobs") or [{}]
        values.append(first[0].get(f"token_id:{prompt[-1]}"))
    if values[0] is None or values[1] is None:
        return "unknown"
    return "raw" if abs(values[0] - values[1]) < 1e-6 else "processed"


def load_server_policy(spec: PolicySpec, *, transport: Any = None, allow_raw_logprobs: bool = False) -> ServerPolicy:
    """A `ServerPolicy` for `spec.url` serving `spec.name_or_path` (tokenizer from `spec.tokenizer` or the name).

    Checks, in order, each failing with a `ServerError`/`ModelLoadError` that says what to do:
    the server answers; it serves the model (`/v1/models`); the tokenizer loads; its sampled
    log-probabilities are after temperature (`--logprobs-mode processed_logprobs`).
    """
    assert spec.url
    client = ServerClient(spec.url, spec.name_or_path, transport=transport)
    client.check_served()  # first: a wrong URL or name is reported before any tokenizer download is tried
    tok_name = spec.tokenizer or spec.name_or_path
    source, local = resolve_source(tok_name)
    tokenizer = load_tokenizer(source, local, tok_name, spec.trust_remote_code)
    try:
        generation = from_pretrained(GenerationConfig, source, local, tok_name)
    except ModelLoadError:  # no generation_config.json: the tokenizer's EOS only
        generation = None
    policy = ServerPolicy(client, tokenizer, name=spec.name_or_path, local=local,
                          eos_ids=eos_token_ids(tokenizer, generation), yes_token=spec.yes_token,
                          no_token=spec.no_token, max_batch=spec.max_batch)
    probe = prompt_token_ids(tokenizer, "Problem: 1 + 1\nSolution:\n")
    policy.logprobs_mode = probe_logprobs_mode(client, probe)
    client.usage.reset()
    if policy.logprobs_mode == "raw" and not allow_raw_logprobs:
        raise ServerError(
            f"The server at {client.url} returns log-probabilities before temperature (vLLM's default "
            "--logprobs-mode raw_logprobs); start it with --logprobs-mode processed_logprobs so sampled "
            "steps carry the same log-probabilities as the transformers backend."
        )
    return policy
