"""``runs`` commands: list, show, rename, tag, delete, export and import recorded runs.

Every command takes ``--db`` (a path or SQLAlchemy URL; default ``$THOUGHTSCOPE_DB`` or
``./thoughtscope.db``) and turns a StorageError into one red line and exit code 1 (`cli.common.fail`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from cli.common import DbOption, cut, echo_lines, errors, fail, render_tree
from reasoning_viz.runinfo import status_word
from search.request import CHOICE_KEY
from storage import RunSummary, Store
from storage.errors import StorageError
from storage.exchange import GRAPH_FORMATS
from storage.schema import RUN_STATUSES

runs_app = typer.Typer(
    help="Recorded runs: list, show, rename, tag, delete, export and import.",
    no_args_is_help=True,
)
RunId = Annotated[int, typer.Argument(help="Run id (see `runs list`).")]
EXPORT_FORMATS = ("json", *GRAPH_FORMATS)


@contextmanager
def _store(db: str | None) -> Iterator[Store]:
    """Open the store; any StorageError becomes a one-line error and exit code 1."""
    try:
        store = Store.open(db)
    except StorageError as exc:
        fail(str(exc))
    try:
        yield store
    except StorageError as exc:
        fail(str(exc))
    finally:
        store.close()


# ---------------------------------------------------------------------- list
@runs_app.command("list")
def list_runs(
    db: DbOption = None,
    task: Annotated[str | None, typer.Option(help="Only this task (arith, countdown, ...).")] = None,
    strategy: Annotated[str | None, typer.Option(help="Only this strategy.")] = None,
    status: Annotated[
        str | None, typer.Option(help=f"{', '.join(RUN_STATUSES)}.")
    ] = None,
    correct: Annotated[
        bool | None, typer.Option("--correct/--wrong", help="Only runs whose answer was right / wrong.")
    ] = None,
    text: Annotated[str | None, typer.Option(help="Text in the name, problem, answer or a tag.")] = None,
    since: Annotated[str | None, typer.Option(help="Created at or after (ISO date/time, local).")] = None,
    until: Annotated[
        str | None, typer.Option(help="Created at or before (ISO date/time; a date includes the day).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many runs.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List recorded runs, newest first."""
    with _store(db) as store:
        runs = store.list_runs(
            task=task,
            strategy=strategy,
            status=status,
            correct=correct,
            text=text,
            since=since,
            until=until,
            limit=limit,
        )
    if as_json:
        typer.echo(json.dumps([run.to_json() for run in runs], indent=1))
        return
    if not runs:
        typer.echo("no runs match.")
        return
    echo_lines(runs_lines(runs))


def runs_lines(runs: list[RunSummary]) -> list[str]:
    """Fixed-width lines (plain text: robust in narrow terminals, pipes and tests)."""
    id_width = max(2, *(len(str(run.id)) for run in runs))
    header = f"{'id':>{id_width}}  created      {'status':<21}  ok  answer      events  task/strategy        "
    header += "name [tags]"
    lines = [header]
    for run in runs:
        answer = cut(str(run.answer), 10) if run.answer is not None else "-"
        tags = f" [{', '.join(run.tags)}]" if run.tags else ""
        status = status_word(run.status, run.end_reason)  # "stopped · node budget", as the app says
        lines.append(
            f"{run.id:>{id_width}}  {_local(run.created, '%m-%d %H:%M'):<11}  {status:<21}  "
            f"{_mark(run.correct):<2}  "
            f"{answer:<10}  {run.event_count:>6}  {cut(f'{run.task}/{run.strategy}', 19):<19}  "
            f"{cut(run.name or '', 40)}{tags}"
        )
    return lines


# ---------------------------------------------------------------------- show
@runs_app.command("show")
def show(
    run_id: RunId,
    db: DbOption = None,
    max_nodes: Annotated[int, typer.Option(help="Print at most this many nodes.")] = 300,
) -> None:
    """Show a run's metadata and its tree (indent = depth; prm score, visits and markers per node)."""
    with _store(db) as store:
        run = store.get_run(run_id)
        tree = store.tree(run_id)
    echo_lines([*run_header(run), "", *render_tree(tree, max_nodes=max_nodes)])


def run_header(run: RunSummary) -> list[str]:
    models = ", ".join(
        f"{role}={info.get('name')}" + (f" ({info['path']})" if info.get("path") else "")
        for role, info in run.models.items()
        if isinstance(info, dict) and role != CHOICE_KEY
    )
    lines = [
        f"run {run.id}" + (f": {run.name}" if run.name else ""),
        f"  created   {_local(run.created)}" + (f"   tags: {', '.join(run.tags)}" if run.tags else ""),
        f"  problem   {run.problem}",
        f"  task      {run.task}   strategy {run.strategy}   seed {run.seed}",
        f"  config    {json.dumps(run.config, sort_keys=True)}",
        f"  models    {models or '-'}",
        f"  status    {run.status}" + (f" ({run.end_reason})" if run.end_reason else ""),
        f"  answer    {run.answer if run.answer is not None else '-'}   [{_verdict(run.correct)}]"
        + (f"   reference {run.reference}" if run.reference is not None else ""),
        "  spent     " + ("  ".join(f"{k}={v}" for k, v in (run.spend or {}).items()) or "-"),
        f"  events    {run.event_count}   nodes {run.node_count}",
    ]
    if run.error:
        lines.append(f"  error     {run.error}")
    return lines


# ---------------------------------------------------------------------- edit
@runs_app.command("rename")
def rename(
    run_id: RunId, name: Annotated[str, typer.Argument(help="New name ('' clears it).")], db: DbOption = None
) -> None:
    """Give a run a name."""
    with _store(db) as store:
        store.rename(run_id, name)
    typer.echo(f"run {run_id} renamed to {name!r}.")


@runs_app.command("tag")
def tag(
    run_id: RunId,
    add: Annotated[list[str] | None, typer.Option("--add", help="Tag to add (repeatable).")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="Tag to remove (repeatable).")] = None,
    db: DbOption = None,
) -> None:
    """Add or remove tags."""
    with _store(db) as store:
        tags = store.tag(run_id, add=add or [], remove=remove or [])
    typer.echo(f"run {run_id} tags: {', '.join(tags) or '(none)'}")


@runs_app.command("delete")
def delete(
    run_id: RunId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: DbOption = None,
) -> None:
    """Delete a run with its events and nodes."""
    with _store(db) as store:
        run = store.get_run(run_id)
        label = f"run {run.id}" + (f" ({run.name})" if run.name else "")
        if not yes and not typer.confirm(f"Delete {label} and its {run.event_count} events?"):
            fail("not deleted.")
        store.delete(run_id)
    typer.echo(f"deleted {label}.")


# ---------------------------------------------------------------------- export / import
@runs_app.command("export")
def export(
    run_id: RunId,
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"{', '.join(EXPORT_FORMATS)}.")] = "json",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here instead of standard output.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Export a run: its events as versioned JSON, or its tree as GraphML / node-link JSON."""
    if fmt not in EXPORT_FORMATS:
        fail(f"--format must be one of {', '.join(EXPORT_FORMATS)} (got {fmt!r}).")
    with _store(db) as store:
        if fmt == "json":
            payload = json.dumps(store.export_json(run_id), indent=1, ensure_ascii=False) + "\n"
        else:
            payload = store.export_graph(run_id, fmt)
    _emit(payload, out, f"run {run_id} exported as {fmt}")


def _emit(payload: str, out: Path | None, done: str) -> None:
    if out is None:
        typer.echo(payload, nl=False)
        return
    try:
        out.write_text(payload, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    errors.print(f"{done} to {out}.")


@runs_app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="JSON files written by `runs export --format json`.")],
    db: DbOption = None,
) -> None:
    """Import exported runs as new runs: every file is checked first (one bad file: nothing is
    imported, and every bad file is named); then each goes in on its own."""
    from storage.exchange import import_files

    with _store(db) as store:
        results = import_files(store, files)
    for file, run_id, error in results:
        typer.echo(f"imported {file} as run {run_id}." if error is None else f"could not import {file}: {error}")
    if any(error for _, _, error in results):
        raise typer.Exit(1)


# ---------------------------------------------------------------------- small helpers
def _local(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return moment.astimezone().strftime(fmt) if moment else "-"


def _mark(correct: bool | None) -> str:
    return {True: "✓", False: "✗", None: "-"}[correct]


def _verdict(correct: bool | None) -> str:
    return {True: "correct", False: "wrong", None: "not checked"}[correct]
