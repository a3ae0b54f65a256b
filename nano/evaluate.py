"""Eval harness: run one strategy over many problems (`run_eval`), or a budget sweep (`run_sweep`).

Problems come from a task's held-out generator stream (seeds `EVAL_SEED_BASE + seed`, disjoint
from the training streams in `nano.data`), a JSONL file of {"task", "problem", "answer"}, or the
Game-of-24 test slice (ranks 901-1000, never trained on).  Every number reported is measured by
`run_search`'s own budget counters, so strategies are compared at equal accounting.
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nano.data import heldout_problems
from search.batch import read_problems_jsonl, run_rows
from search.config import Budget, ConfigError
from search.models import Models
from search.registry import get_strategy
from search.runner import run_search
from search.tasks.base import Problem

NANO_DIR = Path(__file__).resolve().parents[1] / "models" / "nano"
#: Which knob a sweep's "budget" sets, per strategy (greedy has none: one point).
BUDGET_KNOB = {"self_consistency": "n", "best_of_n": "n", "beam": "n", "dvts": "n", "mcts": "simulations"}
DEFAULT_SWEEP = ("greedy", "self_consistency", "best_of_n:answer_method=prm_vote", "best_of_n", "beam", "mcts")


def load_nano_models(policy: str | None = None, prm: str | None = None, device: str | None = None) -> Models:
    """The nano pack (or given checkpoints; the PRM read as a likelihood PRM) through the transformers backend."""
    from models.bundle import load_models

    return load_models(policy or str(NANO_DIR / "policy"), prm or str(NANO_DIR / "prm"), device=device)


def load_problems(
    task: str = "arith", n: int = 50, seed: int = 0, jsonl: str | None = None, game24: bool = False
) -> list[Problem]:
    """Problems to evaluate on: the Game-of-24 slice, a JSONL file, or held-out generated ones.

    A JSONL file is read and validated whole first (`search.batch.read_problems_jsonl`).
    """
    if game24:
        from search.tasks.game24 import test_slice

        return [Problem("countdown", p.text, None) for p in test_slice()][:n]
    if jsonl:  # every line validated (problem and answer) before any search; BatchInputError lists the bad ones
        return read_problems_jsonl(jsonl, task)[:n]
    return heldout_problems(task, n, seed)


def parse_knobs(pairs: Sequence[str], strategy: str) -> dict[str, Any]:
    """``name=value`` strings typed by the strategy config's defaults."""
    defaults = {name: default for name, default, _ in get_strategy(strategy).config_cls.knobs()}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in defaults:
            raise ConfigError(f"knob {pair!r}: expected name=value with a knob of {strategy} ({', '.join(defaults)}).")
        values[key] = _coerce(raw.strip(), defaults[key])
    return values


def _coerce(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        return raw.lower() in ("true", "1", "yes")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if default is None:
        return None if raw.lower() == "none" else int(raw)
    return raw


@dataclass
class EvalSummary:
    strategy: str
    knobs: dict[str, Any]
    problems: int
    accuracy: float
    #: Share of problems whose tree holds a correct finished solution, chosen or not.  The gap to
    #: `accuracy` is what the answer rule lost; `found` itself is what growing the tree reached.
    found: float
    mean_tokens: float
    mean_prm_tokens: float
    mean_model_calls: float
    mean_seconds: float
    errors: int

    def as_row(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_eval(
    problems: Sequence[Problem],
    strategy: str,
    models: Models,
    knobs: dict[str, Any] | None = None,
    seed: int = 0,
    on_problem: Callable[[dict[str, Any]], None] | None = None,
    budget: Budget | None = None,
) -> tuple[EvalSummary, list[dict[str, Any]]]:
    """Run `strategy` on each problem; returns the summary and one row per problem.

    `budget` caps every problem's search alike (e.g. `max_tokens` = what best-of-16 spends), so
    strategies whose knobs do not map to tokens, such as MCTS's simulations, can be compared at
    equal generated tokens; a capped search answers from the tree it has.
    """
    get_strategy(strategy).make_config(dict(knobs or {}))  # a bad knob fails once, before any problem

    def one(i: int, problem: Problem) -> dict[str, Any]:
        started = time.monotonic()
        result = run_search(problem.text, task=problem.task, strategy=strategy, models=models,
                            config=dict(knobs or {}), seed=seed + i, reference=problem.answer, budget=budget)
        spent = result.budget or {}
        return {
            "index": i, "task": problem.task, "problem": problem.text, "reference": problem.answer,
            "answer": result.answer, "correct": bool(result.correct),
            "found": any(node.correct for node in result.tree.terminals()), "status": result.status,
            "tokens_generated": spent.get("tokens_generated", 0), "prm_tokens": spent.get("prm_tokens", 0),
            "model_calls": spent.get("model_calls", 0), "nodes": spent.get("nodes", 0),
            "seconds": round(time.monotonic() - started, 3), "error": result.error,
        }

    def failed(i: int, problem: Problem, error: str) -> dict[str, Any]:
        return {"index": i, "task": problem.task, "problem": problem.text, "reference": problem.answer,
                "answer": None, "correct": False, "found": False, "status": "failed", "tokens_generated": 0,
                "prm_tokens": 0, "model_calls": 0, "nodes": 0, "seconds": 0.0, "error": error}

    rows = run_rows(problems, one, failed, on_problem)
    return summarize(strategy, knobs or {}, rows), rows


def summarize(strategy: str, knobs: dict[str, Any], rows: Sequence[dict[str, Any]]) -> EvalSummary:
    def mean(key: str) -> float:
        return statistics.fmean(r[key] for r in rows) if rows else 0.0

    return EvalSummary(strategy, dict(knobs), len(rows), mean("correct"), mean("found"), mean("tokens_generated"),
                       mean("prm_tokens"), mean("model_calls"), mean("seconds"), sum(bool(r["error"]) for r in rows))


def write_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Per-problem results as CSV (.csv) or JSON (anything else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["index"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text(json.dumps(list(rows), indent=2))


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``best_of_n:answer_method=prm_vote,aggregation=min`` -> ("best_of_n", {...})."""
    name, _, rest = spec.partition(":")
    pairs = [p for p in rest.split(",") if p.strip()]
    return name.strip(), parse_knobs(pairs, name.strip())


def budget_knobs(strategy: str, budget: int) -> dict[str, Any]:
    """The knobs that give `strategy` a budget of `budget` chains / beams / simulations."""
    key = BUDGET_KNOB.get(strategy)
    if key is None:
        return {}
    knobs: dict[str, Any] = {key: budget}
    if strategy in ("beam", "dvts"):
        knobs["beam_width"] = min(4, budget)
    return knobs


def run_sweep(
    problems: Sequence[Problem],
    specs: Sequence[str],
    budgets: Sequence[int],
    models: Models,
    seed: int = 0,
    on_point: Callable[[EvalSummary], None] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Accuracy and cost of each strategy spec at each budget (greedy: once); `on_row` sees each point.

    Every spec is parsed and checked before the first point runs; a failure inside one problem
    is recorded in that problem's row (`run_eval`) and counted in the point's `errors`.
    """
    for spec in specs:  # bad specs fail before any search
        name, extra = parse_spec(spec)
        for budget in budgets if name in BUDGET_KNOB else budgets[:1]:
            get_strategy(name).make_config({**budget_knobs(name, budget), **extra})
    points = []
    for spec in specs:
        name, extra = parse_spec(spec)
        for budget in budgets if name in BUDGET_KNOB else budgets[:1]:
            knobs = {**budget_knobs(name, budget), **extra}
            summary, _ = run_eval(problems, name, models, knobs, seed)
            points.append({"spec": spec, "budget": budget if name in BUDGET_KNOB else 1, **summary.as_row()})
            if on_row:
                on_row(points[-1])
            if on_point:
                on_point(summary)
    return points


def plot_sweep(points: Sequence[dict[str, Any]], out: Path, title: str) -> None:
    """Accuracy against mean generated tokens (log x), one line per strategy: HTML (plotly) + PNG."""
    import plotly.graph_objects as go

    from nano.report import save_png

    series: dict[str, tuple[list[float], list[float]]] = {}
    for p in points:
        xs, ys = series.setdefault(p["spec"], ([], []))
        xs.append(max(1.0, p["mean_tokens"]))
        ys.append(p["accuracy"])
    fig = go.Figure([go.Scatter(x=xs, y=ys, mode="lines+markers", name=name) for name, (xs, ys) in series.items()])
    fig.update_layout(title=title, xaxis_title="mean generated tokens per problem (log)", yaxis_title="accuracy",
                      xaxis_type="log", template="plotly_white")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(out.with_suffix(".html"), include_plotlyjs="cdn")
    save_png(out.with_suffix(".png"), series, title, "mean generated tokens per problem", "accuracy", logx=True)
