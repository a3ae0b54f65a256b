"""Compare page: two or more saved runs of one problem side by side — trees (two a row;
wide ones left to right), answers, spend, the settings that differ and where the chosen
solutions part (logic in reasoning_viz.compare)."""

from __future__ import annotations

import streamlit as st

from reasoning_viz import resources
from reasoning_viz.compare import (
    compare_orientation,
    divergence,
    parse_run_ids,
    same_problem,
    settings_diff,
    summary_columns,
    summary_rows,
    trees_per_row,
)
from reasoning_viz.figures import tree_figure
from reasoning_viz.inspector import VIEW_HEIGHT
from reasoning_viz.layout import tidy_layout
from reasoning_viz.runinfo import answer_label
from reasoning_viz.runs_table import run_label

PER_ROW = 2
#: The plot area (px) of a Compare column at a 1280-px window (two columns, less margins and the
#: colour bar): trees are laid out and their markers sized for it (laid out for the Search page's
#: 450 px, answer markers 9.4 px apart overlapped).
PLOT_PX = 290


@st.cache_resource(max_entries=16, show_spinner="Loading the run…")
def load_tree(store_key: str, run_id: int, version: tuple):
    """A saved run's final tree and its layout for a Compare column (`compare_orientation`),
    re-read when the run changes (`version`)."""
    tree = resources.run_store().tree(run_id)
    return tree, tidy_layout(tree, orientation=_orientation(tree), plot_width=PLOT_PX)


def _orientation(tree) -> str:
    return compare_orientation(sum(1 for node in tree if not node.children))


def pick_runs(store) -> list[int]:
    """The runs to compare: a multiselect, initialised from and kept in the URL (`?runs=3,5`)."""
    runs = store.list_runs(limit=500)
    labels = {run.id: run_label(run) for run in runs}
    asked = parse_run_ids(st.query_params.get("runs"))
    missing = [i for i in asked if i not in labels]
    if missing:  # a link says plainly which of its runs do not exist (as Replay does)
        st.warning(f"Run(s) {', '.join(map(str, missing))} do not exist in this run database (or are not among "
                   "the newest 500); pick runs in the list below.")
    wanted = [i for i in asked if i in labels]
    picked = st.multiselect(
        "Runs to compare (of one problem)", list(labels), default=wanted, format_func=labels.__getitem__,
        key="compare-runs",
    )
    value = ",".join(map(str, picked))
    if st.query_params.get("runs", "") != value:
        st.query_params["runs"] = value
    return picked


def page() -> None:
    from storage.replay import run_version

    st.title("Compare runs")
    try:
        store = resources.run_store()
        run_ids = pick_runs(store)
        loaded = [load_tree(store.key, i, run_version(store.get_run(i))) for i in run_ids]
    except Exception as exc:  # noqa: BLE001 - StorageError and driver errors are shown plainly
        st.error(f"Cannot open the runs: {exc}")
        return
    trees = [tree for tree, _ in loaded]
    problem = same_problem(trees)
    if problem:
        st.info(problem)
        return
    st.text(f"Problem: {trees[0].meta.get('problem', '')}")
    st.subheader("Answers and spend")
    columns = {name: st.column_config.Column(**kw) for name, kw in summary_columns(run_ids[0]).items()}
    st.dataframe(summary_rows(trees, run_ids), hide_index=True, width="stretch", column_config=columns)
    diff = settings_diff(trees, run_ids)
    st.subheader("Settings that differ")
    if diff:
        st.dataframe(diff, hide_index=True, width="stretch")
    else:
        st.caption("None: same strategy, knobs, models, budget and seed.")
    st.subheader("Where they diverged (against the first run)")
    for run_id, tree in zip(run_ids[1:], trees[1:], strict=True):
        split = divergence(trees[0], tree)
        st.text(f"Run {run_id}: {split.sentence()} Distinct step paths in both trees: {split.shared}; "
                f"only in run {run_ids[0]}: {split.only_theirs}; only in run {run_id}: {split.only_mine}.")
    st.subheader("Trees")
    per_row = trees_per_row(len(run_ids), PER_ROW)
    for start in range(0, len(run_ids), per_row):
        columns = st.columns(per_row)
        for column, run_id, (tree, positions) in zip(columns, run_ids[start:], loaded[start:], strict=False):
            with column:
                compare_tree(run_id, tree, positions)


def compare_tree(run_id: int, tree, positions) -> None:
    """One run's tree in its column, its chosen node ringed; a tree taller than the window
    scrolls in its own box so the trees beside it stay in view."""
    st.caption(f"Run {run_id} · {tree.meta.get('strategy')} · " + answer_label((tree.chosen or {}).get("answer")))
    chosen = (tree.chosen or {}).get("node")
    figure = tree_figure(tree, positions, selected=chosen, orientation=_orientation(tree), plot_width=PLOT_PX)
    tall = (figure.layout.height or 0) > VIEW_HEIGHT
    with st.container(height=VIEW_HEIGHT if tall else "content", border=False):
        st.plotly_chart(figure, key=f"compare-tree-{run_id}", width="stretch")


page()
