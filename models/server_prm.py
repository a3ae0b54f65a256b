"""Reward models served by an inference server: every kind the transformers backend has, scored the same.

How each kind is read (paths are laid out and tokenized on the client, exactly as the
transformers PRMs do it, and sent as token ids):

* "likelihood" (the nano PRM): one prompt per path with `prompt_logprobs=0` gives log p(token |
  text before it) for every token; a step whose last token ends a step (separator or EOS) scores
  that token as log p(any end token), which needs one extra prompt per step and other end token
  (the path up to that position plus the other end token).  Then the same prefix minima and
  calibration as models/likelihood_prm.py.
* "tag" (Math-Shepherd): one prompt per step tag (the path up to and including the tag), one
  greedy token with `logprob_token_ids=[good, bad]`; the score is softmax over the two.
* "chat-tag" (RLHFlow/Llama3.1-8B-PRM-*): the conversation of models/reward_readers.py
  (`encode_chat_tag`), then as "tag": one prompt per step, cut just before the assistant's
  label, one greedy token with `logprob_token_ids=[good, bad]`.
* "head" (Qwen2.5-Math-PRM) and token-classifier outcome models: vLLM's pooling server
  (`--runner pooling`), `POST /pooling` with `task: token_classify` and `use_activation: false`
  returns each token's label logits; the score is read at each separator as the transformers
  backend reads it (softmax label `head_label_index`, or sigmoid for one label).
* outcome models (one score per path, the conversation of `outcome_ids`), on the pooling server
  with `use_activation: false`: "orm-seq" (a *ForSequenceClassification model) with `task:
  classify` (vLLM pools the last token and applies the classifier: one row of label logits);
  "orm-last-token" (Qwen2ForRewardModel, e.g. Qwen2.5-Math-RM) with `task: token_classify`
  (every token's reward), read at the last token.  Then sigmoid (one label) or softmax, as in
  process.
* "value-head" (Skywork-o1-Open-PRM) is refused: vLLM has no model class for its architecture
  (`VALUE_HEAD_REFUSAL`).

All prompts of one `score` call go in one request (the server batches them and its prefix cache
shares the common path prefixes).  `usage` counts what the server reported.

Loading runs the same fit check as the transformers backend (models/prm_fit.py) on the client,
from the checkpoint's config, tokenizer and safetensors headers where they are local, so a wrong
preset is refused before any search; the other kinds (chat-tag, value-head, outcome models) are
refused with a sentence saying to load them in process.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from transformers import AutoConfig

from search.models import StepScores

from .batching import score_in_batches, split_by_counts
from .likelihood_prm import calibration, encode_steps, end_token_ids, prefix_minima, step_scores
from .loading import ModelLoadError, distinct_pair, from_pretrained, load_tokenizer, resolve_source, weights_hash
from .prm_fit import check_fit, inspect_checkpoint
from .prm_layouts import HEAD_LAYOUT, TAG_LAYOUT, PRMLayout, encode_marked, prm_text
from .reward_readers import encode_chat_tag, outcome_ids, outcome_value
from .server_client import ServerClient, ServerError, ServerUsage
from .specs import RewardModelSpec

#: The reward-model kinds the inference-server backend reads.
SERVER_KINDS = ("likelihood", "tag", "head", "chat-tag", "orm-seq", "orm-last-token")
OUTCOME_KINDS = ("orm-seq", "orm-last-token")
#: Why a value-head PRM (Skywork) cannot be served, and what to do instead.
VALUE_HEAD_REFUSAL = (
    "{name} is a value-head PRM (preset {preset!r}: a Qwen2 body plus the value head v_head.summary, "
    "architecture Qwen2ForPrmModel), and vLLM has no model class for that architecture: vLLM 0.32 refuses to "
    "serve it ('not supported'), and told to load it as another class (--hf-overrides) it finds no place for "
    "v_head.summary. Load it in process instead (drop --prm-url; the policy can stay on its server)."
)
GREEDY_ONE_TOKEN: dict[str, Any] = {
    "max_tokens": 1,
    "temperature": 0.0,
    "top_p": 1.0,
    "top_k": -1,
    "repetition_penalty": 1.0,
    "return_tokens_as_token_ids": True,
}


class ServerPRM:
    """`RewardModel` over an inference server; `kind` is one of `SERVER_KINDS` (see the module docstring).

    `mark`/`sep`/`layout` as in `HFPRM`; `good_id`/`bad_id` for "tag" and "chat-tag"; `calib`
    the likelihood calibration (scale, bias) or None; `system_prompt` the outcome models' system
    turn (`sep` their step separator); `max_batch`: paths per request.
    """

    def __init__(
        self,
        client: ServerClient,
        tokenizer: Any,
        *,
        name: str,
        local: Path | None,
        kind: str,
        layout: PRMLayout,
        mark: str,
        sep: str,
        good_token: str = "+",
        bad_token: str = "-",
        head_label_index: int = 1,
        calib: tuple[float, float] | None = None,
        max_batch: int = 16,
        system_prompt: str | None = None,
    ):
        self.client, self.tokenizer, self.name, self.local_path = client, tokenizer, name, local
        self.kind, self.layout, self.mark, self.sep = kind, layout, mark, sep
        self.head_label_index, self.system_prompt = head_label_index, system_prompt
        self.calibration = calib
        self.max_batch = max(1, int(max_batch))
        self._hash: str | None = None
        if kind in ("tag", "chat-tag"):
            self.good_id, self.bad_id = distinct_pair(tokenizer, good_token, bad_token, "good/bad token")
        self.end_ids = end_token_ids(tokenizer, sep) if kind == "likelihood" else []

    @property
    def usage(self) -> ServerUsage:
        return self.client.usage

    def bind_stop(self, stop: threading.Event) -> None:
        """Abandon every request once `stop` is set (each search's own Stop needs no binding: search/scope.py)."""
        self.client.bind_stop(stop)

    def clear_cache(self) -> None:
        """Start counting usage afresh (outside searches; each search counts its own: search/scope.py)."""
        self.client.usage.reset()

    def weights_hash(self) -> str | None:
        if self._hash is None:
            self._hash = weights_hash(self.local_path)
        return self._hash

    def encode(self, problem: str, steps: Sequence[str]) -> tuple[list[int], list[Any]]:
        """(token ids, per step its read position or [first, last] span), as the transformers PRM encodes."""
        if self.kind == "likelihood":
            return encode_steps(self.tokenizer, self.layout, self.sep, problem, steps)
        if self.kind == "chat-tag":
            return encode_chat_tag(self.tokenizer, self.good_id, self.name, problem, steps)
        if self.kind in OUTCOME_KINDS:  # every path, even an empty one, gets its one score (as in process)
            ids = outcome_ids(self.tokenizer, self.sep, self.system_prompt, problem, steps)
            return ids, [len(ids) - 1]
        text, ends = prm_text(self.layout, problem, steps, self.mark, self.sep)
        if not steps:
            return [], []
        return encode_marked(self.tokenizer, text, ends, len(self.mark))

    def score(self, problem: str, paths: Sequence[Sequence[str]]) -> list[StepScores]:
        """Per-step scores for each path (one request per `max_batch` paths); empty paths get none."""
        scorer = {"likelihood": self._score_likelihood, "tag": self._score_tag, "chat-tag": self._score_tag,
                  "head": self._score_head, "orm-seq": self._score_outcome,
                  "orm-last-token": self._score_outcome}[self.kind]
        encoded = [self.encode(problem, path) for path in paths]
        return score_in_batches(encoded, self.max_batch, scorer)

    # -- kinds -------------------------------------------------------------------------------

    def _score_likelihood(self, items: list[tuple[list[int], list[tuple[int, int]]]]) -> list[list[float]]:
        prompts = [ids for ids, _ in items]
        extra: list[tuple[int, int, int]] = []  # (item, position, end token) whose log-probability is needed
        for i, (ids, spans) in enumerate(items):
            for _, last in spans:
                if ids[last] in self.end_ids:
                    extra += [(i, last, e) for e in sorted(set(self.end_ids)) if e != ids[last]]
        prompts += [[*items[i][0][:last], e] for i, last, e in extra]
        choices = self._complete(prompts, prompt_logprobs=0)
        token_logprobs = [_prompt_token_logprobs(c, p) for c, p in zip(choices, prompts, strict=True)]
        others: dict[tuple[int, int], list[float]] = {}
        for (i, last, _), logprobs in zip(extra, token_logprobs[len(items):], strict=True):
            others.setdefault((i, last), []).append(logprobs[-1])
        minima = []
        for i, (ids, spans) in enumerate(items):
            logprobs = token_logprobs[i]
            for first, last in spans:
                values = logprobs[first : last + 1]
                if ids[last] in self.end_ids:
                    values = [*values[:-1], _logsumexp([logprobs[last], *others.get((i, last), [])])]
                minima.append(min(values))
        counts = [len(spans) for _, spans in items]
        flat = step_scores(prefix_minima(torch.tensor(minima, dtype=torch.float32), counts), self.calibration)
        return split_by_counts(flat.tolist(), counts)

    def _score_tag(self, items: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        prompts = [ids[: q + 1] for ids, positions in items for q in positions]
        choices = self._complete(prompts, logprob_token_ids=[self.good_id, self.bad_id], logprobs=2)
        flat = []
        for choice in choices:
            first = ((choice.get("logprobs") or {}).get("top_logprobs") or [{}])[0] or {}
            good, bad = first.get(f"token_id:{self.good_id}"), first.get(f"token_id:{self.bad_id}")
            if good is None or bad is None:
                raise ServerError(
                    f"The server at {self.client.url} did not return the good/bad token log-probabilities "
                    "(vLLM's logprob_token_ids); a tag PRM needs vLLM >= 0.32 or a server that supports it."
                )
            flat.append(1.0 / (1.0 + math.exp(min(700.0, float(bad) - float(good)))))
        return split_by_counts(flat, [len(positions) for _, positions in items])

    def _score_head(self, items: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        self._check_length([ids for ids, _ in items], room=0)
        body = self.client.pooling({"input": [ids for ids, _ in items], "task": "token_classify",
                                    "use_activation": False})
        out = []
        for (ids, positions), row in zip(items, self._pooled(body, len(items)), strict=True):
            logits = torch.tensor(row, dtype=torch.float32)
            if logits.dim() == 1:
                logits = logits[:, None]
            picked = logits[pooled_rows(ids, positions, logits.shape[0])]
            if picked.shape[1] == 1:
                out.append(torch.sigmoid(picked[:, 0]).tolist())
            else:
                out.append(torch.softmax(picked, dim=-1)[:, self.head_label_index].tolist())
        return out

    def _score_outcome(self, items: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        """One score per path: `classify` (orm-seq) or the last row of `token_classify` (orm-last-token)."""
        inputs = [ids for ids, _ in items]
        self._check_length(inputs, room=0)
        task = "classify" if self.kind == "orm-seq" else "token_classify"
        rows = self._pooled(self.client.pooling({"input": inputs, "task": task, "use_activation": False}), len(items))
        out = []
        for ids, row in zip(inputs, rows, strict=True):
            logits = torch.tensor(row, dtype=torch.float32)
            if task == "token_classify":
                if logits.dim() != 2 or logits.shape[0] != len(ids):
                    raise ServerError(
                        f"The pooling server returned {tuple(logits.shape)} rewards for a {len(ids)}-token path; "
                        "an 'orm-last-token' model needs one per token (Qwen2ForRewardModel's ALL pooling: start it "
                        "with --pooler-config '{\"tok_pooling_type\": \"ALL\"}')."
                    )
                logits = logits[-1]
            out.append([outcome_value(logits.reshape(-1), self.head_label_index)])
        return out

    def _pooled(self, body: dict[str, Any], expected: int) -> list[Any]:
        """The `data` of each result of a `/pooling` answer, in input order."""
        rows = sorted(body.get("data") or [], key=lambda r: int(r.get("index", 0)))
        if len(rows) != expected:
            raise ServerError(f"The pooling server returned {len(rows)} results for {expected} paths.")
        return [row.get("data") for row in rows]

    def _check_length(self, prompts: list[list[int]], *, room: int) -> None:
        """Refuse (before sending) prompts that leave under `room` tokens of the served context."""
        limit = self.client.max_model_len
        if limit is not None and prompts and max(len(p) for p in prompts) + room > limit:
            raise ServerError(
                f"A path of {max(len(p) for p in prompts)} tokens does not fit the {self.client.max_model_len}-token "
                f"context {self.name!r} is served with at {self.client.url}; start the server with a larger "
                "--max-model-len."
            )

    def _complete(self, prompts: list[list[int]], **fields: Any) -> list[dict[str, Any]]:
        self._check_length(prompts, room=1)
        body = self.client.completions({**GREEDY_ONE_TOKEN, "prompt": prompts, **fields})
        choices = sorted(body.get("choices") or [], key=lambda c: int(c.get("index", 0)))
        if len(choices) != len(prompts):
            raise ServerError(f"The server returned {len(choices)} completions for {len(prompts)} prompts.")
        return choices


def pooled_rows(ids: Sequence[int], positions: Sequence[int], returned: int) -> list[int]:
    """Which rows of a `/pooling` token_classify result hold the marks at `positions` of `ids`.

    vLLM returns every token's row (`ALL` pooling) or, with `STEP` pooling (its default for
    Qwen2ForProcessRewardModel, `step_tag_id` 151651 = `<extra_0>`), only the rows of the tokens
    equal to the step tag, in order.  Raises ServerError when neither fits (e.g. the server's
    step_tag_id is not this layout's separator token: start it with
    `--pooler-config '{"step_tag_id": ID}'` for the separator's id, or `'{"tok_pooling_type": "ALL"}'`).
    """
    if returned == len(ids):
        return list(positions)
    tags = {ids[q] for q in positions}
    occurrences = [j for j, token in enumerate(ids) if token in tags] if len(tags) == 1 else []
    if returned == len(occurrences) and returned:
        index = {j: k for k, j in enumerate(occurrences)}
        return [index[q] for q in positions]
    raise ServerError(
        f"The pooling server returned {returned} rows for a {len(ids)}-token path with {len(positions)} steps: its "
        "step pooling does not read this layout's separator. Start it with --pooler-config "
        '\'{"tok_pooling_type": "ALL"}\' (or a step_tag_id equal to the separator token).'
    )


def _prompt_token_logprobs(choice: dict[str, Any], prompt: list[int]) -> list[float]:
    """log p(prompt[j] | prompt[:j]) for every j (position 0: nan), from vLLM's `prompt_logprobs`."""
    entries = choice.get("prompt_logprobs")
    if entries is None:
        raise ServerError(
            "The server returned no prompt_logprobs; likelihood PRMs need them (vLLM: allowed up to --max-logprobs; "
            "other servers may not support them)."
        )
    out = [math.nan]
    for token, entry in zip(prompt[1:], entries[1:], strict=True):
        value = (entry or {}).get(str(token))
        if value is None:
            raise ServerError(f"prompt_logprobs has no entry for token {token}; the server tokenized differently.")
        out.append(float(value["logprob"] if isinstance(value, dict) else value))
    return out


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def load_server_prm(spec: RewardModelSpec, *, transport: Any = None) -> ServerPRM:
    """A `ServerPRM` for `spec.url` serving `spec.name_or_path` (tokenizer/config from `spec.tokenizer` or the name).

    Raises `ServerError`/`ModelLoadError` when the tokenizer cannot load, the server does not
    answer or does not serve the model, or the preset does not fit the checkpoint (`check_server_fit`).
    """
    assert spec.url
    spec.check()
    refuse_unserved_kind(spec)  # no server can help: said before any request
    client = ServerClient(spec.url, spec.name_or_path, transport=transport)
    client.check_served()  # first: a wrong URL or name is reported before any tokenizer download is tried
    tok_name = spec.tokenizer or spec.name_or_path
    source, local = resolve_source(tok_name)
    tokenizer = load_tokenizer(source, local, tok_name, spec.trust_remote_code)
    config = check_server_fit(spec, source, local, tok_name, tokenizer)
    calib = None
    if spec.kind == "likelihood":
        if config is None:
            config = from_pretrained(AutoConfig, source, local, tok_name, trust_remote_code=spec.trust_remote_code)
        calib = calibration(SimpleNamespace(config=config))  # type: ignore[arg-type]
    client.usage.reset()
    mark, sep = spec.mark_and_sep if spec.kind not in ("likelihood", *OUTCOME_KINDS) else ("", spec.step_separator)
    default = HEAD_LAYOUT if spec.kind != "tag" else TAG_LAYOUT
    return ServerPRM(
        client, tokenizer, name=spec.name_or_path, local=local, kind=spec.kind, layout=spec.layout or default,
        mark=mark, sep=sep, good_token=spec.good_token, bad_token=spec.bad_token,
        head_label_index=spec.head_label_index, calib=calib, max_batch=spec.max_batch, system_prompt=spec.system_prompt,
    )


def refuse_unserved_kind(spec: RewardModelSpec) -> None:
    """Raise ModelLoadError, saying why and what to do, for a kind no server reads (`SERVER_KINDS`)."""
    preset = spec.preset or "custom"
    if spec.kind == "value-head":
        raise ModelLoadError(VALUE_HEAD_REFUSAL.format(name=spec.name_or_path, preset=preset))
    if spec.kind not in SERVER_KINDS:
        raise ModelLoadError(
            f"The inference-server backend reads {', '.join(SERVER_KINDS)} reward models; {spec.name_or_path} is "
            f"read as {spec.kind!r} (preset {preset!r}): load it in process (drop --prm-url)."
        )


def check_server_fit(spec: RewardModelSpec, source: str, local: Path | None, tok_name: str, tokenizer: Any) -> Any:
    """The in-process load-time fit check (models/prm_fit.py), on the client, before any search.

    Reads the config and safetensors headers beside the tokenizer (`spec.tokenizer` or the
    name) where they are there; a tokenizer-only directory still gets the tokenizer checks.
    Returns the config (None when there is none).  Raises ModelLoadError for a preset that does
    not fit, naming the preset that does.
    """
    try:
        config = from_pretrained(AutoConfig, source, local, tok_name, trust_remote_code=spec.trust_remote_code)
    except ModelLoadError:  # only a tokenizer: the architecture and head checks need the config
        config = None
    from .bundle import PRM_PRESETS

    check_fit(spec.preset, spec, inspect_checkpoint(spec.name_or_path, local, config, tokenizer), dict(PRM_PRESETS))
    return config
