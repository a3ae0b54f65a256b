"""The Scaling page's logic: a sweep's settings, its saved record, the accuracy-vs-tokens figure and
the runs behind a point (pure functions; the page only draws what they return).

A sweep is `search.evaluate.run_sweep` — the engine of the CLI's `sweep`, not a copy — run by the
app with every search recorded (`reasoning_viz.sweep_job`).  What it saved lives in the run database:
a `sweeps` row whose `meta` holds the settings, the status and the finished points (each with the
ids of its runs, one per problem, in problem order), and the runs themselves, which carry the
sweep's id and open in Replay.  The plot is the test-time compute plot of Snell et al. 2024
("Scaling LLM test-time compute optimally…", accuracy against generated tokens per strategy).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import plotly.graph_objects as go

from reasoning_viz.runinfo import answer_label
from search.config import ConfigError
from search.evaluate import SweepPoint, sweep_plan, sweep_series
from search.tasks import GENERATING_TASKS
from search.tasks.base import Problem

#: Small enough to finish in a minute or two on the nano pack on a laptop CPU.
DEFAULT_SPECS: tuple[str, ...] = ("greedy", "self_consistency", "best_of_n")
DEFAULT_SIZES: tuple[int, ...] = (1, 4)
DEFAULT_PROBLEMS = 3
MAX_PROBLEMS = 500
MAX_SIZE = 1024
MAX_RUNS = 5000
#: Sweep statuses: `running` while its job runs; `interrupted` when a sweep saved as running has no
#: job in this server (the server stopped mid-sweep).
STATUSES = ("running", "finished", "stopped", "failed", "interrupted")


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"1, 4,16"`` -> (1, 4, 16).  Raises ConfigError naming the bad part (not a whole number,
    below 1, above MAX_SIZE) or when there is none."""
    sizes: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        if not part.isdigit() or not 1 <= int(part) <= MAX_SIZE:
            raise ConfigError(f"Sizes are whole numbers from 1 to {MAX_SIZE}, comma-separated (got {part!r}).")
        if int(part) not in sizes:
            sizes.append(int(part))
    if not sizes:
        raise ConfigError("Give at least one size, e.g. 1,4.")
    return tuple(sizes)


def parse_specs(picked: Sequence[str], extra: str = "") -> tuple[str, ...]:
    """The strategy specs: the picked ones, then one per non-empty line of `extra`
    (``strategy`` or ``strategy:knob=value,...``); repeats dropped, order kept."""
    lines = [line.strip() for line in str(extra).splitlines()]
    return tuple(dict.fromkeys(spec for spec in [*picked, *lines] if spec))


@dataclass(frozen=True)
class SweepSettings:
    """What a person asked for: held-out problems of `task` (`problems` of them from the generator
    stream `seed`), each spec at each size (`search.evaluate.sweep_plan`)."""

    task: str = "arith"
    specs: tuple[str, ...] = DEFAULT_SPECS
    sizes: tuple[int, ...] = DEFAULT_SIZES
    problems: int = DEFAULT_PROBLEMS
    seed: int = 0

    def plan(self) -> list[SweepPoint]:
        """The points in run order.  Raises ConfigError for an unknown task, no spec, a bad spec or
        knob, a problem count outside 1..MAX_PROBLEMS, or more than MAX_RUNS searches in all."""
        if self.task not in GENERATING_TASKS:
            raise ConfigError(f"Task must be one of {', '.join(GENERATING_TASKS)} (got {self.task!r}).")
        if not self.specs:
            raise ConfigError("Pick at least one strategy.")
        if not self.sizes:
            raise ConfigError("Give at least one size, e.g. 1,4.")
        if not 1 <= self.problems <= MAX_PROBLEMS:
            raise ConfigError(f"Problems must be from 1 to {MAX_PROBLEMS} (got {self.problems}).")
        plan = sweep_plan(self.specs, self.sizes)
        if len(plan) * self.problems > MAX_RUNS:
            raise ConfigError(f"{len(plan)} points × {self.problems} problems is {len(plan) * self.problems} "
                              f"searches; at most {MAX_RUNS} in one sweep.")
        return plan

    def title(self) -> str:
        """The sweep's name in the saved-sweep list."""
        sizes = ",".join(map(str, self.sizes))
        return f"{self.task} × {self.problems} problems · {', '.join(self.specs)} · sizes {sizes} · seed {self.seed}"


def new_meta(settings: SweepSettings, plan: Sequence[SweepPoint], problems: Sequence[Problem],
             models: Mapping[str, Any]) -> dict[str, Any]:
    """A new sweep's saved record: settings, plan size, problems, models, status `running`, no points."""
    return {
        "settings": {**asdict(settings), "specs": list(settings.specs), "sizes": list(settings.sizes)},
        "planned_points": len(plan),
        "planned_runs": len(plan) * len(problems),
        "problems": [{"problem": p.text, "reference": p.answer} for p in problems],
        "models": dict(models),
        "status": "running",
        "error": None,
        "points": [],
    }


def sweep_status(meta: Mapping[str, Any], job_running: bool) -> tuple[str, str]:
    """(status, sentence) of a saved sweep; `job_running`: whether this server runs it now."""
    status = meta.get("status", "finished")
    done, planned = len(meta.get("points", [])), meta.get("planned_points", 0)
    if status == "running" and not job_running:
        return "interrupted", (f"The app stopped while this sweep ran: {done} of {planned} points were saved; "
                               "the runs it recorded are in the Runs page.")
    if status == "stopped":
        return status, (f"Stopped: {done} of {planned} points finished. The unfinished point is not plotted "
                        "(it did not cover every problem); its runs are in the Runs page.")
    if status == "failed":
        return status, f"The sweep failed after {done} of {planned} points: {meta.get('error')}"
    if status == "running":
        return status, f"{done} of {planned} points finished."
    return status, f"{done} points, each over {len(meta.get('problems', []))} problems."


def progress_line(done_runs: int, total_runs: int, current: str) -> tuple[float, str]:
    """The progress bar's fraction and text: searches finished of all, and the point in flight."""
    fraction = min(1.0, done_runs / total_runs) if total_runs else 0.0
    return fraction, f"{done_runs} of {total_runs} searches · now {current}" if current else \
        f"{done_runs} of {total_runs} searches"


def point_label(point: Mapping[str, Any]) -> str:
    """``best_of_n @ 4: 2/3 correct, 205 tokens/problem``."""
    correct = round(point["accuracy"] * point["problems"])
    return (f"{point['spec']} @ {point['size']}: {correct}/{point['problems']} correct, "
            f"{point['mean_tokens']:.0f} tokens/problem")


#: One marker shape per strategy line, so lines that share points stay told apart.
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "star", "hexagon", "triangle-down")
#: How far (a factor on the log token axis) a point is moved right per earlier line already there.
DODGE = 1.07


def dodge(xs: Sequence[float], ys: Sequence[float], seen: dict[tuple[float, float], int]) -> list[float]:
    """x positions for one line, each moved right by DODGE per earlier line with a point at the same
    (x, y), so a line hidden under another (self-consistency and best-of-N often tie) stays visible
    and clickable.  `seen` counts the points drawn so far and is updated.  Hovers keep the true
    tokens (the point's label)."""
    out = []
    for x, y in zip(xs, ys, strict=True):
        key = (round(float(x), 6), round(float(y), 6))
        out.append(float(x) * DODGE ** seen.get(key, 0))
        seen[key] = seen.get(key, 0) + 1
    return out


def sweep_figure(points: Sequence[Mapping[str, Any]], selected: int | None = None,
                 title: str | None = None) -> go.Figure:
    """Accuracy against mean generated tokens per problem (log x), one line per spec (as the CLI's
    `sweep` figure: `search.evaluate.sweep_series`).  Each marker's customdata is its index in
    `points`, so a click names its point; `selected` draws a ring round that point.  Spec text is
    HTML-escaped in hovers and legends."""
    series = sweep_series(points)
    fig = go.Figure()
    seen: dict[tuple[float, float], int] = {}
    drawn: dict[int, float] = {}
    for k, (spec, (xs, ys)) in enumerate(series.items()):
        indices = [i for i, p in enumerate(points) if p["spec"] == spec]
        hover = [html.escape(point_label(points[i])) for i in indices]
        moved = dodge(xs, ys, seen)
        drawn.update(zip(indices, moved, strict=True))
        fig.add_trace(go.Scatter(
            x=moved, y=ys, mode="lines+markers", name=html.escape(spec), customdata=indices,
            text=hover, hovertemplate="%{text}<br>click: the runs behind it<extra></extra>",
            marker={"size": 12, "symbol": SYMBOLS[k % len(SYMBOLS)]},
        ))
    if selected is not None and 0 <= selected < len(points):
        point = points[selected]
        fig.add_trace(go.Scatter(
            x=[drawn.get(selected, max(1.0, point["mean_tokens"]))], y=[point["accuracy"]], mode="markers",
            name="selected",
            marker={"size": 22, "color": "rgba(0,0,0,0)", "line": {"width": 3, "color": "#111"}},
            hoverinfo="skip", showlegend=False,
        ))
    fig.update_layout(
        title=title, xaxis_title="mean generated tokens per problem (log)", yaxis_title="accuracy",
        xaxis_type="log", yaxis_range=[-0.05, 1.05], template="plotly_white", clickmode="event+select",
        margin={"l": 60, "r": 20, "t": 50 if title else 20, "b": 50}, height=460,
    )
    return fig


def clicked_point(event: Any, count: int) -> int | None:
    """The point index a chart selection names (its customdata), None when nothing valid is selected."""
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    for point in points:
        data = point.get("customdata")
        index = data[0] if isinstance(data, list) else data
        if isinstance(index, int | float) and 0 <= int(index) < count:
            return int(index)
    return None


def point_runs(point: Mapping[str, Any], runs: Mapping[int, Any],
               problems: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """The runs behind a point, wrong ones first (then by problem): one row per problem with
    `run` (id or None), `problem` (1-based), `text`, `answer`, `reference`, `verdict` (✓ / ✗ /
    no answer / failed / deleted) and `wrong`.  `runs` maps run id -> a run summary (anything with
    `correct`, `answer`, `reference`, `problem`, `status`); a run missing from it was deleted."""
    rows = []
    for index, run_id in enumerate(point.get("run_ids") or []):
        run = runs.get(run_id) if run_id is not None else None
        asked = problems[index] if index < len(problems) else {}
        if run is None:
            verdict = "not saved" if run_id is None else "deleted"
            row = {"answer": None, "reference": asked.get("reference"), "text": asked.get("problem", "")}
        else:
            verdict = {True: "✓", False: "✗"}.get(run.correct, "failed" if run.status == "failed" else "no answer")
            row = {"answer": run.answer, "reference": run.reference, "text": run.problem}
        wrong = run is None or run.correct is not True
        rows.append({"run": run_id if run is not None else None, "problem": index + 1, **row, "verdict": verdict,
                     "wrong": wrong})
    return sorted(rows, key=lambda r: (not r["wrong"], r["problem"]))


def run_link_label(row: Mapping[str, Any]) -> str:
    """One line naming a point's run: ``✗ run 12 · problem 2 · answer 7 (reference 9)``."""
    return (f"{row['verdict']} run {row['run']} · problem {row['problem']} · {answer_label(row['answer'])} "
            f"(reference {row['reference']})")
