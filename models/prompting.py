"""The policy's prompt as token ids: ONE builder that every policy backend uses.

Why one place: the transformers policy runs these ids itself and the inference-server policy
sends them as `prompt` token-id lists (text prompts are re-tokenized by the server, which loads
some tokenizers differently, e.g. vLLM reads the nano pack's tokenizer as `Qwen2Tokenizer` and
drops its spaces).  Whatever turns a task's prompt into ids (today: the task's plain text; a
chat template is the next extension) must therefore live here so both backends send the model
exactly the same tokens.

The prompt text comes from `Task.prompt(problem, steps)` (the problem, then the steps so far,
each followed by the task's step delimiter) or `Task.self_eval_question(...)` for judging.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def prompt_token_ids(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids the policy continues for one prompt.

    `prompt`: the task's prompt text (problem, then the steps so far).  Returns the ids of the
    whole text tokenized at once with the tokenizer's special tokens (BOS where the tokenizer
    adds one), exactly as the transformers backend has always run it.  Raises ValueError when
    the text encodes to no tokens (nothing for the model to continue).
    """
    ids = list(tokenizer(prompt)["input_ids"])
    if not ids:
        raise ValueError("The prompt encodes to no tokens; the policy needs at least one token to continue.")
    return ids


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
