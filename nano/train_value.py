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

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from nano.common import lr_at, param_count, setup
from nano.config import ValueTrainConfig
from nano.countdown_data import (
    GOOD,
    ILLEGAL,
    LABELS,
    ValueExample,
    example_rng,
    puzzle_states,
    validation_ranks,
    value_example,
)
from nano.report import save_png, write_eval_table, write_loss_curve
from nano.train_prm import roc_auc

PREFIX = "Problem: {problem}\nSolution:\n"
SEPARATOR = "\n"


def count_weights(step: int, curriculum_steps: int) -> dict[int, float]:
    """Problem sizes at `step`: from {3: 0.6, 4: 0.4} to {3: 0.25, 4: 0.65, 5: 0.1} (linear)."""
    t = min(1.0, step / max(1, curriculum_steps))
    return {3: 0.6 - 0.35 * t, 4: 0.4 + 0.25 * t, 5: 0.1 * t}


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


class _Batches(torch.utils.data.Dataset):
    """Batch `k` of the run: examples k*B .. k*B+B-1, tokenized and padded (built in a worker process)."""

    def __init__(self, config: ValueTrainConfig, tokenizer, start: int):
        self.config, self.tokenizer, self.start = config, tokenizer, start

    def __len__(self) -> int:
        return max(0, min(self.config.steps, self.config.stop_at or self.config.steps) - self.start)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        step = self.start + index
        weights = count_weights(step, self.config.curriculum_steps)
        size = self.config.batch_size
        rows = [encode(self.tokenizer, value_example(example_rng(self.config.seed, step * size + j), weights,
                                                     self.config.corrupt_share)) for j in range(size)]
        return pad(rows, self.tokenizer.pad_token_id)


def pad(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids / attention_mask / labels."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, (row_ids, row_labels) in enumerate(rows):
        ids[b, : len(row_ids)] = torch.tensor(row_ids)
        labels[b, : len(row_labels)] = torch.tensor(row_labels)
        mask[b, : len(row_ids)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def validation_states(puzzles: int, seed: int = 0) -> list[tuple[ValueExample, int]]:
    """States one and two steps from the first `puzzles` validation puzzles (never trained on)."""
    from search.tasks.game24 import load_puzzles

    ranks = set(validation_ranks()[:puzzles])
    out = []
    for puzzle in (p for p in load_puzzles() if p.rank in ranks):
        out += puzzle_states(puzzle.numbers, random.Random(seed * 100_000 + puzzle.rank))
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
    for depth in (1, 2, None):
        for legal_only in (True, False):
            pick = [i for i, (e, d) in enumerate(states) if (depth is None or d == depth)
                    and (not legal_only or e.labels[-1] != ILLEGAL)]
            truth = [states[i][0].labels[-1] == GOOD for i in pick]
            rows.append({"states": f"{depth or '1+2'} step(s) from a puzzle",
                         "moves": "legal moves only" if legal_only else "legal + corrupted",
                         "n": len(pick), "good": sum(truth), "roc_auc": roc_auc([scores[i] for i in pick], truth)})
    return rows


def _save_ckpt(path: Path, state: dict) -> None:
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / "last.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(path / "last.pt")


def train_value(config: ValueTrainConfig, resume: bool = False, progress: bool = True,
                log: Callable[[str], None] = print) -> dict:
    """Train (or continue) to `config.steps`, then export weights + report to `config.out`; returns the report."""
    from transformers import AutoConfig, AutoModelForTokenClassification, PreTrainedTokenizerFast

    device = setup(config.seed, config.threads, config.device)
    ckpt_dir = Path(config.ckpt)
    state = torch.load(ckpt_dir / "last.pt", weights_only=False) if resume and (ckpt_dir / "last.pt").exists() \
        else None
    tokenizer = PreTrainedTokenizerFast.from_pretrained(config.init)
    model_config = AutoConfig.from_pretrained(
        config.init, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)})
    model_config.classifier_dropout = 0.0  # every example is fresh, and dropout would tie resuming to the RNG
    model = AutoModelForTokenClassification.from_pretrained(config.init, config=model_config, use_safetensors=True)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01, betas=(0.9, 0.98))
    start, losses, evals, seconds, cpu_before = 0, [], [], 0.0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start, losses, evals, seconds = state["step"], state["losses"], state["evals"], state["seconds"]
        cpu_before = state.get("cpu_seconds", 0.0)
        log(f"resumed at step {start} ({seconds / 60:.1f} min trained)")
    model.to(device).train()
    states = validation_states(config.eval_puzzles)

    def cpu_seconds() -> float:  # this process's CPU time (the data worker's is not counted)
        return cpu_before + time.process_time()

    def snapshot(step: int) -> None:
        _save_ckpt(ckpt_dir, {"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                              "losses": losses, "evals": evals, "seconds": seconds, "cpu_seconds": cpu_seconds(),
                              "config": asdict(config)})

    loader = torch.utils.data.DataLoader(_Batches(config, tokenizer, start), batch_size=None, shuffle=False,
                                         num_workers=1, prefetch_factor=4)
    bar = tqdm(loader, desc="value train", initial=start, total=config.steps, disable=not progress)
    last_save = tick = time.monotonic()
    step = start
    for batch in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, config.steps, config.lr, config.warmup)
        loss = torch.nn.functional.cross_entropy(
            model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
            .logits.float().flatten(0, 1), batch["labels"].to(device).flatten(), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        losses.append(round(loss.item(), 5))
        now = time.monotonic()
        seconds, tick = seconds + now - tick, now
        bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
        if config.eval_every and step % config.eval_every == 0:
            rows = measure(model, tokenizer, states)
            evals.append({"step": step, "minutes": round(seconds / 60, 1), "cpu_minutes": round(cpu_seconds() / 60, 1),
                          "rows": rows})
            log(f"step {step}: " + ", ".join(f"{r['states']}/{r['moves']}: {r['roc_auc']:.3f}" for r in rows))
            tick = time.monotonic()
        if now - last_save > config.save_every_s or step in (config.steps, config.stop_at):
            snapshot(step)
            last_save = time.monotonic()
        if step == config.stop_at:
            break
    if state is not None and step == start:
        log("nothing left to train in this phase; exporting the checkpoint")
    return export(model, tokenizer, config, losses, evals, seconds, cpu_seconds())


def export(model, tokenizer, config: ValueTrainConfig, losses: list[float], evals: list[dict],
           seconds: float, cpu: float) -> dict:
    """Weights (safetensors) + tokenizer + loss curve + AUC table on ALL validation puzzles, in `config.out`."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = measure(model, tokenizer, validation_states(config.export_puzzles or len(validation_ranks())))
    model.to("cpu").float().save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    meta = {**asdict(config), "parameters": param_count(model), "steps_trained": len(losses),
            "train_minutes": round(seconds / 60, 1), "cpu_minutes": round(cpu / 60, 1),
            "examples_seen": len(losses) * config.batch_size,
            "validation_puzzles": len(validation_ranks())}
    write_loss_curve(out, range(1, len(losses) + 1), _smooth(losses), "nano value model: training loss (smoothed)")
    write_eval_table(out, rows, meta)
    if evals:
        curve = {f"{r['states']}, {r['moves']}": ([e["step"] for e in evals], [e["rows"][k]["roc_auc"] for e in evals])
                 for k, r in enumerate(evals[0]["rows"])}
        save_png(out / "auc_curve.png", curve, "value model: ROC AUC on validation-puzzle states", "step", "ROC AUC")
        (out / "auc_curve.json").write_text(json.dumps(evals, indent=2))
    (out / "train_config.json").write_text(json.dumps(meta, indent=2))
    return {"meta": meta, "eval": rows}


def _smooth(values: Sequence[float], window: int = 50) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out
