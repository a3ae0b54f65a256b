"""Compare page: pure comparison of saved runs (reasoning_viz.compare) and the page under AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasoning_viz.compare import (
    LEAVES_PER_COLUMN,
    compare_orientation,
    divergence,
    parse_run_ids,
    same_problem,
    settings_diff,
    step_paths,
    summary_columns,
    summary_rows,
    trees_per_row,
)
from search import Budget, Models, run_search
from search.fakes import ScriptedPolicy, ScriptedPRM
from search.tree import Node, Tree
from storage import Store
from tests.engine_cases import PROBLEM
from tests.test_app import app, record

PAGE = "reasoning_viz/pages/compare.py"


def _tree(paths: dict[int, tuple[int, str]], chosen: int | None, **meta) -> Tree:
    """A tree from {node: (parent, step text)} with node 0 the root; `chosen` the answer node."""
    tree = Tree(meta={"task": "arith", "problem": "p", **meta})
    tree.nodes[0] = Node(id=0, parent=None, depth=0)
    for node_id, (parent, text) in sorted(paths.items()):
        tree.nodes[node_id] = Node(id=node_id, parent=parent, depth=tree.nodes[parent].depth + 1, text=text)
        tree.nodes[parent].children.append(node_id)
    tree.chosen = {"node": chosen, "answer": None, "correct": None}
    return tree


def _search(strategy: str, problem: str = PROBLEM, seed: int = 7, **config) -> Tree:
    return run_search(problem, task="arith", strategy=strategy, models=Models(ScriptedPolicy(), ScriptedPRM()),
                      config=config, seed=seed).tree


def test_divergence_is_the_first_step_where_the_chosen_solutions_part() -> None:
    base = _tree({1: (0, "3 + 4 = 7"), 2: (1, "7 * 2 = 14"), 3: (1, "7 * 2 = 15")}, chosen=2)
    other = _tree({1: (0, "3 + 4  = 7"), 2: (1, "7 * 2 = 15"), 3: (0, "3 + 4 = 8")}, chosen=2)
    split = divergence(base, other)
    assert (split.agreed, split.theirs, split.mine) == (1, "7 * 2 = 14", "7 * 2 = 15")  # whitespace ignored
    assert (split.shared, split.only_theirs, split.only_mine) == (2, 1, 1)
    assert "after 1 shared step" in split.sentence() and "'7 * 2 = 14'" in split.sentence()
    same = divergence(base, base)
    assert (same.agreed, same.mine, same.theirs, same.only_mine) == (2, None, None, 0)
    assert same.sentence() == "Same chosen solution (2 steps)."
    at_once = divergence(base, _tree({1: (0, "2 + 2 = 4")}, chosen=1))
    assert at_once.agreed == 0 and "at step 1" in at_once.sentence()
    no_answer = divergence(base, _tree({1: (0, "3 + 4 = 7")}, chosen=None))
    assert no_answer.agreed == 0 and no_answer.mine is None and "nothing more" in no_answer.sentence()


def test_step_paths_match_nodes_by_their_texts_from_the_root() -> None:
    tree = _tree({1: (0, "a"), 2: (1, "b"), 3: (0, "b")}, chosen=None)
    assert step_paths(tree) == {("a",), ("a", "b"), ("b",)}


def test_runs_of_one_problem_are_compared_and_others_refused() -> None:
    beam, greedy = _search("beam"), _search("greedy")
    assert same_problem([beam, greedy]) is None
    assert "at least two" in same_problem([beam])
    assert "different problems" in same_problem([beam, _search("greedy", problem="Start with 2. Add 9.")])


def test_settings_diff_lists_only_what_differs() -> None:
    a, b = _search("beam", n=4, beam_width=2), _search("beam", n=8, beam_width=2)
    rows = {row["setting"]: row for row in settings_diff([a, b])}
    assert set(rows) == {"knob n"} and (rows["knob n"]["run 0"], rows["knob n"]["run 1"]) == ("4", "8")
    named = settings_diff([a, b], [7, 9])  # columns carry the runs' own ids, as the rest of the page does
    assert [(row["run 7"], row["run 9"]) for row in named] == [("4", "8")]
    assert settings_diff([a, _search("beam", n=4, beam_width=2)]) == []
    mixed = {row["setting"] for row in settings_diff([a, _search("greedy")])}
    assert "strategy" in mixed and "knob beam_width" in mixed  # greedy has no beam_width: '—'


def test_summary_rows_show_answers_and_spend_at_a_glance() -> None:
    beam, greedy = _search("beam"), _search("greedy")
    rows = summary_rows([beam, greedy], [4, 9])
    assert [r["run"] for r in rows] == [4, 9] and [r["strategy"] for r in rows] == ["beam", "greedy"]
    assert rows[0]["gen. tokens"] == beam.spend["tokens_generated"] > 0
    assert rows[1]["nodes"] == len(greedy) - 1
    assert rows[1]["shared"] == divergence(beam, greedy).shared
    assert rows[0]["shared"] == len(step_paths(beam))  # its own: all of them, a number
    columns = summary_columns(4)
    assert set(columns) == set(rows[0]) and "run 4" in columns["shared"]["help"]  # run ids, not positions
    # every column sized and at least its header wide; together they fit 1280 px (818 px of room)
    assert all(c["width"] >= 7.5 * len(name) + 16 for name, c in columns.items()), columns
    assert sum(c["width"] for c in columns.values()) <= 818 - 20
    assert rows[0]["correct"] in {"✓", "✗", "—"}
    assert rows[0]["status"] == "finished"
    cut = run_search(PROBLEM, task="arith", strategy="beam", models=Models(ScriptedPolicy(), ScriptedPRM()),
                     budget=Budget(max_nodes=5), seed=7).tree
    assert summary_rows([cut], [5])[0]["status"] == "stopped · node budget"
    assert cut.chosen is None or cut.chosen.get("answer") is None
    assert summary_rows([cut], [5])[0]["answer"] == "no answer"  # not "None" (a fresh user's report)


@pytest.mark.parametrize(("count", "per_row"), [(2, 2), (4, 2), (0, 1), (1, 1), (3, 2)])
def test_runs_stand_side_by_side_two_a_row(count, per_row) -> None:
    assert trees_per_row(count) == per_row


def test_a_wide_tree_turns_left_to_right_to_fit_its_column() -> None:
    """#17: Compare stacked two wide trees one under the other (the issue asks side by side): a
    wide tree is now laid out left to right, its leaves down the column, beside the other."""
    assert compare_orientation(LEAVES_PER_COLUMN) == "auto"
    assert compare_orientation(LEAVES_PER_COLUMN + 1) == "left-right"


@pytest.mark.parametrize(("raw", "ids"), [("3,5, 8", [3, 5, 8]), ("3,3,x,-1,0,", [3]), (None, []), ("", [])])
def test_run_ids_in_the_url(raw, ids) -> None:
    assert parse_run_ids(raw) == ids


@pytest.fixture
def runs_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "runs.db"
    monkeypatch.setenv("THOUGHTSCOPE_DB", str(db))
    for strategy in ("beam", "greedy"):
        record(db, Models(ScriptedPolicy(), ScriptedPRM()), strategy=strategy)
    record(db, Models(ScriptedPolicy(), ScriptedPRM()), strategy="greedy", problem="Start with 2. Add 9.")
    return db


def test_compare_page_puts_two_runs_side_by_side(runs_db: Path) -> None:
    at = app(PAGE, runs="1,2")
    assert not at.exception, at.exception
    summary = at.dataframe[0].value
    assert list(summary["run"]) == [1, 2] and list(summary["strategy"]) == ["beam", "greedy"]
    assert any(t.value.startswith("Run 2: ") and "step paths in both trees" in t.value for t in at.text)
    assert len(at.get("plotly_chart")) == 2
    with Store.open(runs_db) as store:
        assert at.text[0].value == f"Problem: {store.get_run(1).problem}"


def test_compare_page_refuses_runs_of_different_problems(runs_db: Path) -> None:
    at = app(PAGE, runs="1,3")
    assert not at.exception, at.exception
    assert any("different problems" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_compare_page_names_the_runs_of_a_link_that_do_not_exist(runs_db: Path) -> None:
    at = app(PAGE, runs="1,99999")
    assert not at.exception, at.exception
    assert any("99999" in w.value and "do not exist" in w.value for w in at.warning)


def test_a_compare_column_sizes_its_markers_for_its_narrower_plot() -> None:
    """#17: Compare's columns (about 290 px of plot at 1280 px) drew markers sized for the Search
    page's 450 px, so a wide tree's answer markers overlapped; `plot_width` sizes them."""
    from reasoning_viz.figures import tree_figure
    from reasoning_viz.layout import PLOT_WIDTH, chart_frame, tidy_layout
    from reasoning_viz.pages.compare import PLOT_PX

    tree = run_search(PROBLEM, task="arith", strategy="best_of_n", models=Models(ScriptedPolicy(), ScriptedPRM()),
                      config={"n": 24}).tree
    layout = tidy_layout(tree, orientation=compare_orientation(24))
    wide, narrow = chart_frame(layout), chart_frame(layout, plot_width=PLOT_PX)
    assert PLOT_PX < PLOT_WIDTH and narrow.max_marker < wide.max_marker
    sizes = [s for t in tree_figure(tree, layout, plot_width=PLOT_PX).data[-3:] for s in t.marker.size]
    assert max(sizes) <= narrow.max_marker
