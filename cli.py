"""ThoughtScope command line: run a search, list strategies (later: eval, train, runs, export).

Usage: ``python cli.py run "Start with 17. Add 25. Multiply by 3. What is the result?" --strategy beam``.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from rich.tree import Tree as RichTree

from models.bundle import describe, load_models, prm_spec
from search import (
    Budget,
    ConfigError,
    EventKind,
    ProblemError,
    all_strategies,
    get_strategy,
    get_task,
    run_search,
)
from search.events import Event
from search.runner import SearchResult
from search.tree import ROOT_ID, Node, Tree

app = typer.Typer(help="ThoughtScope: grow, inspect and replay LLM reasoning trees.", no_args_is_help=True)
console = Console()


def _mount_subcommands() -> None:
    """Commands that live beside their code: `runs` (storage); `train`, `eval`, `sweep` (nano pack)."""
    from nano.cli import register
    from storage.cli import runs_app

    app.add_typer(runs_app, name="runs", help="List, show, rename, tag, delete, export and import saved runs.")
    register(app)


def parse_knobs(pairs: list[str], strategy: str) -> dict[str, Any]:
    """Turn ``key=value`` strings into typed knob values using the strategy's config defaults."""
    spec = get_strategy(strategy)
    defaults = {name: default for name, default, _ in spec.config_cls.knobs()}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ConfigError(f"knob {pair!r} must look like name=value (e.g. beam_width=4).")
        if key not in defaults:
            raise ConfigError(f"{strategy} has no knob {key!r}; see `python cli.py strategies`.")
        values[key] = _coerce(raw.strip(), defaults[key], key)
    return values


def _coerce(raw: str, default: Any, key: str) -> Any:
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if default is None:
            return None if raw.lower() == "none" else int(raw)
    except ValueError:
        raise ConfigError(f"knob {key}={raw!r} is not a valid {type(default).__name__}.") from None
    return raw


class ProgressSink:
    """Keeps a rich progress bar up to date from the event stream (never touches the search)."""

    def __init__(self, progress: Progress, task_id: Any, total: int | None):
        self.progress, self.task_id, self.total = progress, task_id, total

    def __call__(self, event: Event) -> None:
        if event.kind is EventKind.BUDGET:
            data = event.data
            self.progress.update(
                self.task_id,
                completed=data["nodes"] if self.total else 0,
                description=f"nodes {data['nodes']}  tokens {data['tokens_generated']}  calls {data['model_calls']}",
            )


@app.command()
def run(
    problem: Annotated[str, typer.Argument(help="The problem text (arith / countdown format, or free text).")],
    task: Annotated[str, typer.Option(help="arith, countdown or freeform.")] = "arith",
    strategy: Annotated[str, typer.Option(help="See `strategies`.")] = "beam",
    knob: Annotated[list[str] | None, typer.Option("--knob", "-k", help="Strategy knob name=value.")] = None,
    seed: Annotated[int, typer.Option(help="Search seed (same seed, same tree).")] = 0,
    reference: Annotated[str | None, typer.Option(help="Known answer, for grading.")] = None,
    policy: Annotated[str | None, typer.Option(help="Policy model: local dir or hub id.")] = None,
    prm: Annotated[str | None, typer.Option(help="Process reward model: local dir or hub id.")] = None,
    orm: Annotated[str | None, typer.Option(help="Optional outcome verifier (same loader as --prm).")] = None,
    prm_preset: Annotated[
        str, typer.Option(help="PRM input recipe: nano, nano-tag, math-shepherd, qwen-prm or head (see README).")
    ] = "nano",
    prm_kind: Annotated[
        str | None, typer.Option(help="Override: likelihood (step tokens), tag (label tokens) or head (classifier).")
    ] = None,
    step_tag: Annotated[str | None, typer.Option(help="Override: the PRM step tag (tag PRMs).")] = None,
    step_separator: Annotated[str | None, typer.Option(help="Override: text after each step / head marker.")] = None,
    good_token: Annotated[str | None, typer.Option(help="PRM 'good step' label token (tag PRMs).")] = None,
    bad_token: Annotated[str | None, typer.Option(help="PRM 'bad step' label token (tag PRMs).")] = None,
    device: Annotated[str | None, typer.Option(help="cuda, mps or cpu (default: best available).")] = None,
    trust_remote_code: Annotated[bool, typer.Option(help="Allow custom model code from the hub.")] = False,
    policy_url: Annotated[
        str | None,
        typer.Option(envvar="THOUGHTSCOPE_POLICY_URL", help="Inference server (vLLM/OpenAI) serving --policy."),
    ] = None,
    prm_url: Annotated[
        str | None,
        typer.Option(envvar="THOUGHTSCOPE_PRM_URL", help="Inference server serving --prm (and --orm)."),
    ] = None,
    max_nodes: Annotated[int | None, typer.Option(help="Budget: most tree nodes.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Budget: most generated tokens.")] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Budget: most wall seconds.")] = None,
    events_json: Annotated[Path | None, typer.Option(help="Write the event log here as JSON.")] = None,
    record: Annotated[bool, typer.Option(help="Save the run to the database while it runs.")] = True,
    db: Annotated[
        str | None,
        typer.Option(help="Database file or SQLAlchemy URL (default $THOUGHTSCOPE_DB or ./thoughtscope.db)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name for the saved run.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tags for the saved run (repeatable).")] = None,
) -> None:
    """Run one search and print the answer, the best path, the tree and the budget spent."""
    from storage import StorageError

    store = None
    try:
        # Cheap checks first: a typo should not wait for a 7B model to load.
        problem = get_task(task).validate(problem)
        config = get_strategy(strategy).make_config(parse_knobs(knob or [], strategy))
        budget = Budget(max_nodes=max_nodes, max_tokens=max_tokens, max_seconds=max_seconds)
        spec = prm_spec(
            prm_preset,
            kind=prm_kind,
            step_tag=step_tag,
            step_separator=step_separator,
            good_token=good_token,
            bad_token=bad_token,
        )
        store = _open_store(db) if record else None
        models = load_models(policy, prm, spec=spec, orm=orm, device=device, trust_remote_code=trust_remote_code,
                             policy_url=policy_url, prm_url=prm_url)
        recorder = store.recorder(name=name, tags=tag or (), models_info=describe(models)) if store else None
        sinks = [recorder] if recorder else []
        result = _run_with_progress(problem, task, strategy, models, config, budget, seed, reference, sinks)
        if recorder:
            recorder.close()
    except (ConfigError, ProblemError, StorageError, ValueError, OSError) as exc:
        console.print(Text.assemble(("error: ", "red"), str(exc)))
        raise typer.Exit(1) from None
    finally:
        if store:
            store.close()
    if events_json:
        events_json.write_text(json.dumps([e.to_json() for e in result.events], indent=1))
    print_result(result)
    if recorder:
        console.print(
            _line(
                "saved", f"run #{recorder.run_id} in {store.where}  (replay: python cli.py runs show {recorder.run_id})"
            )
        )
    if result.status == "failed":
        raise typer.Exit(1)


def _open_store(db: str | None):
    from storage import Store

    return Store.open(db)


def _run_with_progress(problem, task, strategy, models, config, budget, seed, reference, sinks) -> SearchResult:
    """Run with a progress bar; Ctrl-C sets the stop flag so the search ends as `cancelled`."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            total = budget.max_nodes
            task_id = progress.add_task("starting", total=total)
            return run_search(
                problem,
                task=task,
                strategy=strategy,
                models=models,
                config=config,
                budget=budget,
                seed=seed,
                reference=reference,
                sinks=[ProgressSink(progress, task_id, total), *sinks],
                stop=stop,
            )
    finally:
        signal.signal(signal.SIGINT, previous)


def print_result(result: SearchResult) -> None:
    tree = result.tree
    chosen = tree.chosen or {}
    verdict = {True: "correct", False: "wrong", None: "not checked"}[chosen.get("correct")]
    # Model text is printed as plain Text so rich never interprets markup inside it.
    console.print(_line("status", f"{result.status} ({tree.end_reason})"))
    console.print(_line("answer", f"{chosen.get('answer')}  [{verdict}] by {chosen.get('method')}"))
    if result.error:
        console.print(_line("error", result.error))
    if chosen.get("node") is not None:
        console.print(_line("best path", ""))
        for node in tree.path(chosen["node"])[1:]:
            console.print(Text(f"  {_score_text(node)}  {node.text}"))
    console.print(render_text_tree(tree))
    console.print(_line("budget", "  ".join(f"{key}={value}" for key, value in tree.budget.items())))


def _line(label: str, value: str) -> Text:
    return Text.assemble((label, "bold"), " ", value)


def _score_text(node: Node) -> str:
    prm = node.scores.get("prm")
    return f"prm={prm:.2f}" if prm is not None else "prm=  - "


def render_text_tree(tree: Tree, max_nodes: int = 80) -> RichTree:
    """A compact text tree: id, PRM score, visits, markers, step text (capped at max_nodes)."""
    root = RichTree(_line("problem", str(tree.meta.get("problem", ""))[:200]))
    shown = 0

    def add(parent_branch: RichTree, node_id: int) -> None:
        nonlocal shown
        for child in tree.children(node_id):
            if shown >= max_nodes:
                return
            shown += 1
            marks = "".join(
                mark
                for mark, on in (
                    (" ✓", child.correct is True),
                    (" ✗", child.correct is False),
                    (" ✂", child.pruned),
                )
                if on
            )
            visits = f" n={child.visits}" if child.visits else ""
            label = f"#{child.id} {_score_text(child)}{visits}{marks}  {child.text[:70]}"
            add(parent_branch.add(Text(label)), child.id)

    add(root, ROOT_ID)
    if shown < len(tree) - 1:
        root.add(f"... {len(tree) - 1 - shown} more nodes")
    return root


@app.command()
def strategies() -> None:
    """List every strategy, its knobs, their defaults and what they mean."""
    for name, spec in all_strategies().items():
        table = Table(title=f"{name}: {spec.summary}", title_justify="left", show_lines=False)
        table.add_column("knob")
        table.add_column("default")
        table.add_column("meaning")
        for knob_name, default, help_text in spec.config_cls.knobs():
            table.add_row(knob_name, repr(default), help_text)
        console.print(table)


@app.command()
def docs(
    write: Annotated[bool, typer.Option(help="Rewrite the generated sections of README.md in place.")] = False,
) -> None:
    """Print (or write into README.md) the strategy and event tables generated from the code."""
    from search.docs import refresh, strategies_markdown

    readme = Path(__file__).resolve().parent / "README.md"
    if write:
        readme.write_text(refresh(readme.read_text()))
        console.print(f"refreshed {readme}")
    else:
        print(strategies_markdown())


_mount_subcommands()

if __name__ == "__main__":
    app()
