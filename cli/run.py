"""``run``, ``strategies`` and ``docs``: one search from the command line, and what can be asked of it.

Usage: ``python cli.py run "Start with 17. Add 25. Multiply by 3. What is the result?" --strategy beam``.
"""

from __future__ import annotations

import json
import signal
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.padding import Padding
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from cli.common import DbOption, Device, console, echo_lines, render_tree, score_text
from models.bundle import PRM_PRESETS
from models.prompting import CHAT_TEMPLATE_MODES
from models.specs import PRM_KINDS
from search import Budget, EventKind, all_strategies
from search.config import split_pairs
from search.events import Event
from search.presets import PRESETS, resolve
from search.request import LaunchedRun, ModelChoice, Recording, RunRequest, launch
from search.runner import SearchResult
from search.tasks import TASKS

#: The step presets (for --prm) and the outcome presets (for --orm), named from the one table.
STEP_PRESETS = tuple(name for name, spec in PRM_PRESETS.items() if not spec.outcome)
OUTCOME_PRESETS = tuple(name for name, spec in PRM_PRESETS.items() if spec.outcome)


class ProgressSink:
    """Keeps a rich progress bar up to date from the event stream (never touches the search)."""

    def __init__(self, progress: Progress, task_id: Any, total: int | None):
        self.progress, self.task_id, self.total = progress, task_id, total

    def __call__(self, event: Event) -> None:
        if event.kind is EventKind.SPEND:
            data = event.data
            self.progress.update(
                self.task_id,
                completed=data["nodes"] if self.total else 0,
                description=f"nodes {data['nodes']}  tokens {data['tokens_generated']}  calls {data['model_calls']}",
            )


def run(
    problem: Annotated[str, typer.Argument(help="The problem text (arith / countdown format, or free text).")],
    task: Annotated[str | None, typer.Option(help=f"{', '.join(TASKS)} (default: the preset's, else arith).")] = None,
    strategy: Annotated[
        str | None, typer.Option(help="See `strategies` (default: the preset's, else beam).")
    ] = None,
    knob: Annotated[list[str] | None, typer.Option("--knob", "-k", help="Strategy knob name=value.")] = None,
    preset: Annotated[
        str | None,
        typer.Option(help=f"Named setting (task, strategy, knobs, models): {', '.join(PRESETS)}; options win."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Search seed (same seed, same tree).")] = 0,
    reference: Annotated[str | None, typer.Option(help="Known answer, for grading.")] = None,
    policy: Annotated[str | None, typer.Option(help="Policy model: local dir or hub id.")] = None,
    prm: Annotated[str | None, typer.Option(help="Process reward model: local dir or hub id.")] = None,
    orm: Annotated[str | None, typer.Option(help="Optional outcome verifier (same loader as --prm).")] = None,
    prm_preset: Annotated[
        str | None,
        typer.Option(
            help=f"PRM input recipe: {', '.join(STEP_PRESETS)}, or a JSON/YAML spec file (see README); "
            "default: the preset's, else nano."
        ),
    ] = None,
    orm_preset: Annotated[
        str | None,
        typer.Option(
            help=f"How --orm is read: {', '.join(OUTCOME_PRESETS)}, a spec file or a PRM preset "
            "(default: --prm-preset)."
        ),
    ] = None,
    prm_kind: Annotated[
        str | None, typer.Option(help=f"Override the preset's kind: {', '.join(PRM_KINDS)} (see README).")
    ] = None,
    step_tag: Annotated[str | None, typer.Option(help="Override: the PRM step tag (tag PRMs).")] = None,
    step_separator: Annotated[str | None, typer.Option(help="Override: text after each step / head marker.")] = None,
    good_token: Annotated[str | None, typer.Option(help="PRM 'good step' label token (tag PRMs).")] = None,
    bad_token: Annotated[str | None, typer.Option(help="PRM 'bad step' label token (tag PRMs).")] = None,
    device: Device = None,
    trust_remote_code: Annotated[bool, typer.Option(help="Allow custom model code from the hub.")] = False,
    policy_url: Annotated[
        str | None,
        typer.Option(envvar="THOUGHTSCOPE_POLICY_URL", help="Inference server (vLLM/OpenAI) serving --policy."),
    ] = None,
    prm_url: Annotated[
        str | None,
        typer.Option(envvar="THOUGHTSCOPE_PRM_URL", help="Inference server serving --prm."),
    ] = None,
    orm_url: Annotated[
        str | None,
        typer.Option(envvar="THOUGHTSCOPE_ORM_URL", help="Inference server (vLLM --runner pooling) serving --orm "
                     "(default: --prm-url)."),
    ] = None,
    chat_template: Annotated[
        str,
        typer.Option(
            help=f"Policy prompts through its chat template: {' / '.join(CHAT_TEMPLATE_MODES)} "
            "(auto: when it has one)."
        ),
    ] = "auto",
    system_prompt: Annotated[
        str | None, typer.Option(help="Chat system prompt (default: the model card's where known).")
    ] = None,
    max_nodes: Annotated[int | None, typer.Option(help="Budget: most tree nodes.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Budget: most generated tokens.")] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Budget: most wall seconds.")] = None,
    events_json: Annotated[Path | None, typer.Option(help="Write the event log here as JSON.")] = None,
    record: Annotated[bool, typer.Option(help="Save the run to the database while it runs.")] = True,
    db: DbOption = None,
    name: Annotated[str | None, typer.Option(help="A name for the saved run.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tags for the saved run (repeatable).")] = None,
) -> None:
    """Run one search and print the answer, the best path, the tree and what it spent."""
    from models.bundle import TransformersLoader

    prm_options = {"kind": prm_kind, "step_tag": step_tag, "step_separator": step_separator}
    prm_options |= {"good_token": good_token, "bad_token": bad_token}
    setup = resolve(preset, task=task, strategy=strategy, knobs=split_pairs(knob), policy=policy, prm=prm,
                    prm_preset=prm_preset)
    request = RunRequest(
        problem,
        task=setup.task,
        strategy=setup.strategy,
        knobs=setup.knobs,
        reference=reference,
        budget=Budget(max_nodes=max_nodes, max_tokens=max_tokens, max_seconds=max_seconds),
        seed=seed,
        models=ModelChoice(
            setup.policy,
            setup.prm,
            orm,
            setup.prm_preset,
            prm_options,
            device,
            trust_remote_code,
            orm_preset=orm_preset,
            chat_template=chat_template,
            system_prompt=system_prompt,
            policy_url=policy_url,
            prm_url=prm_url,
            orm_url=orm_url,
        ),
        recording=Recording(enabled=record, name=name, tags=tuple(tag or ())),
    )
    opened: list[Any] = []
    with ExitStack() as stack:

        def open_store():
            from storage import Store

            opened.append(stack.enter_context(Store.open(db)))
            return opened[-1]

        launched = launch(request, loader=TransformersLoader(), open_store=open_store)
        result = _run_with_progress(launched, request.budget)
    if events_json:
        events_json.write_text(json.dumps([e.to_json() for e in result.events], indent=1))
    print_result(result)
    if launched.recorder is not None:
        run_id = launched.recorder.run_id
        # one line each, never wrapped by rich: a command cut in two at 80 columns cannot be copied
        console.print(_line("saved", f"run #{run_id} in {opened[0].where}"), soft_wrap=True)
        console.print(_line("replay", f"python cli.py runs show {run_id}"), soft_wrap=True)
    if result.status == "failed":
        raise typer.Exit(1)


def _run_with_progress(launched: LaunchedRun, budget: Budget) -> SearchResult:
    """Run with a progress bar; Ctrl-C sets the stop flag so the search ends as `cancelled`."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            total = budget.max_nodes
            task_id = progress.add_task("starting", total=total)
            return launched.run([ProgressSink(progress, task_id, total)], stop)
    finally:
        signal.signal(signal.SIGINT, previous)


def print_result(result: SearchResult, max_nodes: int = 80) -> None:
    """Status, answer, best path, the tree (`cli.common.render_tree`) and what the search spent."""
    tree = result.tree
    chosen = tree.chosen or {}
    verdict = {True: "correct", False: "wrong", None: "not checked"}[chosen.get("correct")]
    # Model text is printed as plain Text so rich never interprets markup inside it.
    console.print(_line("status", f"{result.status} ({tree.end_reason})"))
    answer = chosen.get("answer")
    shown = "(no answer)" if answer is None else answer
    console.print(_line("answer", f"{shown}  [{verdict}] by {chosen.get('method')}"))
    if result.error:
        console.print(_line("error", result.error), soft_wrap=True)
    if tree.unscored:
        console.print(_line("unscored", f"{tree.unscored} NaN/infinite model number(s) refused (on_bad_number)"))
    if chosen.get("node") is not None:
        console.print(_line("best path", ""))
        for node in tree.path(chosen["node"])[1:]:
            console.print(Text(f"  {score_text(node)}  {node.text}"))
    echo_lines(render_tree(tree, max_nodes=max_nodes, hint="see them all: python cli.py runs show ID"))
    console.print(_line("spent", "  ".join(f"{key}={value}" for key, value in tree.spend.items())))


def _line(label: str, value: str) -> Text:
    return Text.assemble((label, "bold"), " ", value)


def strategies() -> None:
    """List every strategy, its knobs, their defaults, the values they accept and what they mean."""
    for name, spec in all_strategies().items():
        cls = spec.config_cls
        table = Table(title=f"{name}: {spec.summary}", title_justify="left", show_lines=False)
        for column in ("knob", "default", "values", "meaning"):
            table.add_column(column)
        for knob_name, default, help_text in cls.knobs():
            kind = cls.knob_types()[knob_name]
            choices = cls.knob_choices(knob_name)
            values = ", ".join(choices) if choices else kind.base.__name__
            table.add_row(knob_name, repr(default), f"{values} or None" if kind.optional else values, help_text)
        console.print(table)


def presets() -> None:
    """List the named settings (`--preset` of run and eval, the app's Preset menu): task, strategy, knobs, models."""
    console.print("[bold]presets[/bold] (options given beside --preset win)")
    for name, spec in PRESETS.items():
        block = Table.grid(padding=(0, 2))
        block.add_column(no_wrap=True, style="dim")
        block.add_column(overflow="fold")
        block.add_row("", spec.summary)
        block.add_row("knobs", " ".join(f"{k}={v}" for k, v in spec.knobs.items()) or "(the strategy's defaults)")
        block.add_row("policy", spec.policy or "the bundled nano policy")
        block.add_row("prm", f"{spec.prm or 'the bundled nano PRM'} (read as {spec.prm_preset})")
        console.print()
        console.print(Text.assemble((name, "bold"), f"  {spec.task} · {spec.strategy}"))
        console.print(Padding(block, (0, 0, 0, 2)))


def docs(
    write: Annotated[bool, typer.Option(help="Rewrite the generated sections of README.md in place.")] = False,
) -> None:
    """Print (or write into README.md) the strategy and event tables generated from the code."""
    from search.docs import all_sections, refresh

    readme = Path(__file__).resolve().parents[1] / "README.md"
    if write:
        readme.write_text(refresh(readme.read_text()))
        console.print(f"refreshed {readme}")
    else:
        print(all_sections())
