"""The run list and its actions, as pure functions the Runs page draws (no Streamlit here).

Rows: one per saved run (`storage.RunSummary`) with the date, name, problem, strategy, status,
answer and whether it was correct.  Actions: tags typed as text, links that open a run (or one
moment of its replay) in another browser, export files, and whether a run may be deleted now.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from reasoning_viz.runinfo import status_word

PROBLEM_CHARS = 70

#: What the "result" column says for RunSummary.correct = True / False / None.
VERDICTS = {True: "✓ correct", False: "✗ wrong", None: "— not checked"}


class RunLike(Protocol):
    """The fields of `storage.RunSummary` a listing reads."""

    id: int
    created: datetime
    name: str | None
    tags: tuple[str, ...]
    task: str
    problem: str
    strategy: str
    status: str
    answer: str | None
    correct: bool | None
    node_count: int
    event_count: int
    #: why the run ended (a budget, completion); absent on older callers' rows
    end_reason: str | None


def verdict(correct: bool | None, status: str = "finished") -> str:
    """'✓ correct', '✗ wrong' or '— not checked'; a run that has not finished has no verdict yet."""
    if status == "running":
        return "… running"
    return VERDICTS[correct]


def short_problem(problem: str, limit: int = PROBLEM_CHARS) -> str:
    """The problem on one line, cut to `limit` characters with an ellipsis."""
    line = " ".join(problem.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def when(created: datetime) -> str:
    """A run's start as 'YYYY-MM-DD HH:MM' in UTC (stored times are UTC; the column says so)."""
    return created.strftime("%Y-%m-%d %H:%M")


def run_rows(runs: Iterable[RunLike]) -> list[dict[str, Any]]:
    """One table row per run, newest first as given: the columns the Runs page shows."""
    return [
        {  # what a person scans for first comes first: at laptop widths the right-hand columns scroll
            "run": run.id,
            "result": verdict(run.correct, run.status),
            "status": status_word(run.status, run.end_reason),
            "strategy": run.strategy,
            "answer": run.answer if run.answer is not None else "",
            "nodes": run.node_count,
            "task": run.task,
            "problem": short_problem(run.problem),
            "name": run.name or "",
            "date (UTC)": when(run.created),
            "tags": ", ".join(run.tags),
        }
        for run in runs
    ]


def run_label(run: RunLike) -> str:
    """'#12 · beam · arith · ✓ correct · my name' for pickers."""
    parts = [f"#{run.id}", run.strategy, run.task, verdict(run.correct, run.status)]
    stop = status_word(run.status, run.end_reason)
    if stop.startswith("stopped"):
        parts.insert(3, stop)
    if run.name:
        parts.append(short_problem(run.name, 40))
    return " · ".join(parts)


def parse_tags(text: str) -> list[str]:
    """Tags typed as 'a, b c' -> ['a', 'b c']: comma-separated, trimmed, empty ones and repeats dropped."""
    out: list[str] = []
    for tag in text.split(","):
        tag = tag.strip()
        if tag and tag not in out:
            out.append(tag)
    return out


def tag_changes(have: Sequence[str], text: str) -> tuple[list[str], list[str]]:
    """(to add, to remove) that turn the tags `have` into the ones typed in `text`."""
    wanted = parse_tags(text)
    return [t for t in wanted if t not in have], [t for t in have if t not in wanted]


def base_url(page_url: str | None) -> str:
    """'http://host:port' of the page's own URL ('' when unknown: links are then relative)."""
    if not page_url:
        return ""
    parts = urlsplit(page_url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def run_link(base: str, run_id: int, *, event: int | None = None) -> str:
    """A link that opens a saved run: its tree on the Search page, or with `event` the Replay page
    at that moment (the tree after that many events)."""
    if event is None:
        return f"{base}/?{urlencode({'run': run_id})}"
    return f"{base}/replay?{urlencode({'run': run_id, 'event': event})}"


@dataclass(frozen=True)
class ExportFile:
    """One download: file name, bytes, MIME type and a line on reading it (the button's help)."""

    name: str
    data: bytes
    mime: str
    help: str = ""


#: How an export's event `seq` relates to the event numbers the app shows.
EVENT_NUMBERING = (
    "Versioned JSON, importable with `cli.py runs import`. Its events' `seq` counts from 0; the app "
    "numbers events from 1 (tables, Replay's slider and `?event=`), so event #n here is `seq` n − 1."
)


def export_files(store: Any, run_id: int) -> list[ExportFile]:
    """The run as JSON (storage's versioned export, importable with `runs import`) and as GraphML
    (its final tree, for Gephi / networkx / igraph).  Raises StorageError like the store does."""
    document = json.dumps(store.export_json(run_id), indent=1, ensure_ascii=False).encode()
    graph = store.export_graph(run_id, "graphml").encode()
    return [
        ExportFile(f"thoughtscope-run-{run_id}.json", document, "application/json", EVENT_NUMBERING),
        ExportFile(f"thoughtscope-run-{run_id}.graphml", graph, "application/graphml+xml",
                   "The final tree: one GraphML node per search node, with its scores, visits and text."),
    ]


def delete_refusal(run: RunLike, running_ids: Iterable[int]) -> str | None:
    """Why this run may not be deleted now (None: it may): a search still recording into it
    would lose its rows mid-run.  Stop it first."""
    if run.id in set(running_ids) or run.status == "running":
        return f"Run {run.id} is still running; stop it on the Search page before deleting it."
    return None
