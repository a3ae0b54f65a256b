"""``eval`` and ``sweep``: one strategy over many problems, or several strategies at growing budgets.

The harness itself (`search.evaluate`) is engine-level: any strategy, any models.  This module
only gathers the problems (held-out generated ones, a JSONL file, or the Game-of-24 test slice),
loads the models once through the same loader as `run`, and writes the results.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import DbOption, Device, console, print_rows
from search.config import Budget, ConfigError, split_pairs
from search.evaluate import EvalRecording
from search.models import Models
from search.presets import PRESETS, greedy_knobs, resolve
from search.request import ModelChoice
from search.tasks import GENERATING_TASKS
from search.tasks.base import Problem

Problems = Annotated[int, typer.Option("--problems", "-n", help="How many problems.")]
Jsonl = Annotated[str | None, typer.Option(help='JSONL of {"task","problem","answer"} instead.')]
Game24 = Annotated[bool, typer.Option("--game24", help="The Game-of-24 test slice (ranks 901-1000).")]
PresetOption = Annotated[
    str | None, typer.Option(help=f"Named setting: {', '.join(PRESETS)} (see `presets`); options given win.")
]
PrmPreset = Annotated[str | None, typer.Option(help="How --prm reads a path (default: the preset's, else nano).")]
ExcludeTarget = Annotated[
    list[int] | None,
    typer.Option(help="Held-out countdown: skip problems with this target (repeatable; 24: not Game-of-24 style)."),
]


def load_problems(
    task: str = "arith", count: int = 50, seed: int = 0, jsonl: str | None = None, game24: bool = False,
    exclude_targets: Sequence[int] = (),
) -> list[Problem]:
    """Problems to evaluate on: the Game-of-24 slice, a JSONL file, or held-out generated ones.

    Held-out problems come from the task's generator stream with seeds `EVAL_SEED_BASE + seed`,
    disjoint from the training streams in `nano.data`; `exclude_targets` (countdown only) skips
    those whose target is listed and reads on along the same stream, so ``24`` leaves the
    held-out countdown problems that are not Game-of-24 style.  A JSONL file is read and
    validated whole first (`search.batch.read_problems_jsonl`: BatchInputError lists every bad
    line, before any search).  Raises ConfigError for `exclude_targets` outside held-out countdown.
    """
    if exclude_targets and (game24 or jsonl or task != "countdown"):
        raise ConfigError("--exclude-target applies to held-out countdown problems (--task countdown) only.")
    if game24:
        from search.tasks.game24 import test_slice

        return [Problem("countdown", p.text, None) for p in test_slice()][:count]
    if jsonl:
        from search.batch import read_problems_jsonl

        return read_problems_jsonl(jsonl, task)[:count]
    from nano.data import heldout_problems

    if not exclude_targets:
        return heldout_problems(task, count, seed)
    from search.tasks.countdown import parse_problem

    drawn = count
    while True:
        kept = [p for p in heldout_problems(task, drawn, seed) if parse_problem(p.text).target not in exclude_targets]
        if len(kept) >= count or drawn > 50 * count + 100:
            return kept[:count]
        drawn *= 2


def load_models(policy: str | None, prm: str | None, device: str | None, prm_preset: str = "nano") -> Models:
    """The models every problem shares, through `run`'s loader (None: the bundled nano model)."""
    from models.bundle import TransformersLoader

    loader, choice = TransformersLoader(), ModelChoice(policy=policy, prm=prm, device=device, prm_preset=prm_preset)
    loader.check(choice)
    return loader.load(choice)


def eval_command(
    task: Annotated[
        str | None,
        typer.Option(help=f"{' or '.join(GENERATING_TASKS)} (held-out generated problems; default: the preset's, "
                     "else arith)."),
    ] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", "-s", help="Default: the preset's, else greedy.")] = (
        None
    ),
    knob: Annotated[list[str] | None, typer.Option("--knob", "-k", help="name=value, repeatable.")] = None,
    preset: PresetOption = None,
    problems: Problems = 50,
    seed: int = 0,
    jsonl: Jsonl = None,
    game24: Game24 = False,
    exclude_target: ExcludeTarget = None,
    policy: str | None = None,
    prm: str | None = None,
    prm_preset: PrmPreset = None,
    with_greedy: Annotated[
        bool, typer.Option(help="Also run greedy (same policy, problems and chain knobs) and print it beside.")
    ] = False,
    device: Device = None,
    out: Annotated[Path | None, typer.Option(help="Per-problem results (.csv or .json).")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Budget per problem: most generated tokens.")] = None,
    max_nodes: Annotated[int | None, typer.Option(help="Budget per problem: most tree nodes.")] = None,
    answer_rules: Annotated[
        bool, typer.Option(help="Also re-decide every tree under each answer rule x aggregation (no model "
                           "call) and print their accuracies.")
    ] = False,
    save: Annotated[bool, typer.Option(help="Save every search as a run (open it in the app, `runs show`).")] = False,
    db: DbOption = None,
) -> None:
    """Accuracy and cost of one strategy over many problems (per-problem results written to --out).

    `found` counts problems whose tree holds a correct solution at all: found but not correct means
    the answer rule chose wrong; neither means the search never wrote it.  `mean_nodes` and
    `mean_tokens` are per problem.  `--answer-rules` shows which rule would have closed that gap.
    """
    from search.registry import get_strategy

    setup = resolve(preset, task=task, strategy=strategy, knobs=split_pairs(knob), policy=policy, prm=prm,
                    prm_preset=prm_preset, default_strategy="greedy")
    knobs = dict(setup.knobs)  # typed preset values and the text of -k; the config parses both
    get_strategy(setup.strategy).make_config(knobs)  # a bad or impossible knob fails before the models load
    budget = Budget(max_tokens=max_tokens, max_nodes=max_nodes)
    chosen = load_problems(setup.task, problems, seed, jsonl, game24, tuple(exclude_target or ()))
    models = load_models(setup.policy, setup.prm, device, setup.prm_preset)
    name = "game24" if game24 else (Path(jsonl).stem if jsonl else setup.task)
    out = out or Path("runs/nano_eval") / f"{name}_{preset or setup.strategy}_n{len(chosen)}_s{seed}.json"
    with ExitStack() as stack:
        record = _recording(stack, db, f"eval {preset or setup.strategy} on {name}", models) if save else None
        rows = [_eval_one(chosen, setup.strategy, knobs, models, seed, budget, out, record, answer_rules)]
        if with_greedy:
            greedy_out = out.with_name(f"{out.stem}_greedy{out.suffix}")
            greedy = replace(record, name=f"eval greedy on {name}") if record else None
            rows.append(_eval_one(chosen, "greedy", greedy_knobs(knobs), models, seed, budget, greedy_out, greedy))
        if record:
            where = record.open_store().where
            console.print(f"saved: every search as a run in {where} (`python cli.py runs list --db {where}`)",
                          soft_wrap=True, markup=False)
    for row in rows:
        console.print(f"{row['strategy']} knobs: {row['knobs']}", soft_wrap=True, markup=False)
    print_rows(f"{preset or setup.strategy} on {name} ({len(chosen)} problems)",
               [{k: row[k] for k in EVAL_COLUMNS} for row in rows])
    if answer_rules:
        print_rows(f"{setup.strategy}: accuracy of each answer rule on the same trees", rows[0]["rules"])


def _recording(stack: ExitStack, db: str | None, name: str, models: Models) -> EvalRecording:
    """Save each search as a run in `db` (opened once, closed with `stack`), named ``<name> · problem i``."""
    from models.bundle import describe
    from storage import Store

    store = stack.enter_context(Store.open(db))
    return EvalRecording(lambda: store, name, describe(models))


#: What `eval` prints per strategy (the files keep every field): accuracy, cost per problem, errors.
EVAL_COLUMNS = ("strategy", "problems", "accuracy", "found", "mean_nodes", "mean_tokens", "mean_prm_tokens",
                "mean_seconds", "errors")


def _eval_one(
    chosen: Sequence[Problem], strategy: str, knobs: dict[str, Any], models: Models, seed: int, budget: Budget,
    out: Path, record: EvalRecording | None = None, answer_rules: bool = False,
) -> dict[str, Any]:
    """One strategy over the problems with a progress bar; rows saved to `out` after every problem.

    Returns the summary row; with `answer_rules` its ``rules`` is `search.evaluate.rules_table`.
    """
    from tqdm import tqdm

    from search.batch import RowsFile, interrupt_keeps
    from search.evaluate import own_rule, rules_table, run_eval
    from search.registry import get_strategy

    bar = tqdm(total=len(chosen), desc=f"eval {strategy}")
    correct = 0
    saved = RowsFile(out)  # rewritten after every problem: what finished survives Ctrl-C

    def tick(row: dict) -> None:
        nonlocal correct
        saved.add(row)
        correct += row["correct"]
        bar.update(1)
        bar.set_postfix(acc=f"{correct / bar.n:.2f}")

    with interrupt_keeps(saved):
        summary, rows = run_eval(chosen, strategy, models, knobs, seed, on_problem=tick, budget=budget, record=record,
                                 answer_rules=answer_rules)
    bar.close()
    console.print(f"{strategy} per-problem results: {out}", soft_wrap=True, markup=False)
    own = own_rule(get_strategy(strategy).make_config(dict(knobs)))
    return {"strategy": strategy, **summary.as_row(), "rules": rules_table(rows, own)}


def sweep_command(
    task: str = "arith",
    strategies: Annotated[
        list[str] | None,
        typer.Option("--strategy", "-s", help="strategy or strategy:knob=value,...; repeatable."),
    ] = None,
    sizes: Annotated[
        str,
        typer.Option("--sizes", "--budgets", help="Comma-separated sizes (N / simulations: each strategy's scale)."),
    ] = "1,2,4,8,16,32,64",
    problems: Problems = 20,
    seed: int = 0,
    jsonl: Jsonl = None,
    game24: Game24 = False,
    exclude_target: ExcludeTarget = None,
    policy: str | None = None,
    prm: str | None = None,
    prm_preset: PrmPreset = None,
    device: Device = None,
    out: Annotated[Path, typer.Option(help="Figure path stem (.html and .png are written).")] = Path(
        "runs/nano_sweep/sweep"
    ),
) -> None:
    """Accuracy against generated tokens for several strategies at sizes 1..64 (plotly HTML + PNG)."""
    from tqdm import tqdm

    from search.batch import RowsFile, interrupt_keeps
    from search.evaluate import DEFAULT_SWEEP, parse_spec, run_sweep

    specs = strategies or list(DEFAULT_SWEEP)
    for spec in specs:
        parse_spec(spec)  # a bad strategy or knob fails before the models load
    try:
        counts = [int(b) for b in sizes.split(",") if b.strip()]
    except ValueError:
        raise ConfigError(f"--sizes must be comma-separated whole numbers (got {sizes!r}).") from None
    chosen = load_problems(task, problems, seed, jsonl, game24, tuple(exclude_target or ()))
    models = load_models(policy, prm, device, prm_preset or "nano")
    bar = tqdm(desc="sweep points")
    saved = RowsFile(out.with_suffix(".json"))  # the points so far, rewritten after each one
    with interrupt_keeps(saved):
        points = run_sweep(chosen, specs, counts, models, seed, on_point=lambda _: bar.update(1), on_row=saved.add)
    bar.close()
    name = "game24" if game24 else (Path(jsonl).stem if jsonl else task)
    plot_sweep(points, out, f"nano pack on {name}: accuracy vs generated tokens ({len(chosen)} problems)")
    out.with_suffix(".json").write_text(json.dumps(points, indent=2))
    shown = ("spec", "size", "accuracy", "found", "mean_nodes", "mean_tokens", "mean_prm_tokens", "mean_model_calls",
             "mean_seconds")
    print_rows(f"sweep on {name}", [{k: p[k] for k in shown} for p in points])
    console.print(f"figure: {out.with_suffix('.html')} and {out.with_suffix('.png')}", soft_wrap=True, markup=False)


def plot_sweep(points: Sequence[dict[str, Any]], out: Path, title: str) -> None:
    """Accuracy against mean generated tokens (log x), one line per strategy: HTML (plotly) + PNG."""
    import plotly.graph_objects as go

    from nano.report import save_png
    from search.evaluate import sweep_series

    series = sweep_series(points)
    fig = go.Figure([go.Scatter(x=xs, y=ys, mode="lines+markers", name=name) for name, (xs, ys) in series.items()])
    fig.update_layout(title=title, xaxis_title="mean generated tokens per problem (log)", yaxis_title="accuracy",
                      xaxis_type="log", template="plotly_white")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(out.with_suffix(".html"), include_plotlyjs="cdn")
    save_png(out.with_suffix(".png"), series, title, "mean generated tokens per problem", "accuracy", logx=True)


def pick_example_command(
    preset: Annotated[str, typer.Argument(help=f"One of {', '.join(PRESETS)}.")],
    problems: Annotated[int, typer.Option("--problems", "-n", help="How many candidates to try at most.")] = 20,
    seed: int = 0,
    policy: str | None = None,
    prm: str | None = None,
    device: Device = None,
    write: Annotated[bool, typer.Option(help="Store the pick for the app (models/nano/preset_examples.json).")] = False,
) -> None:
    """Find a problem where the preset's search answers correctly and greedy does not (the app's example).

    Candidates: for game24-* presets the Game-of-24 validation puzzles (ranks 5, 15, 25, ... outside the
    test slice 901-1000, never training problems); otherwise held-out problems of the preset's task.
    """
    from tqdm import tqdm

    from models.bundle import describe
    from search.preset_examples import EXAMPLES_FILE, find_example, write_example

    setup = resolve(preset, policy=policy, prm=prm)
    if preset.startswith("game24"):
        from nano.countdown_data import validation_ranks
        from search.tasks.game24 import load_puzzles

        ranks = set(validation_ranks())
        chosen = [Problem("countdown", p.text, None) for p in load_puzzles() if p.rank in ranks][:problems]
    else:
        chosen = load_problems(setup.task, problems, seed)
    models = load_models(setup.policy, setup.prm, device, setup.prm_preset)
    bar = tqdm(total=len(chosen), desc=f"pick-example {preset}")

    def tried(row: dict) -> None:
        bar.update(1)
        bar.set_postfix(search=row["search_correct"], greedy=row["greedy_correct"])

    pick = find_example(preset, chosen, models, seed=seed, on_try=tried)
    bar.close()
    if pick is None:
        console.print(f"no example in {len(chosen)} candidates: the search never answered right where greedy "
                      "missed (try more with -n, or better weights)")
        raise typer.Exit(1)
    console.print(f"example: {pick['problem']}  search: {pick['search_answer']}  greedy: {pick['greedy_answer']}",
                  markup=False)
    if write:
        write_example(pick, describe(models))
        console.print(f"stored in {EXAMPLES_FILE}", soft_wrap=True, markup=False)
