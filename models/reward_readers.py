"""Reward models read the way their model cards read them, beyond the tag / head layouts.

* `ChatTagPRM` ("chat-tag", RLHFlow/Llama3.1-8B-PRM-*): the path is a conversation, the first
  user turn ``problem + " " + step 1``, each later step a user turn, each answered by the
  assistant with the good label (``+``); a step's score is P(``+``) vs P(``-``) at the token
  before that label.  The model card runs one prefix per step and reads ``logits[:, -3]``; a
  causal LM gives the same logits for every step in one pass of the whole conversation.
* `ValueHeadPRM` ("value-head", Skywork-o1-Open-PRM-*, skywork-o1-prm-inference's
  ``prepare_input``): ``bos + problem + "\\n"`` then each step tokenized on its own followed by
  the separator token; score = sigmoid(``v_head.summary`` (a Linear [1, hidden]) of the hidden
  state) at each separator.
* `OutcomeRM` ("orm-seq" / "orm-last-token", e.g. Qwen2.5-Math-RM): one score per path, read
  from the whole conversation (system prompt, the problem as the user turn, the steps joined
  by the separator as the assistant turn) by a sequence classifier or, at the last token, by a
  reward head ``score`` (a Linear, or Qwen2ForRewardModel's Linear-ReLU-Linear); raw rewards
  pass through a sigmoid so they weigh like probabilities.

Heads that transformers has no class for are read from the safetensors files by name (never
through remote code) and checked for shape at load (models/prm_fit.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from safetensors import safe_open

from search.models import StepScores

from .hf_prm import HFPRM
from .loading import LoadedModel, ModelLoadError
from .prompting import _starts_with_bos


def read_head(local: Path | None, prefix: str, hidden: int, name: str) -> torch.nn.Module:
    """The head stored under `prefix` in the safetensors files: Linear [1, hidden] or Linear-ReLU-Linear."""
    tensors: dict[str, torch.Tensor] = {}
    for file in sorted(local.glob("*.safetensors")) if local is not None else ():
        with safe_open(str(file), framework="pt") as handle:
            names = [k for k in handle.keys() if k.startswith(prefix + ".")]  # noqa: SIM118 - not a dict
            tensors.update({k[len(prefix) + 1 :]: handle.get_tensor(k) for k in names})
    if "weight" in tensors:
        head: torch.nn.Module = torch.nn.Linear(hidden, 1, bias="bias" in tensors)
    elif "0.weight" in tensors and "2.weight" in tensors:
        head = torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    else:
        raise ModelLoadError(f"{name}: no head {prefix}.weight among the checkpoint's local safetensors weights.")
    head.load_state_dict(tensors)
    return head


class HeadModel(torch.nn.Module):
    """A transformer body plus a scalar head, shaped like a 1-label token classifier (for `HFPRM`)."""

    def __init__(self, body: torch.nn.Module, head: torch.nn.Module):
        super().__init__()
        self.base_model, self.score = body, head.to(body.device, body.dtype)
        self.config = SimpleNamespace(num_labels=1)

    @property
    def device(self) -> torch.device:
        return self.base_model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.base_model.dtype

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> Any:
        hidden = self.base_model(input_ids=input_ids, attention_mask=attention_mask)[0]
        return SimpleNamespace(logits=self.score(hidden))


def encode_chat_tag(
    tokenizer: Any, good_id: int, name: str, problem: str, steps: Sequence[str]
) -> tuple[list[int], list[int]]:
    """RLHFlow's conversation as token ids and, per step, the position whose next token is the label.

    Both backends read it (`ChatTagPRM`, and the inference server's "chat-tag" kind); raises
    ModelLoadError when the chat template does not put the label `good_id` as its own token at
    the start of the assistant's turn.
    """
    if not steps:
        return [], []
    label = tokenizer.decode([good_id])

    def render(conversation: list[dict[str, str]], open_turn: bool) -> str:
        return tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=open_turn)

    conversation: list[dict[str, str]] = []
    starts = []
    for i, step in enumerate(steps):
        conversation.append({"role": "user", "content": f"{problem} {step}" if i == 0 else step})
        starts.append(len(render(conversation, True)))
        conversation.append({"role": "assistant", "content": label})
    text = render(conversation, False)
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    positions = []
    for start in starts:
        at = next((j for j, (s, e) in enumerate(offsets) if s >= start and e > s), None)
        if at is None or at == 0 or ids[at] != good_id or not text.startswith(label, start):
            raise ModelLoadError(
                f"{name}: its chat template does not put the label {label!r} as a token of its own "
                "at the start of the assistant's turn; the 'rlhflow' reading does not fit this model."
            )
        positions.append(at - 1)
    return ids, positions


class ChatTagPRM(HFPRM):
    """RLHFlow's multi-turn reading (see module docstring); kind "tag" machinery, chat encoding."""

    def encode(self, problem: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        return encode_chat_tag(self.tokenizer, self.good_id, self.name, problem, steps)


class ValueHeadPRM(HFPRM):
    """Skywork's reading (see module docstring); kind "head" machinery with a 1-output value head."""

    def encode(self, problem: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        if not steps:
            return [], []
        tokenizer = self.tokenizer
        ids = tokenizer.encode((tokenizer.bos_token or "") + problem + "\n", add_special_tokens=False)
        sep = tokenizer.encode(self.mark, add_special_tokens=False)[-1]
        positions = []
        for step in steps:
            ids += [*tokenizer.encode(step, add_special_tokens=False), sep]
            positions.append(len(ids) - 1)
        return ids, positions


class OutcomeRM(LoadedModel):
    """An outcome reward model: one score per path (`StepScores.scores` has one value)."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        name: str,
        local: Path | None,
        trust_remote_code: bool,
        reading: str,
        separator: str,
        system_prompt: str | None,
        head_label_index: int = 1,
    ):
        super().__init__(
            name,
            local,
            model.device,
            model.dtype,
            trust_remote_code,
            kv_reuse=False,
            kv_cache_entries=1,
            kv_cache_bytes=None,
        )
        self.model, self.tokenizer, self.reading = model, tokenizer, reading
        self.separator, self.system_prompt, self.head_label_index = separator, system_prompt, head_label_index

    def text(self, problem: str, steps: Sequence[str]) -> str:
        """The whole conversation as the model card writes it (plain text without a chat template)."""
        return outcome_text(self.tokenizer, self.separator, self.system_prompt, problem, steps)

    def score(self, problem: str, paths: Sequence[Sequence[str]]) -> list[StepScores]:
        """One forward pass per path; the score read at its last token (see module docstring)."""
        out = []
        with self._lock:
            for steps in paths:
                ids = outcome_ids(self.tokenizer, self.separator, self.system_prompt, problem, steps)
                x = torch.tensor([ids], device=self.device)
                with torch.inference_mode():
                    logits = self.model(input_ids=x, attention_mask=torch.ones_like(x)).logits.float()
                row = logits[0, -1] if self.reading == "orm-last-token" else logits[0]
                out.append(StepScores((outcome_value(row, self.head_label_index),), len(ids)))
        return out


def outcome_text(tokenizer: Any, separator: str, system_prompt: str | None, problem: str, steps: Sequence[str]) -> str:
    """An outcome model's input: the conversation (system, user = problem, assistant = steps joined
    by `separator`) through the tokenizer's chat template, or ``problem + "\n\n" + answer`` without one."""
    answer = separator.join(steps)
    if not getattr(tokenizer, "chat_template", None):
        return f"{problem}\n\n{answer}"
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    chat = [*system, {"role": "user", "content": problem}, {"role": "assistant", "content": answer}]
    return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=False)


def outcome_ids(
    tokenizer: Any, separator: str, system_prompt: str | None, problem: str, steps: Sequence[str]
) -> list[int]:
    """`outcome_text` as token ids (BOS added unless the text starts with it); both backends send these."""
    text = outcome_text(tokenizer, separator, system_prompt, problem, steps)
    return list(tokenizer(text, add_special_tokens=not _starts_with_bos(tokenizer, text))["input_ids"])


def outcome_value(row: torch.Tensor, head_label_index: int) -> float:
    """An outcome score from one row of logits: sigmoid of a single logit, else softmax's label `head_label_index`."""
    row = row.float()
    if row.numel() == 1:
        return float(torch.sigmoid(row.reshape(())))
    return float(torch.softmax(row, dim=-1)[head_label_index])
