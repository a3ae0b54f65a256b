"""Comparing saved runs of one problem: settings that differ, answers, spend and where they diverged.

Pure functions over `search.tree.Tree` (each run's final tree, folded from its events) and its
`meta` (the `search_started` payload); the Compare page only draws what they return.  The idea is
the run comparison of experiment trackers (TensorBoard / Langfuse: runs side by side, differing
parameters highlighted) applied to reasoning trees: two trees are matched by their step texts, so
"where they diverged" is the first step at which their chosen solutions part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reasoning_viz.runinfo import answer_cell, status_word
from search.tree import Tree

#: Settings compared besides the strategy's knobs (keys of the `search_started` payload).
SETTINGS = ("task", "strategy", "seed", "budget", "models", "reference")


def same_problem(trees: Sequence[Tree]) -> str | None:
    """None when every tree answers the same problem of the same task; else a sentence why not."""
    if len(trees) < 2:
        return "Pick at least two runs to compare."
    keys = {(t.meta.get("task"), " ".join(str(t.meta.get("problem", "")).split())) for t in trees}
    if len(keys) > 1:
        return "These runs are on different problems; the Compare page puts runs of one problem side by side."
    return None


def settings_diff(trees: Sequence[Tree], run_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """One row per setting or knob whose value differs between the runs: {'setting', 'run <id>', ...}.

    Columns are named by `run_ids` (the runs' database ids; positions 0, 1, ... when None).
    Knobs are the strategies' configs (`knob` rows); a knob one strategy lacks shows as '—'.
    """
    names = [f"run {i}" for i in (run_ids if run_ids is not None else range(len(trees)))]
    def flat(tree: Tree) -> dict[str, Any]:
        meta = tree.meta
        out = {key: meta.get(key) for key in SETTINGS}
        out.update({f"knob {k}": v for k, v in (meta.get("config") or {}).items()})
        return out

    flats = [flat(tree) for tree in trees]
    keys = list(dict.fromkeys(key for f in flats for key in f))
    rows = []
    for key in keys:
        values = [f.get(key, "—") for f in flats]
        if any(v != values[0] for v in values[1:]):
            rows.append({"setting": key, **{name: _text(v) for name, v in zip(names, values, strict=True)}})
    return rows


def _text(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items() if v is not None) or "no limit"
    return "—" if value is None else str(value)


def chosen_steps(tree: Tree) -> list[str]:
    """The step texts of the chosen solution (empty when no answer was chosen)."""
    node = (tree.chosen or {}).get("node")
    return tree.steps(node) if node is not None and node in tree.nodes else []


def _norm(step: str) -> str:
    return " ".join(step.split())


def step_paths(tree: Tree) -> set[tuple[str, ...]]:
    """Every node as the tuple of its (whitespace-normalised) step texts: how trees are matched."""
    paths: dict[int, tuple[str, ...]] = {}
    for node in sorted(tree.nodes.values(), key=lambda n: n.depth):
        parent = paths.get(node.parent, ()) if node.parent is not None else ()
        paths[node.id] = (*parent, _norm(node.text)) if node.parent is not None else ()
    return {path for path in paths.values() if path}


@dataclass(frozen=True)
class Divergence:
    """Where a run's chosen solution parts from the baseline's, and how much of the trees is shared.

    `agreed`: chosen-path steps both share from the top; `mine` / `theirs`: the first differing
    step of each (None when a path ended there); `shared`: nodes (as step paths) in both trees;
    `only_mine` / `only_theirs`: nodes in just one of them.
    """

    agreed: int
    mine: str | None
    theirs: str | None
    shared: int
    only_mine: int
    only_theirs: int

    def sentence(self) -> str:
        if self.mine is None and self.theirs is None:
            return f"Same chosen solution ({self.agreed} steps)."
        where = f"after {self.agreed} shared step{'s' if self.agreed != 1 else ''}" if self.agreed else "at step 1"
        return f"The chosen solutions part {where}: the baseline wrote {self.theirs or '(nothing more)'!r}, " \
            f"this run {self.mine or '(nothing more)'!r}."


def divergence(baseline: Tree, other: Tree) -> Divergence:
    """Compare `other` with `baseline`: chosen-path split point and node overlap by step texts."""
    a, b = [_norm(s) for s in chosen_steps(baseline)], [_norm(s) for s in chosen_steps(other)]
    agreed = 0
    while agreed < min(len(a), len(b)) and a[agreed] == b[agreed]:
        agreed += 1
    theirs = a[agreed] if agreed < len(a) else None
    mine = b[agreed] if agreed < len(b) else None
    pa, pb = step_paths(baseline), step_paths(other)
    return Divergence(agreed, mine, theirs, len(pa & pb), len(pb - pa), len(pa - pb))


def summary_rows(trees: Sequence[Tree], run_ids: Sequence[int]) -> list[dict[str, Any]]:
    """One row per run: strategy, answer, verdict, nodes and what it spent, and ("shared") the step
    paths it shares with the first run (on the first run's own row: all of its own); column widths
    and help in `summary_columns`."""
    rows = []
    for tree, run_id in zip(trees, run_ids, strict=True):
        chosen, spend = tree.chosen or {}, tree.spend or {}
        split = divergence(trees[0], tree)
        rows.append({
            "run": run_id,
            "strategy": tree.meta.get("strategy"),
            "status": status_word(tree.status, tree.end_reason),
            "answer": answer_cell(chosen.get("answer")),
            "correct": {True: "✓", False: "✗", None: "—"}[chosen.get("correct")],
            "nodes": len(tree) - 1,
            "gen. tokens": spend.get("tokens_generated", 0),
            "PRM tokens": spend.get("prm_tokens", 0),
            "calls": spend.get("model_calls", 0),
            "seconds": None if spend.get("elapsed_s") is None else round(spend["elapsed_s"], 2),
            "shared": split.shared,
        })
    return rows


def summary_columns(first_run: int) -> dict[str, dict[str, Any]]:
    """Widths and help for `summary_rows`' columns (st.column_config settings as plain dicts): 798
    px in all, so the table fits a 1280-px window with the sidebar open (it scrolled 120 px)."""
    def column(width: int, help: str | None = None) -> dict[str, Any]:  # noqa: A002 - Streamlit's name
        return {"width": width, "help": help}

    return {
        "run": column(40), "strategy": column(76), "status": column(96), "answer": column(85),
        "correct": column(70), "nodes": column(54),
        "gen. tokens": column(99, "Tokens the policy generated (steps, rollouts, rechecks)."),
        "PRM tokens": column(91, "Tokens the reward model read."),
        "calls": column(54, "Model calls (batched requests)."),
        "seconds": column(69, "Wall time: depends on the machine; tokens do not."),
        "shared": column(64, f"Distinct step paths this run shares with run {first_run} (its own row: all of them)."),
    }


#: Leaves half a laptop screen (a 400-px chart at 1280 px) shows apart top-down; a wider tree is
#: drawn left to right in its column (leaves down the page, 16 px a row), so it still fits beside
#: the other.
LEAVES_PER_COLUMN = 10


def trees_per_row(count: int, most: int = 2) -> int:
    """How many trees the Compare page puts side by side: as many as there are runs, up to `most`
    (at least 1): three 290-px columns at 1366 px overlapped a beam tree's markers.  Wide trees
    stay side by side too: `compare_orientation` turns them."""
    return max(1, min(most, count))


def compare_orientation(leaves: int) -> str:
    """The layout a tree with `leaves` leaves gets in a Compare column: "auto" (top-down) while its
    leaves fit the column's width, else "left-right" (its height then grows with the leaves)."""
    return "left-right" if leaves > LEAVES_PER_COLUMN else "auto"


def parse_run_ids(raw: str | None) -> list[int]:
    """`?runs=3,5,8` -> [3, 5, 8]; anything that is not a positive number is dropped, repeats too."""
    out: list[int] = []
    for part in (raw or "").split(","):
        part = part.strip()
        if part.isdigit() and int(part) > 0 and int(part) not in out:
            out.append(int(part))
    return out
