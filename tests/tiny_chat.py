"""A tiny Qwen2-style *instruct* checkpoint with a Qwen-style chat template, built on the spot.

It is trained (a few hundred Adam steps, seconds on CPU) to answer a handful of freeform
problems inside the chat template it ships: system prompt, user turn with the problem,
assistant turn with steps separated by a blank line and a final `\\boxed{}`.  Without the
template (the plain prompt) it has never seen its context and writes something else, as a
real instruct model does on a bare prompt.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import Qwen2ForCausalLM

from tests.tiny_checkpoints import _save, _train, build_tokenizer, one_torch_thread, qwen2_config, tokenizer_as_loaded

IM_START, IM_END, ENDOFTEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
#: Qwen2.5's template reduced to its shape: a default system turn, `<|im_start|>role\n...<|im_end|>\n`.
QWEN_STYLE_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
#: (problem, solution steps); the last step holds the boxed answer.
SOLVED = [
    ("What is 12 plus 30?", ["We add 12 and 30.", "12 + 30 = 42.", "The answer is \\boxed{42}."]),
    ("What is 7 times 6?", ["We multiply 7 by 6.", "7 * 6 = 42.", "So we get \\boxed{42}."]),
    ("What is half of 18?", ["Half means divide by 2.", "18 / 2 = 9.", "The answer is \\boxed{9}."]),
    ("What is 5 squared?", ["Square 5.", "5 * 5 = 25.", "Thus \\boxed{25}."]),
]


def conversation(problem: str, steps: list[str]) -> str:
    """The training text: exactly what the template renders, plus the solution and end of turn."""
    return (
        f"{IM_START}system\n{SYSTEM}{IM_END}\n{IM_START}user\n{problem}{IM_END}\n{IM_START}assistant\n"
        + "\n\n".join(steps)
        + f"{IM_END}\n"
    )


def build_chat_checkpoint(root: Path, steps: int = 300, attention_heads: int = 2) -> Path:
    """Write the tiny instruct checkpoint under `root/tiny-Qwen2.5-Math-Instruct` and return it.

    The directory name contains "Qwen2.5-Math" so the model card's system prompt is looked up
    the way it is for the real model.  `attention_heads=1` gives a head dimension of 32, the
    smallest vLLM's CPU attention accepts (2 heads: 16).
    """
    with one_torch_thread():
        torch.manual_seed(0)
        texts = [conversation(p, s) for p, s in SOLVED]
        plain = [f"Problem: {p}\n\n" + "\n\n".join(s) for p, s in SOLVED]
        judged = ["Is this step correct? Answer yes or no. Yes No yes no"] * 4
        tokenizer = build_tokenizer(texts + plain + judged)
        tokenizer.add_special_tokens({"additional_special_tokens": [IM_START, IM_END]})
        tokenizer.eos_token = IM_END
        tokenizer.chat_template = QWEN_STYLE_TEMPLATE
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (IM_END, ENDOFTEXT, "<pad>")}
        config = qwen2_config(
            len(tokenizer), eos_token_id=ids[IM_END], bos_token_id=ids[ENDOFTEXT], pad_token_id=ids["<pad>"]
        )
        config.num_attention_heads, config.num_key_value_heads = attention_heads, 1
        if getattr(config, "head_dim", None) is not None:
            config.head_dim = config.hidden_size // attention_heads
        path = root / "tiny-Qwen2.5-Math-Instruct"
        model = Qwen2ForCausalLM(config)
        loaded = tokenizer_as_loaded(tokenizer, model.config, path)
        _train(model, loaded, texts * 4, steps)
        return _save(model, loaded, path)
