"""What every command shares: one error style, one text-tree renderer, one table printer.

Errors: bad input (an unknown knob, a missing file or model, an impossible budget, a corrupt
database) ends in one red ``error: ...`` line on standard error and exit code 1, never a
traceback.  Every such error is a ValueError (ConfigError, ProblemError, ModelLoadError), an
OSError or a StorageError.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from models.specs import DEVICE_CHOICES
from search.context import recomputed
from search.tree import ROOT_ID, Node, Tree

console = Console()
errors = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database file or SQLAlchemy URL (default: $THOUGHTSCOPE_DB or ./thoughtscope.db)."),
]
Device = Annotated[
    str | None, typer.Option(help=f"{', '.join(DEVICE_CHOICES)} (default: auto, the best available).")
]


def fail(message: str) -> NoReturn:
    """Print ``error: message`` in red on standard error and exit with code 1."""
    errors.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
    raise typer.Exit(1)


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types whose message is written for the user (imported late: storage is optional)."""
    from storage.errors import StorageError

    return (ValueError, OSError, StorageError)


def clear_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Wrap a command so user errors become `fail(message)`; `functools.wraps` keeps typer's options."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except user_errors() as exc:
            fail(str(exc))

    return run


def cut(text: str, limit: int) -> str:
    """One line of at most `limit` characters (whitespace folded, an ellipsis when cut)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def score_text(node: Node) -> str:
    prm = node.scores.get("prm")
    return f"prm {prm:.2f}" if prm is not None else "prm  -  "


def self_eval_text(node: Node) -> tuple[str, str]:
    """What the node's self-evaluation adds to its line: (`` self 0.83``, "") when the policy was asked,
    (`` recheck ✗``, ``  [policy: 6 - 11 = -5 (left: -5 3 9)]``) when its recomputation disagreed
    (self_check=recompute; an agreeing recheck adds nothing; ``  [doubted: a token at p 0.03]`` when
    doubt_below failed it); ("", "") without one."""
    judged = node.self_eval
    if not judged:
        return "", ""
    rewrite = recomputed(judged)
    if rewrite is None:
        return f" self {judged['p_yes']:.2f}", ""
    if judged["p_yes"] >= 0.5:
        return "", ""
    if judged.get("doubt") is not None:
        return " recheck ✗", f"  [doubted: a token at p {judged['doubt']:.2f}]"
    return " recheck ✗", f"  [policy: {cut(rewrite, 60)}]"


def node_label(node: Node, chosen: int | None) -> str:
    """``#id prm 0.93 visits=4 ✓ ★  step text``.

    Markers: ✓ correct answer, ✗ wrong answer, ■ terminal (not checked), ✂ pruned,
    ★ the node whose answer was chosen; ``self 0.83`` the policy's P(yes) for its own step, ``recheck ✗``
    a step the policy's recomputation did not repeat (its rewrite follows the step text).
    """
    judged, rewrite = self_eval_text(node)
    visits = f" visits={node.visits}" if node.visits else ""
    marks = "".join(
        mark
        for mark, on in (
            (" ✓", node.correct is True),
            (" ✗", node.correct is False),
            (" ■", node.terminal and node.correct is None),
            (" ✂", node.pruned),
            (" ★", node.id == chosen),
        )
        if on
    )
    return f"#{node.id} {score_text(node)}{judged}{visits}{marks}  {cut(node.text, 90)}{rewrite}"


def render_tree(tree: Tree, *, max_nodes: int = 300, hint: str = "raise --max-nodes") -> list[str]:
    """One line per node, indented by depth (see `node_label`), at most `max_nodes` nodes."""
    if ROOT_ID not in tree.nodes:
        return ["(no tree: the run has no events)"]
    chosen = (tree.chosen or {}).get("node")
    lines = [f"#0 problem: {cut(str(tree.meta.get('problem', '')), 100)}"]
    stack = list(reversed(tree.nodes[ROOT_ID].children))
    while stack and len(lines) <= max_nodes:
        node = tree.nodes[stack.pop()]
        lines.append("  " * node.depth + node_label(node, chosen))
        stack.extend(reversed(node.children))
    hidden = len(tree) - len(lines)
    if hidden > 0:
        lines.append(f"... {hidden} more nodes ({hint})")
    return lines


def echo_lines(lines: Sequence[str]) -> None:
    """Plain text (never rich markup: model text may contain brackets)."""
    for line in lines:
        typer.echo(line)


def print_rows(title: str, rows: list[dict]) -> None:
    """A table of rows; a single row is printed as name/value pairs so no header is cut to "accur…"."""
    if not rows:
        return
    table = Table(title=title)
    if len(rows) == 1:
        table.add_column("measure")
        table.add_column("value", justify="right")
        for key, value in rows[0].items():
            table.add_row(str(key), _cell(value))
    else:
        for key in rows[0]:
            table.add_column(str(key))
        for row in rows:
            table.add_row(*[_cell(v) for v in row.values()])
    console.print(table)


def _cell(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
