"""Train the countdown value model: a token classifier (Qwen2.5-Math-PRM's shape) read at each step's newline.

Why a classification head and exact labels: a countdown state's value is a fact the exact solver
knows (is this step legal, and can the numbers left still make the target?), which is what
AlphaZero's value network learns from search outcomes.  The data is unlimited (nano.countdown_data),
so the model never sees an example twice; the curriculum moves from three-number problems to
four and five numbers.  The model starts from the nano PRM's weights (same tokenizer; it already
reads countdown steps) with a new 3-way head (illegal / good / dead end); the search reads
P(good) through the ordinary head-PRM path (`models.hf.load_prm(kind="head")`, preset `nano-value`).

Resumable: `--resume` continues from `<ckpt>/last.pt` (weights, optimizer, step, loss history,
measurements).  A checkpoint is written every `save_every_s` seconds and at every measurement, so
a killed run loses at most that much.  Example i of the run is drawn from
``Random(seed * 10**9 + i)``, so a resumed run trains on exactly the data an unbroken run would.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from nano.common import param_count, setup
from nano.config import FOCUS, ValueTrainConfig
from nano.countdown_data import (
    GOOD,
    ILLEGAL,
    LABELS,
    ValueExample,
    example_rng,
    final_states,
    puzzle_states,
    validation_ranks,
    value_example,
)
from nano.report import save_png, write_eval_table, write_loss_curve
from nano.resumable import PhaseSettings, PhaseState, load_state, pad, run_phase, smooth, write_trainer_state
from nano.train_prm import roc_auc

PREFIX = "Problem: {problem}\nSolution:\n"
SEPARATOR = "\n"


def count_weights(step: int, curriculum_steps: int, focus: str = "mix") -> dict[int, float]:
    """Problem sizes at `step`: from {3: 0.6, 4: 0.4} to {3: 0.25, 4: 0.65, 5: 0.1} (linear);
    with focus "game24", {3: 0.15, 4: 0.85} throughout.

    Raises:
        ValueError: an unknown `focus`.
    """
    if focus == "game24":
        return {3: 0.15, 4: 0.85}
    if focus != "mix":
        raise ValueError(f"unknown focus {focus!r}: choose one of {', '.join(FOCUS)}")
    t = min(1.0, step / max(1, curriculum_steps))
    return {3: 0.6 - 0.35 * t, 4: 0.4 + 0.25 * t, 5: 0.1 * t}


def game24_share(focus: str) -> float:
    """Share of four-number problems drawn Game-of-24 style (1-13, target 24) under `focus`."""
    return 0.95 if focus == "game24" else 0.5


def encode(tokenizer, example: ValueExample) -> tuple[list[int], list[int]]:
    """(ids, labels): the path laid out as the head-PRM reads it, labels at each step's newline, -100 elsewhere.

    The layout equals `models.hf.HEAD_LAYOUT` with separator "\\n" (a test checks it against the
    loaded PRM's own `encode`).
    """
    text = PREFIX.replace("{problem}", example.problem)
    ends = []
    for step in example.steps:
        text += step + SEPARATOR
        ends.append(len(text))
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    labels = [-100] * len(ids)
    for end, label in zip(ends, example.labels, strict=True):
        position = max(j for j, (s, e) in enumerate(offsets) if e > s and s < end)
        labels[position] = label
    return ids, labels


def make_batch(config: ValueTrainConfig, tokenizer, step: int) -> dict[str, torch.Tensor]:
    """Batch of optimizer step `step`: examples step*B .. step*B+B-1 of the seeded stream, tokenized and padded."""
    weights = count_weights(step, config.curriculum_steps, config.focus)
    size, share = config.batch_size, game24_share(config.focus)
    rows = [encode(tokenizer, value_example(example_rng(config.seed, step * size + j), weights, config.corrupt_share,
                                            game24_share=share, tempting_share=config.tempting_share))
            for j in range(size)]
    return pad(rows, tokenizer.pad_token_id)


def validation_states(puzzles: int, seed: int = 0) -> list[tuple[ValueExample, int]]:
    """States one, two and three steps (last moves) from the first `puzzles` validation puzzles (never trained on).

    The depth-1 and depth-2 states are the same as before the last moves were added (their own RNG).
    """
    from search.tasks.game24 import load_puzzles

    ranks = set(validation_ranks()[:puzzles])
    out = []
    for puzzle in (p for p in load_puzzles() if p.rank in ranks):
        out += puzzle_states(puzzle.numbers, random.Random(seed * 100_000 + puzzle.rank))
        out += final_states(puzzle.numbers, random.Random(seed * 100_000 + puzzle.rank + 50_000))
    return out


@torch.no_grad()
def good_probability(model, tokenizer, examples: Sequence[ValueExample], batch: int = 64) -> list[float]:
    """P(good) at the LAST step of each example."""
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(examples), batch):
        rows = [encode(tokenizer, e) for e in examples[i : i + batch]]
        enc = {k: v.to(device) for k, v in pad(rows, tokenizer.pad_token_id).items()}
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.float()
        probs = torch.softmax(logits, dim=-1)[..., GOOD]
        for b, (_, labels) in enumerate(rows):
            last = max(j for j, label in enumerate(labels) if label != -100)
            out.append(float(probs[b, last]))
    return out


def measure(model, tokenizer, states: Sequence[tuple[ValueExample, int]]) -> list[dict]:
    """ROC AUC of P(good) against the exact label, by depth, legal moves only and with corrupted steps."""
    was_training = model.training
    model.eval()
    scores = good_probability(model, tokenizer, [e for e, _ in states])
    model.train(was_training)
    rows = []
    for depth in (1, 2, None, 3):
        for legal_only in (True, False):
            pick = [i for i, (e, d) in enumerate(states) if (d == depth if depth else d in (1, 2))
                    and (not legal_only or e.labels[-1] != ILLEGAL)]
            if not pick:
                continue
            truth = [states[i][0].labels[-1] == GOOD for i in pick]
            rows.append({"states": "3 steps (last moves)" if depth == 3 else f"{depth or '1+2'} step(s) from a puzzle",
                         "moves": "legal moves only" if legal_only else "legal + corrupted",
                         "n": len(pick), "good": sum(truth), "roc_auc": roc_auc([scores[i] for i in pick], truth)})
    return rows


def train_value(config: ValueTrainConfig, resume: bool = False, progress: bool = True,
                log: Callable[[str], None] = print) -> dict:
    """Train (or continue) to `config.stop_at or config.steps`, then export weights + report to `config.out`."""
    from transformers import AutoConfig, AutoModelForTokenClassification, PreTrainedTokenizerFast

    device = setup(config.seed, config.threads, config.device)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(config.init)
    model_config = AutoConfig.from_pretrained(
        config.init, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)})
    model_config.classifier_dropout = 0.0  # every example is fresh, and dropout would tie resuming to the RNG
    model = AutoModelForTokenClassification.from_pretrained(config.init, config=model_config, use_safetensors=True)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01, betas=(0.9, 0.98))
    state = load_state(config.ckpt, model, opt, resume, log, exported=config.init)
    model.to(device)
    states = validation_states(config.eval_puzzles)
    settings = PhaseSettings(steps=config.steps, lr=config.lr, warmup=config.warmup, ckpt=config.ckpt,
                             save_every_s=config.save_every_s, eval_every=config.eval_every, stop_at=config.stop_at,
                             desc="value train", workers=config.data_workers)
    start = state.step
    state = run_phase(model, opt, state, settings, functools.partial(make_batch, config, tokenizer), _loss,
                      lambda: measure(model, tokenizer, states), {"config": asdict(config)}, progress, log)
    if state.step == start:
        log("nothing left to train in this phase; exporting the checkpoint")
    return export(model, tokenizer, config, state)


def _loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100)


def export(model, tokenizer, config: ValueTrainConfig, state: PhaseState) -> dict:
    """Weights (safetensors) + tokenizer + loss curve + AUC table on ALL validation puzzles, in `config.out`."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = measure(model, tokenizer, validation_states(config.export_puzzles or len(validation_ranks())))
    model.to("cpu").float().save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    meta = {**asdict(config), "parameters": param_count(model), "steps_trained": state.step,
            "train_minutes": round(state.seconds / 60, 1), "cpu_minutes": round(state.cpu_seconds / 60, 1),
            "examples_seen": state.step * config.batch_size,
            "validation_puzzles": len(validation_ranks())}
    write_loss_curve(out, range(1, state.step + 1), smooth(state.losses), "nano value model: training loss (smoothed)")
    write_eval_table(out, rows, meta)
    evals = state.evals
    if evals:
        curve = {f"{r['states']}, {r['moves']}": ([e["step"] for e in evals], [e["rows"][k]["roc_auc"] for e in evals])
                 for k, r in enumerate(evals[0]["rows"])}
        save_png(out / "auc_curve.png", curve, "value model: ROC AUC on validation-puzzle states", "step", "ROC AUC")
        (out / "auc_curve.json").write_text(json.dumps(evals, indent=2))
    (out / "train_config.json").write_text(json.dumps(meta, indent=2))
    write_trainer_state(out, state)
    return {"meta": meta, "eval": rows}
