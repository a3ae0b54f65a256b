"""Train the nano policy: a small causal LM (Qwen2 layout, rotary positions) learning both tasks'
solutions and the self-check format.

Why it is deliberately small and briefly trained: the pack exists to show search beating greedy
decoding, so the policy must make real arithmetic slips and invalid moves (held-out greedy arith
accuracy between 25% and 75%), not be perfect.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import AutoModelForCausalLM

from nano.common import lr_at, new_model, pad_batch, param_count, save, setup, tokenize_masked
from nano.config import PolicyTrainConfig
from nano.data import DIFFICULTIES, heldout_problems, policy_dataset
from nano.quick_eval import greedy_correct
from nano.report import write_eval_table, write_loss_curve
from nano.tokenizer import build_tokenizer


def length_batches(rows: list[tuple[list[int], list[int]]], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped by similar length (less padding), batches in random order."""
    order = sorted(range(len(rows)), key=lambda i: (len(rows[i][0]), rng.random()))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def train_policy(config: PolicyTrainConfig, progress: bool = True) -> dict:
    """Build data, train, save weights + tokenizer + report in `config.out`; returns the report metadata."""
    started = time.monotonic()
    device = setup(config.seed, config.threads, config.device)
    tokenizer = build_tokenizer()
    with tqdm(total=config.examples, desc="policy data", disable=not progress) as data_bar:
        examples = policy_dataset(config.seed, config.examples, config.check_share, config.arith_share,
                                  config.data_workers, data_bar.update)
    rows = [tokenize_masked(tokenizer, e.text, e.loss_from, config.max_len) for e in examples]
    rng = random.Random(config.seed)
    batches = [b for _ in range(config.epochs) for b in length_batches(rows, config.batch_size, rng)]
    model = (
        AutoModelForCausalLM.from_pretrained(config.init, use_safetensors=True) if config.init
        else new_model(tokenizer, config.size)
    ).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01, betas=(0.9, 0.98))
    losses: list[float] = []
    model.train()
    bar = tqdm(batches, desc="policy train", disable=not progress)
    for step, idx in enumerate(bar):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, len(batches), config.lr, config.warmup)
        batch = {k: v.to(device) for k, v in pad_batch([rows[i] for i in idx], tokenizer.pad_token_id).items()}
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if config.save_every and (step + 1) % config.save_every == 0:
            save(model, tokenizer, Path(config.out) / f"checkpoint-{step + 1}")
            model.to(device)
    train_s = time.monotonic() - started
    out = Path(config.out)
    save(model, tokenizer, out)
    model.to(device)
    rows_eval = eval_rows(model, tokenizer, config.eval_problems, config.gen_tokens)
    meta = {**{k: v for k, v in asdict(config).items() if k != "size"}, **asdict(config.size)}
    meta |= {"parameters": param_count(model), "steps": len(batches), "train_seconds": round(train_s, 1),
             "final_loss": sum(losses[-20:]) / max(1, len(losses[-20:]))}
    write_loss_curve(out, range(1, len(losses) + 1), losses, "nano policy: training loss")
    write_eval_table(out, rows_eval, meta)
    (out / "train_config.json").write_text(json.dumps(meta, indent=2))
    return {"meta": meta, "eval": rows_eval}


def eval_rows(model: torch.nn.Module, tokenizer, per_task: int, gen_tokens: int = 220) -> list[dict]:
    """Held-out greedy accuracy per task and difficulty (EVAL_SEED_BASE problems, never trained on)."""
    rows = []
    for task in ("arith", "countdown"):
        problems = heldout_problems(task, per_task)
        correct = greedy_correct(model, tokenizer, problems, gen_tokens)
        for level in DIFFICULTIES:
            hits = [c for i, c in enumerate(correct) if DIFFICULTIES[i % len(DIFFICULTIES)] == level]
            rows.append({"task": task, "difficulty": level, "problems": len(hits),
                         "greedy_accuracy": sum(hits) / max(1, len(hits))})
        rows.append({"task": task, "difficulty": "all", "problems": len(problems),
                     "greedy_accuracy": sum(correct) / max(1, len(correct))})
    return rows
