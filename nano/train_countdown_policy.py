"""Train a countdown specialist policy that writes legal moves (the shared nano policy keeps `arith`).

Why a specialist: the shared nano policy proposes a legal Game-of-24 first move 29% of the time,
and an earlier countdown-only continuation of it raised that but wrecked arith (44% -> 5%).  A
separate countdown policy leaves the arith policy and its results untouched.  It starts from the
nano PRM's causal LM (the step-3,000 LM, 69% legal first moves) and learns from the exact solver:

* a state is a random problem cut after k moves (good ones, or a legal dead end now and then);
  the curriculum moves the states from two or three numbers left to all five;
* the target is the rest of a random correct solution (each move uniform among the good ones, then
  the ``Answer:`` line and EOS) when the target is still reachable, else one legal move.

Measured (`measure_policy`) at temperature 1 with 16 samples per state, on states of held-out
Game-of-24 validation puzzles and of `eval`'s held-out countdown problems (neither trained on):
the share of sampled steps that are legal, and the share of states with a good move among the 16.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

import torch

from nano.common import param_count, setup, tokenize_masked
from nano.config import CountdownPolicyConfig
from nano.countdown_data import (
    TASK,
    after_move,
    example_rng,
    legal_moves,
    random_good_move,
    random_problem,
    validation_ranks,
    write,
)
from nano.data import fast_reachable
from nano.report import write_eval_table, write_loss_curve
from nano.resumable import PhaseSettings, PhaseState, load_state, pad, run_phase, smooth, write_trainer_state
from search.tasks.countdown import expression


def count_weights(step: int, curriculum_steps: int) -> dict[int, float]:
    """Problem sizes at `step`: from {3: 0.7, 4: 0.3} to {3: 0.25, 4: 0.55, 5: 0.2} (linear)."""
    t = min(1.0, step / max(1, curriculum_steps))
    return {3: 0.7 - 0.45 * t, 4: 0.3 + 0.25 * t, 5: 0.2 * t}


def policy_example(rng: random.Random, weights: dict[int, float], late_share: float) -> tuple[str, str, bool]:
    """(prompt, continuation, ends with the answer) for one state.

    `late_share`: chance that the state is cut late (two numbers left); otherwise after 0 to
    count-2 moves, each a good move while one exists (a legal dead end one time in ten).
    """
    count = rng.choices(list(weights), weights=list(weights.values()))[0]
    numbers, target = random_problem(rng, count)
    problem = f"Use {' '.join(map(str, numbers))} to make {target}."
    values: tuple[Fraction, ...] = tuple(Fraction(n) for n in numbers)
    cut = count - 2 if rng.random() < late_share else rng.randint(0, count - 2)
    steps, moves = [], []
    reachable = fast_reachable(values, target)
    for _ in range(cut):
        move = random_good_move(values, target, rng) if reachable and rng.random() >= 0.1 else None
        move = move or rng.choice(legal_moves(values))
        values = after_move(values, move)
        moves.append(move)
        steps.append(write(move, values, rng, shuffle_share=0.0))
        reachable = fast_reachable(values, target)
    prompt = TASK.prompt(problem, steps)
    if not reachable:
        move = rng.choice(legal_moves(values))
        return prompt, write(move, after_move(values, move), rng, shuffle_share=0.0) + "\n", False
    tail = []
    while len(values) > 1:
        move = random_good_move(values, target, rng)
        values = after_move(values, move)
        moves.append(move)
        tail.append(write(move, values, rng, shuffle_share=0.0))
    tail.append(f"Answer: {expression(numbers, moves)} = {target}")
    return prompt, "\n".join(tail) + "\n", True


def make_batch(config: CountdownPolicyConfig, tokenizer, step: int) -> dict[str, torch.Tensor]:
    """Batch of optimizer step `step` (examples step*B .. step*B+B-1 of the seeded stream)."""
    weights = count_weights(step, config.curriculum_steps)
    late = max(0.0, 0.5 * (1 - step / max(1, config.curriculum_steps)))
    rows = []
    for j in range(config.batch_size):
        prompt, continuation, ends = policy_example(example_rng(config.seed, step * config.batch_size + j), weights,
                                                    late)
        ids, labels = tokenize_masked(tokenizer, prompt + continuation, len(prompt), config.max_len)
        if not ends:  # one move, no end of solution: drop the EOS that tokenize_masked appends
            ids, labels = ids[:-1], labels[:-1]
        rows.append((ids, labels))
    return pad(rows, tokenizer.pad_token_id)


def measurement_states(puzzles: int, problems: int) -> list[tuple[str, str, list[str]]]:
    """(set name, problem, steps so far): start states and one-good-move states of validation puzzles,
    and start states of `eval`'s held-out countdown problems."""
    from nano.data import heldout_problems
    from search.tasks.game24 import load_puzzles

    ranks = set(validation_ranks()[:puzzles])
    out = []
    for puzzle in (p for p in load_puzzles() if p.rank in ranks):
        text = puzzle.text
        out.append(("Game of 24 start", text, []))
        values = tuple(Fraction(n) for n in sorted(puzzle.numbers))
        move = random_good_move(values, 24, random.Random(puzzle.rank))
        if move is not None:
            out.append(("Game of 24 after a good move", text, [write(move, after_move(values, move),
                                                                     random.Random(0), 0.0)]))
    out += [("countdown start (held out)", p.text, []) for p in heldout_problems("countdown", problems)]
    return out


@torch.no_grad()
def measure_policy(model, tokenizer, states: Sequence[tuple[str, str, list[str]]], samples: int = 16,
                   seed: int = 0) -> list[dict]:
    """Legal share of sampled steps (temperature 1) and coverage (a good move among `samples`), per set."""
    from nano.quick_eval import generate_solutions

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        results = []
        for name, problem, steps in states:
            texts = generate_solutions(model, tokenizer, [TASK.prompt(problem, steps)] * samples, temperature=1.0,
                                       max_new_tokens=48)
            proposals = [t.split("\n")[0] for t in texts]
            legal = [TASK.step_valid(problem, steps, p) for p in proposals]
            good = [TASK.step_reachable(problem, steps, p) for p in proposals]
            exists = _solvable_after(problem, steps)
            results.append((name, legal, any(good), exists))
    rows = []
    for name in dict.fromkeys(r[0] for r in results):
        picked = [r for r in results if r[0] == name]
        legal = [x for r in picked for x in r[1]]
        with_good = [r for r in picked if r[3]]
        rows.append({"states": name, "n": len(picked), "legal_share": sum(legal) / max(1, len(legal)),
                     "coverage_at_16": sum(r[2] for r in with_good) / max(1, len(with_good)),
                     "states_with_a_good_move": len(with_good)})
    return rows


def _solvable_after(problem: str, steps: Sequence[str]) -> bool:
    parsed, values = TASK._replay(problem, steps)
    return values is not None and fast_reachable(values, parsed.target)


def train_countdown_policy(config: CountdownPolicyConfig, resume: bool = False, progress: bool = True,
                           log: Callable[[str], None] = print) -> dict:
    """Train (or continue) to `config.stop_at or config.steps`, then export weights + report to `config.out`."""
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    device = setup(config.seed, config.threads, config.device)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(config.init)
    model = AutoModelForCausalLM.from_pretrained(config.init, use_safetensors=True)
    if hasattr(model.config, "likelihood_prm"):
        del model.config.likelihood_prm  # the init's PRM calibration; this model is a policy
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01, betas=(0.9, 0.98))
    state = load_state(config.ckpt, model, opt, resume, log, exported=config.init)
    model.to(device)
    states = measurement_states(config.eval_puzzles, config.eval_problems)
    settings = PhaseSettings(steps=config.steps, lr=config.lr, warmup=config.warmup, ckpt=config.ckpt,
                             save_every_s=config.save_every_s, eval_every=config.eval_every, stop_at=config.stop_at,
                             desc="countdown policy train", workers=config.data_workers)
    state = run_phase(model, opt, state, settings, functools.partial(make_batch, config, tokenizer),
                      lambda m, b: m(**b).loss, lambda: measure_policy(model, tokenizer, states),
                      {"config": asdict(config)}, progress, log)
    return export(model, tokenizer, config, state)


def export(model, tokenizer, config: CountdownPolicyConfig, state: PhaseState) -> dict:
    """Weights (safetensors) + tokenizer + loss curve + legality/coverage table in `config.out`."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    rows = measure_policy(model, tokenizer, measurement_states(config.export_puzzles or len(validation_ranks()),
                                                               config.export_problems))
    model.to("cpu").float().save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    meta = {**asdict(config), "parameters": param_count(model), "steps_trained": state.step,
            "train_minutes": round(state.seconds / 60, 1), "cpu_minutes": round(state.cpu_seconds / 60, 1),
            "examples_seen": state.step * config.batch_size}
    write_loss_curve(out, range(1, state.step + 1), smooth(state.losses), "countdown policy: training loss (smoothed)")
    write_eval_table(out, rows, meta)
    (out / "measurements.json").write_text(json.dumps(state.evals, indent=2))
    (out / "train_config.json").write_text(json.dumps(meta, indent=2))
    write_trainer_state(out, state)
    return {"meta": meta, "eval": rows}
