"""The policy's prompt as token ids: ONE builder that every policy backend uses.

Why one place: the transformers policy runs these ids itself and the inference-server policy
sends them as `prompt` token-id lists (text prompts are re-tokenized by the server, which loads
some tokenizers differently, e.g. vLLM reads the nano pack's tokenizer as `Qwen2Tokenizer` and
drops its spaces).  Whatever turns a task's prompt into ids (today: the task's plain text; a
chat template: `ChatFormat` below) must therefore live here so both backends send the model
exactly the same tokens.

The prompt text comes from `Task.prompt(problem, steps)` (the problem, then the steps so far,
each followed by the task's step delimiter) or `Task.self_eval_question(...)` for judging; a
policy with a chat format (its `chat` attribute, set by models.factory.load_policy for every
backend) has both written through its tokenizer's chat template instead (the engine asks
through `search.models.render_prompt`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search.tasks.base import Task


def prompt_token_ids(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids the policy continues for one prompt.

    `prompt`: the task's prompt text (problem, then the steps so far).  Returns the ids of the
    whole text tokenized at once with the tokenizer's special tokens (BOS where the tokenizer
    adds one), exactly as the transformers backend has always run it; a prompt rendered by a
    chat template that already starts with the BOS text is not given a second one.  Raises ValueError when
    the text encodes to no tokens (nothing for the model to continue).
    """
    ids = list(tokenizer(prompt, add_special_tokens=not _starts_with_bos(tokenizer, prompt))["input_ids"])
    if not ids:
        raise ValueError("The prompt encodes to no tokens; the policy needs at least one token to continue.")
    return ids


def _starts_with_bos(tokenizer: Any, prompt: str) -> bool:
    bos = getattr(tokenizer, "bos_token", None)
    return bool(bos) and prompt.startswith(bos)


def prompt_token_id_batch(tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
    """`prompt_token_ids` for each prompt (a frontier), in order."""
    return [prompt_token_ids(tokenizer, prompt) for prompt in prompts]


# --------------------------------------------------------------------------------------------
# Reading what the policy wrote (shared by every policy backend, so steps are cut identically)


def eos_token_ids(tokenizer: Any, generation_config: Any = None) -> set[int]:
    """EOS ids from the tokenizer and the checkpoint's generation config (chat models list several)."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    configured = getattr(generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    return ids


def stop_token_ids(tokenizer: Any, stop: str) -> list[int] | None:
    """The ids whose text contains a one-character ASCII stop (e.g. the step delimiter "\\n").

    Why: checking ids is exact for such a stop (one byte never spans two tokens); the transformers
    backend skips decoding every row's tail at every step, and the server backend sends these as
    `stop_token_ids` so the server's own detokenizer (which may read the tokenizer differently)
    does not decide where a step ends.  Longer or non-ASCII stops return None (use a text check).
    """
    if len(stop) != 1 or not stop.isascii():
        return None
    vocab = range(len(tokenizer))
    texts = tokenizer.batch_decode([[i] for i in vocab], skip_special_tokens=False)
    return [i for i, text in zip(vocab, texts, strict=True) if stop in text]


def decode(tokenizer: Any, tokens: Sequence[int]) -> str:
    """Text of generated token ids, special tokens kept, no clean-up (what the model wrote)."""
    return tokenizer.decode(list(tokens), skip_special_tokens=False, clean_up_tokenization_spaces=False)


def cut_generation(
    tokenizer: Any, tokens: Sequence[int], eos_ids: set[int], stop: str | None
) -> tuple[int, str, bool]:
    """(tokens used, text before `stop`/EOS, hit EOS) for one generated row of token ids.

    Tokens used run through the EOS or the token that completed `stop`; the text is decoded on
    the client from the ids, never taken from a server's own detokenizer.
    """
    for n, token in enumerate(tokens, start=1):
        if token in eos_ids:
            return n, decode(tokenizer, tokens[: n - 1]), True
        if stop:
            text = decode(tokenizer, tokens[:n])
            at = text.find(stop)
            if at >= 0:
                return n, text[:at], False
    return len(tokens), decode(tokenizer, tokens), False


# --------------------------------------------------------------------------------------------
# Chat templates (shared by every policy backend, so a chat prompt is the same text and ids)

CHAT_TEMPLATE_MODES: tuple[str, ...] = ("auto", "on", "off")

#: System prompts from model cards, keyed by a fragment of the lower-cased model name or path.
#: Qwen2.5-Math-*-Instruct (CoT): "Please reason step by step, and put your final answer within \boxed{}."
MODEL_CARD_SYSTEM_PROMPTS: dict[str, str] = {
    "qwen2.5-math": "Please reason step by step, and put your final answer within \\boxed{}.",
}


class ChatTemplateError(ValueError):
    """`chat_template="on"` for a tokenizer without a chat template, or an unknown mode."""


def has_chat_template(tokenizer: Any) -> bool:
    """Does the tokenizer carry a chat template (`tokenizer.chat_template`)?"""
    return bool(getattr(tokenizer, "chat_template", None))


def model_card_system_prompt(name: str) -> str | None:
    """The system prompt the model card of `name` prescribes, when we know it."""
    lowered = name.lower()
    return next((prompt for key, prompt in MODEL_CARD_SYSTEM_PROMPTS.items() if key in lowered), None)


@dataclass(frozen=True)
class ChatFormat:
    """How a chat policy's prompts are written: the problem in the user turn, steps in the assistant turn.

    `system`: the system prompt (a model card's; None sends no system turn, and the task's
    `chat_instruction` follows the problem in the user turn instead).  Steps are appended to
    the rendered conversation after the generation prompt, each followed by the task's
    delimiter, so a child's prompt extends its parent's (prefix KV caches keep working).
    Self-evaluation asks in a second user turn after the steps; the answer is read at the
    first token of the assistant's reply (`yes_token` vs `no_token`).
    """

    tokenizer: Any
    system: str | None = None
    yes_token: str = "Yes"
    no_token: str = "No"

    def _render(self, messages: list[dict[str, str]]) -> str:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return self.tokenizer.apply_chat_template(head + messages, tokenize=False, add_generation_prompt=True)

    def _user(self, task: Task, problem: str) -> str:
        return task.chat_user_turn(problem, instruction=self.system is None)

    def prompt(self, task: Task, problem: str, steps: Sequence[str]) -> str:
        """The conversation up to the assistant turn, then the steps so far (each + delimiter)."""
        head = self._render([{"role": "user", "content": self._user(task, problem)}])
        return head + "".join(step + task.step_delimiter for step in steps)

    def judge(self, task: Task, problem: str, steps: Sequence[str], step: str) -> str:
        """The solution so far as the assistant's turn, then a user turn asking about `step`."""
        solution = task.step_delimiter.join([*steps, step])
        return self._render(
            [
                {"role": "user", "content": self._user(task, problem)},
                {"role": "assistant", "content": solution},
                {"role": "user", "content": task.chat_judge_turn(step)},
            ]
        )


def chat_format(tokenizer: Any, mode: str, name: str, system_prompt: str | None = None) -> ChatFormat | None:
    """The chat format a policy uses under `mode` (auto: on when the tokenizer has a template).

    `system_prompt` overrides the model card's (an empty string sends none).  Returns None for
    plain-text prompts.  Raises ChatTemplateError for mode "on" without a template or an unknown mode.
    """
    if mode not in CHAT_TEMPLATE_MODES:
        raise ChatTemplateError(f"chat template must be one of {', '.join(CHAT_TEMPLATE_MODES)} (got {mode!r}).")
    if mode == "off" or (mode == "auto" and not has_chat_template(tokenizer)):
        return None
    if not has_chat_template(tokenizer):
        raise ChatTemplateError(
            f"{name} has no chat template in its tokenizer (tokenizer_config.json 'chat_template'); "
            "use --chat-template off or auto for plain-text prompts."
        )
    system = model_card_system_prompt(name) if system_prompt is None else (system_prompt or None)
    return ChatFormat(tokenizer, system)
