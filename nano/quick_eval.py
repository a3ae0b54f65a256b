"""Fast batched greedy evaluation straight on a model (used in training reports; no search engine).

Why separate from `evaluate`: the training report wants many problems in seconds, so whole
solutions are decoded in one batched `generate` instead of step by step through the engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from nano.data import TASKS
from search.tasks.base import Problem


def generate_solutions(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    prompts: Sequence[str],
    *,
    temperature: float = 0.0,
    max_new_tokens: int = 220,
    batch: int = 64,
) -> list[str]:
    """Continue each prompt to EOS (left padding, batched); returns the new text."""
    tokenizer.padding_side = "left"
    out: list[str] = []
    model.eval()
    for start in range(0, len(prompts), batch):
        chunk = list(prompts[start : start + batch])
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        room = _max_positions(model) - enc["input_ids"].shape[1]  # learned positions end there
        if room < 1:
            out += [""] * len(chunk)
            continue
        with torch.inference_mode():
            seqs = model.generate(
                **enc,
                max_new_tokens=min(max_new_tokens, room),
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_k=0 if temperature > 0 else None,
                top_p=1.0 if temperature > 0 else None,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        new = seqs[:, enc["input_ids"].shape[1] :]
        out += tokenizer.batch_decode(new, skip_special_tokens=True)
    return out


def solution_steps(text: str) -> list[str]:
    """The generated lines up to and including the first `Answer:` line."""
    steps = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        steps.append(line)
        if line.strip().startswith("Answer:"):
            break
    return steps


def is_correct(problem: Problem, steps: Sequence[str]) -> bool:
    task = TASKS[problem.task]
    if not steps or not task.is_final(steps[-1]):
        return False
    return bool(task.check_answer(problem.text, task.extract_answer(steps[-1]), problem.answer))


def greedy_correct(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, problems: Sequence[Problem], max_new_tokens: int = 220
) -> list[bool]:
    """Per problem: does its greedy solution end with a correct answer?"""
    prompts = [TASKS[p.task].prompt(p.text, []) for p in problems]
    texts = generate_solutions(model, tokenizer, prompts, max_new_tokens=max_new_tokens)
    return [is_correct(p, solution_steps(t)) for p, t in zip(problems, texts, strict=True)]


def _max_positions(model: PreTrainedModel) -> int:
    config = model.config
    return int(getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", 512))
