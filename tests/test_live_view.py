"""The app's pure rules for what a person sees (issue 17): layout, links, replay timing, status,
spend, score display.  No Streamlit here; the pages only call these."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from reasoning_viz.figures import LEGEND, score_strip, step_scores, tree_figure
from reasoning_viz.layout import tidy_layout
from reasoning_viz.links import LinkTarget, replay_choice, resolve_link
from reasoning_viz.narration import narrate
from reasoning_viz.playback import event_number, narrated_node, next_backtrack, playback_position
from reasoning_viz.runinfo import (
    DEFAULT_BUDGET,
    answer_caveat,
    context_problem,
    form_state,
    live_spend,
    run_status,
)
from search import Budget, Tree, get_strategy, run_search
from search.events import EventKind
from search.tree import Node
from tests.engine_cases import CASES, PROBLEM, scripted_models


def run(case: str, **extra):
    strategy, config = CASES[case]
    return run_search(PROBLEM, task="arith", strategy=strategy, models=scripted_models(), config=config, **extra)


def random_tree(size: int, seed: int) -> Tree:
    """A random tree of `size` nodes (bushy near the root, long chains below)."""
    rng = random.Random(seed)
    tree = Tree()
    tree.nodes[0] = Node(id=0, parent=None, depth=0)
    for node_id in range(1, size):
        parent = tree.nodes[rng.choice(list(tree.nodes)[-40:] if rng.random() < 0.7 else list(tree.nodes))]
        tree.nodes[node_id] = Node(id=node_id, parent=parent.id, depth=parent.depth + 1)
        parent.children.append(node_id)
    return tree


# ---------------------------------------------------------------- defect 1: one layout, no overlaps
@pytest.mark.parametrize("size", [16, 200, 1000])
def test_layout_has_no_overlaps_and_no_crossing_edges_at_every_size(size: int) -> None:
    tree = random_tree(size, seed=size)
    pos = tidy_layout(tree)
    by_depth: dict[float, list[tuple[float, int]]] = {}
    for node_id, (x, y) in pos.items():
        by_depth.setdefault(y, []).append((x, node_id))
    for row in by_depth.values():
        row.sort()
        assert all(b[0] - a[0] >= 0.99 for a, b in itertools.pairwise(row)), "two nodes overlap"
        parents = [pos[tree.nodes[n].parent][0] for _, n in row if tree.nodes[n].parent is not None]
        assert parents == sorted(parents), "edges cross: children are not in their parents' order"


def test_the_chosen_path_ends_on_the_chosen_node() -> None:
    tree = run("beam").tree
    figure = tree_figure(tree, tidy_layout(tree))
    chosen_edges = next(t for t in figure.data if t.line and t.line.width == 5)
    chosen = tree.chosen["node"]
    end = (chosen_edges.x[-2], chosen_edges.y[-2])
    assert end == tidy_layout(tree)[chosen]
    markers = {
        int(i): (x, y)
        for t in figure.data
        if t.customdata is not None
        for i, x, y in zip(t.customdata, t.x, t.y, strict=True)
    }
    assert markers[chosen] == end and list(markers.values()).count(end) == 1


# ---------------------------------------------------------------- defect 3: links
JOBS_AFTER_RESTART = {"job-1": 17}


@pytest.mark.parametrize(
    ("params", "jobs", "exists", "wanted"),
    [
        ({"run": "2"}, {}, {2}, LinkTarget(run_id=2)),  # after a restart: from the database
        ({"job": "job-1", "run": "1"}, JOBS_AFTER_RESTART, {1, 17}, LinkTarget(run_id=1)),  # old link
        ({"job": "job-1", "run": "17"}, JOBS_AFTER_RESTART, {1, 17}, LinkTarget(job_id="job-1")),
        ({"run": "17"}, JOBS_AFTER_RESTART, {17}, LinkTarget(job_id="job-1")),  # still live in this server
        ({"job": "job-3"}, {"job-3": None}, set(), LinkTarget(job_id="job-3")),  # just started
        ({}, JOBS_AFTER_RESTART, {1}, LinkTarget()),
    ],
)
def test_a_link_opens_exactly_its_run(params, jobs, exists, wanted) -> None:
    assert resolve_link(params, jobs, exists.__contains__) == wanted


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"run": "99999"}, "Run 99999 does not exist"),
        ({"run": "abc"}, "`run=abc` is not a run number"),
        ({"run": "0"}, "`run=0` is not a run number"),
        ({"job": "job-9"}, "job-9 is not running in this server"),
        ({"job": "job-1", "run": "5"}, "Run 5 does not exist"),
        ({"run": "17"}, "Run 17 does not exist"),  # job-1 recorded run 17, deleted since (Runs page)
        ({"job": "job-1", "run": "17"}, "Run 17 does not exist"),
    ],
)
def test_a_link_to_nothing_says_so(params, says) -> None:
    target = resolve_link(params, JOBS_AFTER_RESTART, {1}.__contains__)
    assert target.job_id is None and target.run_id is None and says in target.message


def test_replay_opens_the_linked_run_or_says_it_is_missing() -> None:
    assert replay_choice("99999", [40, 39], {39, 40}.__contains__).message.startswith("Run 99999 does not exist")
    assert replay_choice("3", [40, 39], {3, 39, 40}.__contains__) == LinkTarget(run_id=3)  # filtered out, exists
    assert replay_choice(None, [40, 39], {39, 40}.__contains__) == LinkTarget(run_id=40)
    assert replay_choice(None, [], set().__contains__) == LinkTarget()


# ---------------------------------------------------------------- defect 4: budgets
def test_default_budget_gives_the_same_tree_on_a_slow_machine() -> None:
    budget = Budget(**{k: v or None for k, v in DEFAULT_BUDGET.items()})
    fast = itertools.count(0, 0.001)
    slow = itertools.count(0, 30.0)  # every clock read 30 s later: a machine under heavy load
    quick = run("mcts_puct_prm", budget=budget, clock=lambda: next(fast))
    loaded = run("mcts_puct_prm", budget=budget, clock=lambda: next(slow))
    assert [(e.kind, dict(e.data)) for e in quick.events if e.kind is EventKind.NODE_ADDED] == [
        (e.kind, dict(e.data)) for e in loaded.events if e.kind is EventKind.NODE_ADDED
    ]
    assert loaded.tree.status == "finished" and loaded.tree.end_reason == "completed"


@pytest.mark.parametrize(
    ("limit", "cause", "word"), [("max_seconds", "time budget", "machine"), ("max_nodes", "node budget", "")]
)
def test_a_budget_stop_says_which_budget_and_why(limit: str, cause: str, word: str) -> None:
    clock = itertools.count(0, 1.0)
    result = run("mcts_puct_prm", budget=Budget(**{limit: 5}), clock=lambda: next(clock))
    status = run_status(result.tree, running=False)
    assert status.label == "stopped" and status.cause == cause
    assert limit in status.detail and word in status.detail
    finished = next(e for e in result.events if e.kind is EventKind.FINISHED)
    assert limit in narrate(finished)
    completed = run_status(run("greedy").tree, running=False)
    assert completed.label == "finished" and completed.detail is None and completed.cause is None


def test_a_budget_that_stops_before_any_answer_says_none_was_found() -> None:
    result = run("mcts_puct_prm", budget=Budget(max_nodes=1))
    status = run_status(result.tree, running=False)
    assert status.label == "stopped" and "no complete solution was found" in status.detail, status.detail
    assert "chosen among" not in status.detail


def test_an_answer_that_won_a_tie_is_flagged_as_a_guess() -> None:
    tie = {"answer": "112", "table": [{"node": 3, "answer": "112", "weight": 0.0},
                                      {"node": 5, "answer": "7", "weight": 0.0},
                                      {"node": 9, "answer": "8", "weight": 0.0}]}
    assert "3 answers share the top weight (0)" in answer_caveat(tie)
    clear = {**tie, "table": [{"node": 3, "answer": "112", "weight": 0.9}, *tie["table"][1:]]}
    assert answer_caveat(clear) is None
    votes = {"answer": "4", "table": [{"answer": "4", "votes": 2}, {"answer": "5", "votes": 2}]}
    assert "top votes (2)" in answer_caveat(votes)
    assert answer_caveat({"answer": None, "table": tie["table"]}) is None and answer_caveat(None) is None
    same = {"answer": "112", "table": [{"node": 3, "answer": "112", "weight": 0.0},
                                       {"node": 4, "answer": "112", "weight": 0.0}]}
    assert answer_caveat(same) is None, "a tie among candidates of one answer decides nothing"


# ---------------------------------------------------------------- defect 5: a loaded run shows itself
def test_form_state_reproduces_a_runs_settings() -> None:
    long_problem = PROBLEM + " " + "and then some more words " * 5
    result = run_search(
        long_problem,
        task="arith",
        strategy="mcts",
        models=scripted_models(),
        config={"simulations": 7, "c": 2.5},
        budget=Budget(max_nodes=50),
        seed=3,
    )
    meta = result.tree.meta
    knobs = [(name, default) for name, default, _ in get_strategy("mcts").config_cls.knobs()]
    state = form_state(meta, knobs)
    assert state["task"] == "arith" and state["strategy"] == "mcts" and state["seed"] == 3
    assert state["problem-arith"] == meta["problem"]
    assert state["knob-mcts-simulations"] == 7 and state["knob-mcts-c"] == 2.5
    assert state["budget-max_nodes"] == 50 and state["budget-max_seconds"] == 0.0
    started = narrate(result.events[0])
    assert " ".join(meta["problem"].split()) in started, "the narration cut the problem"


# ---------------------------------------------------------------- defect 6: views agree
def test_best_of_n_scores_agree_between_tree_strip_and_path_table() -> None:
    tree = run("best_of_n").tree
    scores = step_scores(tree)
    leaf = next(n for n in tree.terminals() if n.step_scores.get("prm"))
    path = tree.path(leaf.id)[1:]
    assert [scores.get(n.id) for n in path] == leaf.step_scores["prm"]
    strip = score_strip(tree, leaf.id)
    assert list(strip.data[0].z[0]) == leaf.step_scores["prm"]
    figure = tree_figure(tree, tidy_layout(tree))
    colored = set(map(int, figure.data[-1].customdata))
    assert {n.id for n in path} <= colored, "nodes with a score are drawn grey"


def test_the_path_table_never_says_none() -> None:
    """Missing numbers read "–" (as the inspector's metrics do), not "None"; the self-eval column
    appears only on paths with a self-evaluation."""
    from reasoning_viz.inspector import path_rows

    tree = run("beam").tree
    deepest = max(tree, key=lambda n: n.depth)
    rows = path_rows(tree, deepest.id)
    assert [row["node"] for row in rows] == [n.id for n in tree.path(deepest.id)[1:]]
    assert all(None not in row.values() and "None" not in map(str, row.values()) for row in rows)
    assert all("self-eval" not in row for row in rows) and list(rows[0])[:2] == ["step", "text"]
    judged = run("mcts_mix_max_selfeval").tree
    node = next(n for n in judged if "self_eval" in n.scores)
    rows = path_rows(judged, node.id)
    assert rows[-1]["self-eval"] == f"{node.scores['self_eval']:.2f}"
    assert all(None not in row.values() for row in rows)


def test_unscored_and_pruned_nodes_look_different_and_clicks_fade_nothing() -> None:
    tree = run("beam").tree
    figure = tree_figure(tree, tidy_layout(tree), selected=3)
    pruned, unscored, scored = figure.data[-3:]
    assert set(map(int, pruned.customdata)) == {n.id for n in tree if n.pruned}
    assert 0 in set(map(int, unscored.customdata))
    assert pruned.marker.color != unscored.marker.color
    for trace in (pruned, unscored, scored):
        assert trace.unselected.marker.opacity == trace.selected.marker.opacity == trace.marker.opacity
    assert "not scored" in LEGEND and "pruned" in LEGEND


def test_event_numbers_in_tables_are_the_replay_positions() -> None:
    """A table's "#" for the event with seq s is the Replay position whose narration is event s."""
    events = run("mcts_puct_prm").events
    for seq in (0, 5, len(events) - 1):
        position = event_number(seq)
        assert events[position - 1].seq == seq  # Replay narrates events[k - 1] at position k


# ---------------------------------------------------------------- defect 7: replay timing
@pytest.mark.parametrize("rate", [1.0, 4.0, 10.0, 50.0])
def test_replay_keeps_the_asked_rate_even_when_frames_are_slow(rate: float) -> None:
    """Frames take 0.6 s (a rerun on a busy machine); the position still follows the clock."""
    position, now, frames = 0, 0.0, 0
    while now < 60:
        now += 0.6
        frames += 1
        position = max(playback_position(0, 0.0, now, rate, 100_000), position + 1)
    measured = position / now
    assert measured == pytest.approx(max(rate, 1 / 0.6), rel=0.05), f"{measured:.2f} events/s"


def test_jump_to_next_backtrack_and_the_narrated_node() -> None:
    events = run("mcts_puct_prm").events
    seqs = [e.seq for e in events if e.kind is EventKind.BACKTRACKED]
    assert seqs, "the case must backtrack"
    assert next_backtrack(events, 0) == event_number(seqs[0])
    assert next_backtrack(events, event_number(seqs[0])) == (event_number(seqs[1]) if len(seqs) > 1 else None)
    assert next_backtrack(events, len(events)) is None
    added = next(e for e in events if e.kind is EventKind.NODE_ADDED)
    assert narrated_node(added) == added.data["node"]
    back = events[seqs[0]]
    assert narrated_node(back) == back.data["to_node"]
    # scores that round alike get more decimals: a fresh user read "now scores 0.74 vs 0.74"
    close = {**back.data, "breakdown": {**back.data["breakdown"]}}
    close["breakdown"]["chosen"] = {**close["breakdown"]["chosen"], "score": 0.7412}
    close["breakdown"]["previous"] = {**close["breakdown"]["previous"], "score": 0.7398}
    assert "now scores 0.741 vs 0.740 for node" in narrate(type(back)(back.seq, back.t, back.kind, close))
    assert " vs 0.74 for node" not in narrate(type(back)(back.seq, back.t, back.kind, close))


# ---------------------------------------------------------------- defect 8: counters, context
def test_progress_counters_move_between_budget_reports() -> None:
    events = run("beam").events
    first_budget = next(e.seq for e in events if e.kind is EventKind.SPEND)
    first_node = next(e.seq for e in events if e.kind is EventKind.NODE_ADDED)
    before = Tree.from_events(events[: first_node + 1])
    later = Tree.from_events(events[:first_budget])
    assert not later.spend, "no spend report yet"
    a, b = live_spend(before, elapsed_s=1.0), live_spend(later, elapsed_s=2.5)
    assert 0 < a["nodes"] < b["nodes"] and 0 < a["tokens"] < b["tokens"] and b["elapsed_s"] == 2.5


def test_a_problem_longer_than_the_context_is_refused_before_the_search() -> None:
    assert context_problem(900, 1024, 64) is None
    message = context_problem(1000, 1024, 64)
    assert "1000 tokens" in message and "1024" in message
    assert context_problem(10**6, None, 64) is None  # unknown context: no claim


def test_warmup_runs_the_loader_in_the_background_and_reports_failures() -> None:
    from reasoning_viz.warmup import Warmup

    ok = Warmup.start(scripted_models)
    ok.thread.join(10)
    assert ok.state == "ready" and ok.line().startswith("Default models ready")

    def missing():
        raise FileNotFoundError("no model at /nowhere")

    bad = Warmup.start(missing)
    bad.thread.join(10)
    assert bad.state == "failed" and "no model at /nowhere" in bad.line()


def _stale_chart_click_script() -> None:  # run by AppTest (its source is the app script)
    import json

    import plotly.graph_objects as go
    import streamlit as st
    from streamlit.proto.WidgetStates_pb2 import WidgetState
    from streamlit.runtime.state.session_state import Serialized
    from streamlit.runtime.state.session_state_proxy import get_session_state

    from reasoning_viz.inspector import chart_click
    from search.tree import Tree

    tree = Tree.from_events([])
    tree.nodes = {0: None, 1: None, 2: None}
    figure = go.Figure(go.Scatter(x=[0, 1, 2], y=[0, 1, 1], customdata=[[0], [1], [2]], mode="markers"))
    if st.session_state.get("stale"):
        # the browser clicked node 2 on the chart drawn one poll ago: a chart id no longer current
        stale = "$$ID-0123456789abcdef-tree-job"
        state = WidgetState(id=stale, json_value=json.dumps({"selection": {"points": [{"customdata": [2]}]}}))
        get_session_state()._state._new_widget_state.states[stale] = Serialized(state)
    st.text(f"clicked={chart_click(tree, 'tree-job')}")
    st.plotly_chart(figure, key="tree-job", on_select="rerun", selection_mode="points")


def test_a_click_on_the_chart_drawn_one_poll_ago_still_opens_its_node() -> None:
    """#17: clicks on a tree that a fast search was growing were ignored 7 of 10 times.  Streamlit
    names a chart after its figure, so the click arrived for the chart of one poll ago and
    `st.session_state[key]` no longer pointed to it.  `chart_click` reads such a click from the
    widget states the browser sent (this also fails if Streamlit stores them differently)."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_function(_stale_chart_click_script).run()
    assert app.text[0].value == "clicked=None"
    app.session_state["stale"] = True
    app.run()
    assert not app.exception, app.exception
    assert app.text[0].value == "clicked=2"


def test_the_inspector_tables_headers_fit_their_columns() -> None:
    """#17 (a fresh user at 1280 px): "Why this branch" cut its headers to "explor…" and the
    backtracks table pushed its reason out of view.  Every sized column is at least as wide as
    its header at Streamlit's 14-px font (about 7.5 px a character, plus 16 px of padding), and
    every "Why this branch" key is a column the table has."""
    from reasoning_viz.inspector import _MOVE_COLUMNS, _WHY_COLUMNS

    for columns in (_WHY_COLUMNS, _MOVE_COLUMNS):
        for header, config in columns.items():
            width = config.get("width")
            assert width is None or width >= 7.5 * len(header) + 16, (header, width)
    result = run("mcts_puct_prm")
    tree, events = result.tree, result.events
    node = next(n for n in tree if n.parent is not None and n.visits)
    from reasoning_viz.inspector import why_rows

    rows = why_rows(tree, node.id, events)
    assert rows and set(rows[0]) <= set(_WHY_COLUMNS), "a column without a width takes what it likes"
    # the inspector column is 320 px at 1280 px (sidebar open); both tables scrolled 380 px sideways
    widths = sum(_WHY_COLUMNS[column]["width"] for column in rows[0])
    assert widths <= 320 - 36, f"'Why this branch' is {widths} px wide (+ border and scroll bar) in a 320-px column"
    widths = sum(config.get("width") or 10_000 for config in _MOVE_COLUMNS.values())
    assert widths <= 320 - 36, f"the backtracks table is {widths} px wide (+ border and scroll bar) in a 320-px column"
    assert re.fullmatch(r"\d+/\d+", rows[0]["rank"]), rows[0]
    from reasoning_viz.inspector import why_rule

    assert why_rule(tree, node.id, events).startswith("puct, c = "), why_rule(tree, node.id, events)
    # a parallel MCTS: its waves and virtual loss are told in the caption, not in two more columns
    waved = run_search(PROBLEM, task="arith", strategy="mcts", models=scripted_models(),
                       config={"simulations": 16, "parallel": 4})
    node = next(n for n in waved.tree if n.parent is not None and n.visits)
    assert set(why_rows(waved.tree, node.id, waved.events)[0]) == {"#", "rank", "Q", "U", "N", "won"}
    assert "waves" in why_rule(waved.tree, node.id, waved.events) and "virtual loss" in why_rule(
        waved.tree, node.id, waved.events)
