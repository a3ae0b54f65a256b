"""Train the nano PRM from a copy of the policy.

Two objectives.  "likelihood" (the shipped PRM, kind="likelihood" in `models.likelihood_prm`):
a step's score is a calibrated function of the smallest log-probability the PRM gives the
tokens of the path so far; the step labels train it through that score (binary cross-entropy),
while a language-modelling loss on fresh gold solutions keeps teaching it the arithmetic it
checks with.  "tag" (Math-Shepherd): the PRM says `+`/`-` at a step tag after each step.

Labels (Math-Shepherd): a step sampled from the trained policy is labelled with the fraction of
K policy rollouts from it that reach a correct answer (`labels="mc"`, the default), or with the
exact step checker (`labels="checker"`: faster, and what the committed weights were trained on).  Gold
solutions with one corrupted step add negatives the policy rarely produces.  The PRM starts from
the policy's weights: it already reads the arithmetic, so a few hundred steps suffice.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import AutoModelForCausalLM, GPT2LMHeadModel, PreTrainedTokenizerFast

from models.hf import HEAD_LAYOUT, TAG_LAYOUT, encode_marked, prm_text, right_padded
from models.likelihood_prm import CALIBRATION_KEY, encode_steps, end_token_ids, prefix_minima, step_min_logprobs
from nano.common import lr_at, pad_batch, param_count, save, setup, tokenize_masked
from nano.config import PolicyTrainConfig, PRMTrainConfig
from nano.data import PRM_SEED_BASE, TASKS, corrupt, heldout_problems, policy_dataset, problems, solution
from nano.quick_eval import generate_solutions, is_correct, solution_steps
from nano.report import write_eval_table, write_loss_curve
from nano.tokenizer import BAD, GOOD, STEP_TAG
from search.tasks.base import Problem

MAX_STEPS = 8
#: Seed of the likelihood PRM's gold-solution stream (`policy_dataset` chunks draw from
#: Random(100_000 + k)): disjoint from the policy's (seeds 0-2) and the held-out streams.
PRM_LM_SEED = 100
#: The policy's data settings (task mix, workers, length cap), reused for those gold solutions.
POLICY_DATA = PolicyTrainConfig()


@dataclass(frozen=True)
class Labelled:
    """One path and a label in [0, 1] for each of its steps."""

    problem: Problem
    steps: tuple[str, ...]
    labels: tuple[float, ...]


def checker_labels(problem: Problem, steps: Sequence[str]) -> tuple[float, ...]:
    task = TASKS[problem.task]
    return tuple(float(bool(task.check_step(problem.text, steps[:i], s))) for i, s in enumerate(steps))


def sample_paths(
    model, tokenizer, probs: Sequence[Problem], samples: int, temperature: float = 1.0, gen_tokens: int = 220,
    progress: bool = False,
) -> list[tuple]:
    """(problem, steps) for `samples` policy solutions per problem (cut after the answer / MAX_STEPS)."""
    return continue_prefixes(model, tokenizer, [(p, ()) for p in probs], samples, temperature, gen_tokens, progress)


def continue_prefixes(
    model, tokenizer, starts: Sequence[tuple[Problem, tuple[str, ...]]], samples: int, temperature: float,
    gen_tokens: int, progress: bool = False,
) -> list[tuple]:
    """(problem, prefix + policy continuation) `samples` times per start; empty continuations dropped."""
    prompts = [TASKS[p.task].prompt(p.text, list(pre)) for p, pre in starts for _ in range(samples)]
    texts: list[str] = []
    for start in tqdm(range(0, len(prompts), 256), desc="policy samples", disable=not progress):
        chunk = prompts[start : start + 256]
        texts += generate_solutions(model, tokenizer, chunk, temperature=temperature, max_new_tokens=gen_tokens)
    owners = [start for start in starts for _ in range(samples)]
    return [(p, (*pre, *solution_steps(t))[:MAX_STEPS]) for (p, pre), t in zip(owners, texts, strict=True)
            if t.strip()]


def mc_labels(
    model, tokenizer, paths: Sequence[tuple], rollouts: int, progress: bool, gen_tokens: int = 220
) -> list[tuple[float, ...]]:
    """Math-Shepherd soft labels: per step, the share of `rollouts` policy completions that end correct."""
    prefixes = sorted({(p, steps[: i + 1]) for p, steps in paths for i in range(len(steps))}, key=lambda x: x[0].text)
    jobs = [(p, pre) for p, pre in prefixes for _ in range(rollouts) if not TASKS[p.task].is_final(pre[-1])]
    prompts = [TASKS[p.task].prompt(p.text, pre) for p, pre in jobs]
    texts: list[str] = []
    for start in tqdm(range(0, len(prompts), 256), desc="MC rollouts", disable=not progress):
        chunk = prompts[start : start + 256]
        texts += generate_solutions(model, tokenizer, chunk, temperature=1.0, max_new_tokens=gen_tokens)
    wins: dict[tuple, list[bool]] = {}
    for (p, pre), text in zip(jobs, texts, strict=True):
        wins.setdefault((p, pre), []).append(is_correct(p, [*pre, *solution_steps(text)]))
    out = []
    for p, steps in paths:
        row = []
        for i in range(len(steps)):
            pre = steps[: i + 1]
            if TASKS[p.task].is_final(pre[-1]):
                row.append(float(is_correct(p, pre)))
            else:
                results = wins[(p, pre)]
                row.append(sum(results) / len(results))
        out.append(tuple(row))
    return out


def synthetic_paths(probs: Sequence[Problem], rng: random.Random) -> list[Labelled]:
    """Gold solutions, and gold prefixes ending in one corrupted step (checker-labelled)."""
    out = []
    for p in probs:
        gold = solution(p, rng)
        cut = rng.randrange(len(gold))
        bad = [*gold[:cut], corrupt(p, gold[:cut], gold[cut], rng)]
        for steps in (gold, bad):
            out.append(Labelled(p, tuple(steps), checker_labels(p, steps)))
    return out


def prefix_paths(
    model, tokenizer, probs: Sequence[Problem], samples: int, rng: random.Random, gen_tokens: int = 220,
    progress: bool = False,
) -> list[tuple]:
    """Gold prefixes (cut at a random step) continued `samples` times by the policy.

    Why: paths sampled from scratch rarely share a prefix, so the PRM never sees a correct step next
    to a slip made at the same point; beam search and MCTS choose exactly between such siblings.
    """
    starts = []
    for p in probs:
        gold = solution(p, rng)
        starts.append((p, tuple(gold[: rng.randrange(len(gold))])))
    return continue_prefixes(model, tokenizer, starts, samples, 1.0, gen_tokens, progress)


def build_dataset(config: PRMTrainConfig, model, tokenizer, progress: bool) -> list[Labelled]:
    rng = random.Random(PRM_SEED_BASE + config.seed)
    probs = [p for task in ("arith", "countdown") for p in problems(task, rng, config.problems_per_task)]
    paths = sample_paths(model, tokenizer, probs, config.samples_per_problem, gen_tokens=config.gen_tokens,
                         progress=progress)
    if config.prefix_problems:
        starts = [p for task in ("arith", "countdown") for p in problems(task, rng, config.prefix_problems)]
        paths += prefix_paths(model, tokenizer, starts, config.samples_per_problem, rng, config.gen_tokens, progress)
    if config.labels == "mc":
        labels = mc_labels(model, tokenizer, paths, config.rollouts, progress, config.gen_tokens)
    else:
        labels = [checker_labels(p, steps) for p, steps in paths]
    data = [Labelled(p, steps, lab) for (p, steps), lab in zip(paths, labels, strict=True) if steps]
    n_syn = int(len(data) * config.synthetic_share)
    data += synthetic_paths(rng.sample(probs, min(len(probs), n_syn // 2)), rng)
    rng.shuffle(data)
    return data


def encode(tokenizer: PreTrainedTokenizerFast, item: Labelled) -> tuple[list[int], list[int], list[float]]:
    text, ends = prm_text(TAG_LAYOUT, item.problem.text, item.steps, STEP_TAG, "\n")
    ids, positions = encode_marked(tokenizer, text, ends, len(STEP_TAG))
    return ids, positions, list(item.labels)


def labelled_forward(
    model, batch: list[tuple], pad_id: int, device
) -> tuple[torch.Tensor, torch.Tensor, list, list, torch.Tensor]:
    """One right-padded forward over (ids, per-step marks, per-step labels) rows.

    Returns (logits, input ids on `device`, the row of every step, every step's mark, the labels),
    steps flattened in batch order; a mark is a read position (tag) or a token span (likelihood).
    """
    x, mask = right_padded([ids for ids, _, _ in batch], pad_id)
    rows = [b for b, (_, item_marks, _) in enumerate(batch) for _ in item_marks]
    marks = [mark for _, item_marks, _ in batch for mark in item_marks]
    targets = [label for _, _, labels in batch for label in labels]
    x = x.to(device)
    logits = model(input_ids=x, attention_mask=mask.to(device)).logits
    return logits, x, rows, marks, torch.tensor(targets, device=device)


def prm_loss(
    model: GPT2LMHeadModel, batch: list[tuple], ids_pair: tuple[int, int], pad_id: int, device: torch.device
) -> torch.Tensor:
    """Soft binary cross-entropy of P(good) (softmax over the good/bad token logits) at each step tag."""
    logits, _, rows, cols, t = labelled_forward(model, batch, pad_id, device)
    pair = logits[torch.tensor(rows, device=device), torch.tensor(cols, device=device)][:, list(ids_pair)]
    logp = torch.log_softmax(pair.float(), dim=-1)
    return -(t * logp[:, 0] + (1 - t) * logp[:, 1]).mean()


def train_prm(config: PRMTrainConfig, progress: bool = True) -> dict:
    """Label data with the policy, fine-tune a copy of it as PRM, save weights + report to `config.out`."""
    started = time.monotonic()
    device = setup(config.seed, config.threads, config.device)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(config.policy)
    if config.init and PreTrainedTokenizerFast.from_pretrained(config.init).get_vocab() != tokenizer.get_vocab():
        raise ValueError(f"--init {config.init} has a different tokenizer from the policy {config.policy}; "
                         "the PRM reads the policy's token ids, so both must share one vocabulary.")
    model = AutoModelForCausalLM.from_pretrained(config.policy, use_safetensors=True).to(device)
    data = build_dataset(config, model, tokenizer, progress)
    label_s = time.monotonic() - started
    if config.init:  # labelled by the policy, trained from other (same-tokenizer) weights
        model = AutoModelForCausalLM.from_pretrained(config.init, use_safetensors=True).to(device)
    trainer = train_likelihood if config.objective == "likelihood" else train_tag
    losses = trainer(config, model, tokenizer, data, device, progress)
    train_s = time.monotonic() - started
    out = Path(config.out)
    save(model, tokenizer, out)
    rows = evaluate_prm(str(out), config.policy, config.eval_problems, config.seed, config.gen_tokens,
                        kind=config.objective)
    n_steps = sum(len(d.labels) for d in data)
    meta = {**asdict(config), "parameters": param_count(model), "paths": len(data), "labelled_steps": n_steps,
            "positive_share": sum(sum(d.labels) for d in data) / max(1, n_steps), "optimizer_steps": len(losses),
            "labelling_seconds": round(label_s, 1), "total_seconds": round(train_s, 1)}
    write_loss_curve(out, range(1, len(losses) + 1), losses, f"nano PRM ({config.labels} labels): training loss")
    write_eval_table(out, rows, meta)
    (out / "train_config.json").write_text(json.dumps(meta, indent=2))
    return {"meta": meta, "eval": rows}


def train_tag(config: PRMTrainConfig, model, tokenizer, data: list[Labelled], device, progress: bool) -> list[float]:
    """Math-Shepherd objective: soft cross-entropy of `+` vs `-` at each step tag."""
    encoded = [encode(tokenizer, item) for item in data]
    ids_pair = (tokenizer.convert_tokens_to_ids(GOOD), tokenizer.convert_tokens_to_ids(BAD))
    return _optimize(config, model, encoded, progress,
                     lambda batch: prm_loss(model, batch, ids_pair, tokenizer.pad_token_id, device))


def prefix_labels(labels: Sequence[float]) -> list[float]:
    """Per step, the worst label so far.

    Why: checker labels judge each step alone, but the likelihood PRM scores the path so far, so a
    step after a slip must count as bad too (Math-Shepherd's MC labels already mean that).
    """
    out, ok = [], 1.0
    for label in labels:
        ok = min(ok, label)
        out.append(ok)
    return out


def train_likelihood(
    config: PRMTrainConfig, model, tokenizer, data: list[Labelled], device, progress: bool
) -> list[float]:
    """Step labels through the likelihood score, plus a language-modelling loss on gold solutions.

    The calibration (scale, bias) is trained with the weights and saved in config.json.
    """
    encoded = []
    for item in data:
        ids, spans = encode_steps(tokenizer, HEAD_LAYOUT, "\n", item.problem.text, item.steps)
        encoded.append((ids, spans, prefix_labels(item.labels) if config.labels == "checker" else list(item.labels)))
    steps = config.epochs * ((len(encoded) + config.batch_size - 1) // config.batch_size)
    with tqdm(total=steps * config.batch_size, desc="gold solutions", disable=not progress) as bar:
        gold = policy_dataset(PRM_LM_SEED + config.seed, steps * config.batch_size, 0.0, POLICY_DATA.arith_share,
                              POLICY_DATA.data_workers, bar.update)
    gold_rows = [tokenize_masked(tokenizer, e.text, e.loss_from, POLICY_DATA.max_len) for e in gold]
    calib = torch.nn.Parameter(torch.tensor([1.0, 2.0], device=device))  # scale, bias
    end_ids = end_token_ids(tokenizer, "\n")
    batches = iter(range(0, len(gold_rows), config.batch_size))

    def loss_fn(batch: list[tuple]) -> torch.Tensor:
        start = next(batches)
        lm = pad_batch(gold_rows[start : start + config.batch_size], tokenizer.pad_token_id)
        lm_loss = model(**{k: v.to(device) for k, v in lm.items()}).loss
        step_loss = likelihood_loss(model, batch, calib, end_ids, tokenizer.pad_token_id, device)
        return step_loss + config.lm_weight * lm_loss

    losses = _optimize(config, model, encoded, progress, loss_fn, extra=[calib])
    model.config.update({CALIBRATION_KEY: {"scale": round(calib[0].item(), 6), "bias": round(calib[1].item(), 6)}})
    return losses


def likelihood_loss(model, batch: list[tuple], calib: torch.Tensor, end_ids, pad_id: int, device) -> torch.Tensor:
    """Soft binary cross-entropy of sigmoid(scale * prefix min log p + bias) against each step's label."""
    logits, x, rows, spans, targets = labelled_forward(model, batch, pad_id, device)
    minima = prefix_minima(step_min_logprobs(logits, x, rows, spans, end_ids), [len(s) for _, s, _ in batch])
    return torch.nn.functional.binary_cross_entropy_with_logits(calib[0] * minima + calib[1], targets)


def _optimize(config: PRMTrainConfig, model, encoded: list, progress: bool, loss_fn, extra=()) -> list[float]:
    """`config.epochs` shuffled passes over `encoded` in batches; AdamW with warm-up and cosine decay."""
    rng = random.Random(config.seed)
    total = config.epochs * ((len(encoded) + config.batch_size - 1) // config.batch_size)
    opt = torch.optim.AdamW([{"params": list(model.parameters()), "weight_decay": 0.01},
                             {"params": list(extra), "weight_decay": 0.0}], lr=config.lr)
    losses: list[float] = []
    model.train()
    bar = tqdm(total=total, desc="prm train", disable=not progress)
    for _ in range(config.epochs):
        order = list(range(len(encoded)))
        rng.shuffle(order)
        for start in range(0, len(order), config.batch_size):
            for group in opt.param_groups:
                group["lr"] = lr_at(len(losses), total, config.lr, config.warmup)
            loss = loss_fn([encoded[i] for i in order[start : start + config.batch_size]])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    return losses


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Mann-Whitney ROC AUC (ties count half); None when one class is missing."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    ranked = sorted((s, i) for i, s in enumerate(scores))
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[ranked[k][1]] = (i + j) / 2 + 1
        i = j + 1
    pos_rank = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (pos_rank - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def evaluate_prm(
    prm_path: str, policy_path: str, per_task: int, seed: int = 0, gen_tokens: int = 220, device: str | None = None,
    kind: str = "likelihood",
) -> list[dict]:
    """Step-level ROC AUC of the PRM vs the exact checker on held-out policy samples (EVAL seed stream).

    For the likelihood kind (a prefix score) a step counts as good when it and every step before
    it pass the checker; the "after a correct prefix" rows mean the same for both kinds.
    """
    from models.bundle import load_reward_model, prm_spec

    spec = prm_spec("nano" if kind == "likelihood" else "nano-tag")
    prm = load_reward_model(prm_path, spec, device=device, trust_remote_code=False)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(policy_path)
    policy = AutoModelForCausalLM.from_pretrained(policy_path, use_safetensors=True).to(prm.device)
    rows = []
    for task in ("arith", "countdown"):
        probs = heldout_problems(task, per_task, seed=seed + 7)
        scores, truth, first = [], [], []
        for p, steps in sample_paths(policy, tokenizer, probs, 2, gen_tokens=gen_tokens):
            if not steps:
                continue
            scores += list(prm.score(p.text, [list(steps)])[0].scores)
            labels = [bool(x) for x in checker_labels(p, steps)]
            first += [all(labels[:i]) for i in range(len(labels))]
            truth += [bool(x) for x in (prefix_labels(labels) if kind == "likelihood" else labels)]
        rows.append(_auc_row(task, "policy samples", scores, truth))
        rows.append(_auc_row(task, "policy samples, steps after a correct prefix",
                             [s for s, f in zip(scores, first, strict=True) if f],
                             [t for t, f in zip(truth, first, strict=True) if f]))
    return rows + evaluate_prm_synthetic(prm, per_task, seed)


def _auc_row(task: str, paths: str, scores: Sequence[float], truth: Sequence[bool]) -> dict:
    """One eval-table row. The 'after a correct prefix' rows are what search needs: a slip vs its siblings."""
    auc = roc_auc(scores, truth)
    return {"task": task, "paths": paths, "steps": len(truth), "good_share": sum(truth) / max(1, len(truth)),
            "roc_auc": auc if auc is not None else "n/a"}


def evaluate_prm_synthetic(prm, per_task: int, seed: int = 0) -> list[dict]:
    """ROC AUC on held-out gold solutions and gold prefixes ending in one corrupted step.

    Why as well: while the policy is weak its samples hold almost no good steps, so the AUC on
    them rests on a handful of positives; these paths have both classes in every problem.
    """
    rows = []
    for task in ("arith", "countdown"):
        rng = random.Random(seed + 11)
        scores, truth = [], []
        for item in synthetic_paths(heldout_problems(task, per_task, seed=seed + 11), rng):
            scores += list(prm.score(item.problem.text, [list(item.steps)])[0].scores)
            truth += [bool(x) for x in item.labels]
        rows.append(_auc_row(task, "gold + corrupted", scores, truth))
    return rows
