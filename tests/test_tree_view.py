"""Big trees (issue 17): folds, filters and search as a pure function of a Tree, a chart frame that
keeps 1,000 nodes apart, and the Search page / Replay controls under AppTest."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest

from reasoning_viz.figures import SYMBOL_REACH, tree_figure
from reasoning_viz.layout import (
    BASE_HEIGHT,
    MARGIN_PX,
    MAX_COLUMNS,
    MIN_CHART_WIDTH,
    MIN_MARKER,
    PLOT_WIDTH,
    chart_frame,
    tidy_layout,
)
from reasoning_viz.tree_view import ViewOptions, focus_node, matching_nodes, subtree_size, tree_view
from search import Budget, Models, Tree, run_search
from search.fakes import ScriptedPolicy, ScriptedPRM
from search.tree import Node
from tests.engine_cases import PROBLEM, scripted_models
from tests.test_app import app, record, scripted  # noqa: F401 - fixture
from tests.test_live_view import random_tree

LONG = "Start with 17. Add 25. Multiply by 3. Subtract 14. Add 6. Subtract 9. Add 4. Subtract 2. What is the result?"


def big_beam(max_nodes: int = 1000) -> Tree:
    """A 1,001-node beam search on the scripted models: bushy, mostly pruned, an answer chosen."""
    config = {"n": 128, "beam_width": 8}
    return run_search(
        LONG, task="arith", strategy="beam", models=scripted_models(), config=config, budget=Budget(max_nodes=max_nodes)
    ).tree


@pytest.fixture(scope="module")
def beam() -> Tree:
    return big_beam()


def descendants(tree: Tree, node_id: int) -> set[int]:
    out, stack = set(), list(tree.nodes[node_id].children)
    while stack:
        out.add(stack[-1])
        stack.extend(tree.nodes[stack.pop()].children)
    return out


def check_consistent(tree: Tree, view) -> None:
    """Visible nodes are closed under ancestors, and every hidden node is counted once, at its
    nearest visible ancestor."""
    for node_id in view.visible:
        parent = tree.nodes[node_id].parent
        assert parent is None or parent in view.visible
    assert len(view.visible) + sum(view.hidden_below.values()) == len(tree.nodes)
    assert all(k > 0 and n in view.visible for n, k in view.hidden_below.items())


def test_nothing_hidden_by_default(beam: Tree) -> None:
    view = tree_view(beam)
    assert view.visible == set(beam.nodes) and not view.hidden_below and view.hidden == 0
    assert view.summary() == f"Showing all {len(beam) - 1:,} nodes"  # the root is the problem, not a node
    # a search that has not written a step yet said "Showing all 0 nodes" beside the drawn root
    root_only = Tree()
    root_only.nodes[0] = Node(id=0, parent=None, depth=0)
    assert tree_view(root_only).summary() == "Only the problem so far: no steps yet"


def test_a_folded_subtree_is_one_node_with_its_hidden_count(beam: Tree) -> None:
    node = next(n for n in beam if n.depth == 2 and len(descendants(beam, n.id)) > 3)
    view = tree_view(beam, ViewOptions(folded=frozenset({node.id})))
    hidden = descendants(beam, node.id)
    assert node.id in view.visible and not hidden & view.visible
    assert view.hidden_below == {node.id: len(hidden)} == {node.id: subtree_size(beam, node.id)}
    steps = len(beam) - 1  # the root is the problem, not a node
    assert view.summary() == f"Showing {steps - len(hidden):,} of {steps:,} nodes ({len(hidden):,} hidden)"
    check_consistent(beam, view)


def test_fold_at_depth_and_unfold_one(beam: Tree) -> None:
    view = tree_view(beam, ViewOptions(fold_depth=1))
    assert {n for n in view.visible} == {0, *beam.root.children}
    opened = max(beam.root.children, key=lambda c: subtree_size(beam, c))
    view = tree_view(beam, ViewOptions(fold_depth=1, unfolded=frozenset({opened})))
    assert descendants(beam, opened) <= view.visible and opened not in view.hidden_below
    check_consistent(beam, view)


def test_hide_pruned_keeps_the_chosen_path(beam: Tree) -> None:
    view = tree_view(beam, ViewOptions(hide_pruned=True))
    assert not any(beam.nodes[n].pruned for n in view.visible)
    assert {n.id for n in beam.path(beam.chosen["node"])} <= view.visible
    assert view.hidden == sum(1 for n in beam if any(a.pruned for a in beam.path(n.id)))
    check_consistent(beam, view)


def test_chosen_path_only_shows_the_path_and_its_siblings(beam: Tree) -> None:
    view = tree_view(beam, ViewOptions(chosen_path_only=True))
    path = [n.id for n in beam.path(beam.chosen["node"])]
    assert view.focus == beam.chosen["node"]
    assert view.visible == set(path) | {c for p in path for c in beam.nodes[p].children}
    assert len(view.visible) < len(beam) / 5
    check_consistent(beam, view)


def test_chosen_path_follows_the_latest_selection_while_running() -> None:
    tree = big_beam(max_nodes=60)
    tree.chosen = None
    tree.current_path = [n.id for n in tree.path(40)]
    assert focus_node(tree) == 40
    assert 40 in tree_view(tree, ViewOptions(chosen_path_only=True)).visible


def test_search_finds_text_any_case_and_opens_folds_not_filters(beam: Tree) -> None:
    word = next(n for n in beam if n.pruned and n.depth > 1).text.split()[0]
    matches = matching_nodes(beam, word.upper())
    assert matches and all(word.casefold() in beam.nodes[n].text.casefold() for n in matches)
    assert matching_nodes(beam, "  ") == () and matching_nodes(beam, "no such text anywhere") == ()
    folded = tree_view(beam, ViewOptions(fold_depth=1, query=word.lower()))
    assert set(matches) <= folded.visible, "a search opens the folds that hide its matches"
    check_consistent(beam, folded)
    filtered = tree_view(beam, ViewOptions(hide_pruned=True, query=word))
    assert filtered.hidden_matches == tuple(n for n in matches if beam.nodes[n].pruned or n not in filtered.visible)
    line = filtered.match_summary(word)
    assert line.startswith(f"{len(matches):,} nodes match") and "hidden by a filter" in line
    assert tree_view(beam, ViewOptions(query="zzz")).match_summary("zzz").startswith("0 nodes match")


@pytest.mark.parametrize("seed", range(6))
def test_random_options_give_consistent_views(seed: int) -> None:
    rng = random.Random(seed)
    tree = random_tree(300, seed)
    for node_id in rng.sample(sorted(tree.nodes), 40):
        tree.nodes[node_id].pruned = node_id != 0
    for node_id in tree.nodes:
        tree.nodes[node_id].text = rng.choice(["add 3", "Subtract 4", "multiply"])
    tree.chosen = {"node": max(tree.nodes, key=lambda n: tree.nodes[n].depth)}
    for _ in range(10):
        options = ViewOptions(
            folded=frozenset(rng.sample(sorted(tree.nodes), 8)),
            fold_depth=rng.choice([None, 2, 4]),
            hide_pruned=rng.random() < 0.5,
            chosen_path_only=rng.random() < 0.3,
            query=rng.choice(["", "ADD", "subtract 4"]),
        )
        view = tree_view(tree, options)
        check_consistent(tree, view)
        positions = tidy_layout(tree, view.visible)
        assert set(positions) == view.visible


def pixel_positions(frame) -> np.ndarray:
    """Marker centres in px on the narrowest chart, the axes spanning the data (plotly's autorange
    adds padding, which only spreads them further)."""
    xy = np.array(list(frame.positions.values()), dtype=float)
    span = np.maximum(xy.max(axis=0) - xy.min(axis=0), 1.0)
    room = np.array([MIN_CHART_WIDTH - 20, frame.height - 20 - frame.max_marker], dtype=float)
    return (xy - xy.min(axis=0)) / span * room


@pytest.mark.parametrize("size", [16, 200, 1000])
def test_no_two_nodes_overlap_on_the_chart_at_every_size(size: int) -> None:
    tree = random_tree(size, seed=size)
    frame = chart_frame(tidy_layout(tree))
    px = pixel_positions(frame)
    gaps = np.sqrt(((px[:, None, :] - px[None, :, :]) ** 2).sum(axis=-1))
    np.fill_diagonal(gaps, np.inf)
    assert gaps.min() >= frame.max_marker, f"markers of {frame.max_marker} px overlap: {gaps.min():.1f} px apart"
    for k, leaf in enumerate(n for n in tree if not n.children):  # answers: ★ right, ✕ wrong, ◆ unchecked
        leaf.terminal, leaf.correct = True, (True, False, None)[k % 3]
        leaf.visits = 50  # an MCTS visits a good answer again and again: the biggest markers
    markers = tree_figure(tree, tidy_layout(tree)).data[-3:]
    reach = [s * SYMBOL_REACH[m] for t in markers for s, m in zip(t.marker.size, t.marker.symbol, strict=True)]
    assert {m for t in markers for m in t.marker.symbol} == set(SYMBOL_REACH)
    # what a symbol draws must fit the room too: neighbouring ✕ (1.13 x their size) touched
    assert max(reach) <= frame.max_marker + 1e-9, f"a {max(reach):.1f}-px symbol in {frame.max_marker:.1f} px of room"


def test_height_grows_with_the_tree_and_big_trees_run_left_to_right(beam: Tree) -> None:
    frames = [chart_frame(tidy_layout(random_tree(size, seed=size))) for size in (16, 200, 1000)]
    assert frames[0].orientation == "top-down" and frames[0].height == 560
    assert frames[2].orientation == "left-right"
    assert frames[0].height <= frames[1].height < frames[2].height
    figure = tree_figure(beam, tidy_layout(beam))
    assert figure.layout.height == chart_frame(tidy_layout(beam)).height > BASE_HEIGHT
    forced = chart_frame(tidy_layout(random_tree(200, 1)), "top-down")
    assert forced.orientation == "top-down"
    with pytest.raises(ValueError, match="orientation"):
        chart_frame({0: (0.0, 0.0)}, "sideways")


#: The chart's plot area is cut into square cells of this size (px) to measure how much of it holds nodes.
CELL_PX = 56


def space_use(frame) -> tuple[float, float, float]:
    """How a frame uses the narrowest chart: (plot area per node in px², the share of CELL_PX
    cells holding a node, the closest two marker centres in px), the axes spanning the data."""
    xy = np.array(list(frame.positions.values()), dtype=float)
    span = np.maximum(xy.max(axis=0) - xy.min(axis=0), 1.0)
    room = np.array([PLOT_WIDTH, frame.height - MARGIN_PX - frame.max_marker], dtype=float)
    px = (xy - xy.min(axis=0)) / span * room
    cells = np.maximum(np.round(room / CELL_PX), 1).astype(int)
    used = {tuple(c) for c in np.minimum((px / room * cells).astype(int), cells - 1)}
    gaps = np.sqrt(((px[:, None, :] - px[None, :, :]) ** 2).sum(axis=-1))
    np.fill_diagonal(gaps, np.inf)
    return float(room.prod() / len(xy)), len(used) / int(cells.prod()), float(gaps.min())


@pytest.mark.parametrize("fold_depth", [None, 1, 2, 3])
def test_a_big_tree_fills_the_chart_in_both_directions(beam: Tree, fold_depth: int | None) -> None:
    """The 1,001-node beam, whole and folded at a depth, spreads over the chart's width and height
    instead of a thin diagonal strip (Reingold-Tilford left to right: 5,900-7,100 px² per node
    and 12-17% of the cells used; one row per leaf, 13,344 px tall), with no two markers touching."""
    view = tree_view(beam, ViewOptions(fold_depth=fold_depth))
    frame = chart_frame(tidy_layout(beam, view.visible))
    area, cells, gap = space_use(frame)
    assert area <= 2500, f"{area:.0f} px² of chart per node: the tree leaves most of the chart empty"
    assert cells >= 0.3, f"only {cells:.0%} of the chart's {CELL_PX}-px cells hold a node"
    assert gap >= frame.max_marker, f"markers of {frame.max_marker} px overlap: {gap:.1f} px apart"
    assert frame.height <= 1600, f"{frame.height} px tall for {len(view.visible)} nodes"


def test_the_figure_draws_only_visible_nodes_by_id_with_folds_and_matches(beam: Tree) -> None:
    node = next(n for n in beam if n.depth == 2 and len(descendants(beam, n.id)) > 3)
    word = beam.nodes[beam.chosen["node"]].text.split()[0]
    view = tree_view(beam, ViewOptions(folded=frozenset({node.id}), hide_pruned=True, query=word))
    figure = tree_figure(beam, tidy_layout(beam, view.visible), view=view, selected=node.id)
    drawn = [int(i) for t in figure.data[-3:] for i in t.customdata]
    assert sorted(drawn) == sorted(view.visible), "node markers are the last three traces, with node ids"
    labels = next(t for t in figure.data if t.mode == "markers+text")
    k = view.hidden_below[node.id]
    assert f"node {node.id}: +{k:,} hidden below (folded)" in labels.hovertext
    text = labels.text[sorted(view.hidden_below).index(node.id)]
    assert text in (f"+{k:,} hidden", f"+{k:,}"), "a crowded row shortens the label; this size never hides it"
    assert len(labels.text) == len(view.hidden_below)
    rings = [t for t in figure.data if isinstance(t.marker.line.color, str) and t.marker.line.color == "#c2185b"]
    assert len(rings) == 1 and len(rings[0].x) == len([m for m in view.matches if m in view.visible])


def test_marker_sizes_keep_encoding_visits_within_the_room() -> None:
    tree = run_search(
        PROBLEM, task="arith", strategy="mcts", models=scripted_models(), config={"simulations": 300, "expand_width": 4}
    ).tree
    figure = tree_figure(tree, tidy_layout(tree))
    sizes = {int(i): s for t in figure.data[-3:] for i, s in zip(t.customdata, t.marker.size, strict=True)}
    frame = chart_frame(tidy_layout(tree))
    assert max(sizes.values()) <= frame.max_marker
    # size encodes visits (terminal symbols are capped by their reach: SYMBOL_REACH)
    order = sorted((n for n in tree.nodes if not tree.nodes[n].terminal), key=lambda n: tree.nodes[n].visits)
    assert all(sizes[a] <= sizes[b] for a, b in itertools.pairwise(order))
    assert sizes[order[-1]] > sizes[order[0]]


# ---------------------------------------------------------------- the pages (AppTest)
@pytest.mark.parametrize("page", ["search", "replay"])
def test_pages_fold_filter_and_find(scripted: Path, page: str) -> None:  # noqa: F811 - fixture
    run_id = record(scripted, Models(ScriptedPolicy(), ScriptedPRM()), strategy="beam", n=8, beam_width=2)
    prefix = "view" if page == "search" else "replay-view"
    at = app("reasoning_viz/pages/replay.py" if page == "replay" else None, run=str(run_id))
    assert not at.exception, at.exception
    total = len(_tree(scripted, run_id)) - 1  # as the nodes metric counts
    assert any(c.value.startswith(f"Showing all {total}") for c in at.caption)
    at.toggle(key=f"{prefix}-hide-pruned").set_value(True).run()
    shown = next(c.value for c in at.caption if c.value.startswith("Showing"))
    assert shown.startswith("Showing ") and f"of {total} nodes" in shown
    at.text_input(key=f"{prefix}-find").set_value("add").run()
    assert any(" match “add”" in c.value for c in at.caption)
    pick = f"pick-run-{run_id}" if page == "search" else f"replay-pick-{run_id}"
    at.number_input(key=pick).set_value(1).run()
    fold = next(b for b in at.button if b.label.startswith("➖ Fold node 1"))
    fold.click().run()
    assert not at.exception, at.exception
    assert any(b.label.startswith("➕ Unfold node 1 (+") for b in at.button)
    assert any(b.label == "Unfold all" for b in at.button)


def _tree(db: Path, run_id: int) -> Tree:
    from storage import Store

    with Store.open(db) as store:
        return Tree.from_events(store.events(run_id))


def test_fold_labels_shorten_and_then_vanish_in_a_crowded_row() -> None:
    from reasoning_viz.figures import fold_labels
    from reasoning_viz.layout import PLOT_WIDTH

    hidden = {n: n * 3 for n in range(1, 41)}
    wide = {n: (n * 1.0, 2.0) for n in range(1, 5)}  # 4 columns: about 110 px apart
    assert fold_labels(list(wide), wide, "top-down", hidden) == [f"+{n * 3} hidden" for n in range(1, 5)]
    some = {n: (n * 1.0, 2.0) for n in range(1, 13)}  # 12 columns: about 37 px apart
    assert fold_labels(list(some), some, "top-down", hidden)[:2] == ["+3", "+6"]
    crowd = {n: (n * 1.0, 2.0) for n in range(1, 41)}  # 40 columns: about 11 px apart
    assert set(fold_labels(list(crowd), crowd, "top-down", hidden)) == {""}
    assert fold_labels(list(crowd), crowd, "top-down", hidden, plot_px=PLOT_WIDTH * 10)[0] == "+3 hidden"
    # a row of one among many columns keeps its full label; left to right every label is full
    lone = {**crowd, 99: (20.0, 5.0)}
    assert fold_labels([99], lone, "top-down", {99: 7}) == ["+7 hidden"]
    assert all(t.endswith("hidden") for t in fold_labels(list(crowd), crowd, "left-right", hidden))


def test_a_chosen_layout_is_laid_out_for_it_not_squeezed_from_the_other(beam: Tree) -> None:
    """Forcing top-down on a tree "auto" lays out left to right drew the packed layout's staggered
    slots as a narrow strip; then one level per depth gave every node its own column, and on a
    1,000-node tree 434 columns in 450 px overlapped (#17).  Now a too-wide tree forced top-down
    is staggered within each depth's band: depths still go down band by band, at most
    `MAX_COLUMNS` columns, no two markers closer than the marker size."""
    auto = tidy_layout(beam)
    assert auto.orientation == "left-right"
    down = tidy_layout(beam, orientation="top-down")
    assert down.orientation == "top-down" and set(down) == set(auto)
    for parent in beam:
        for child in parent.children:
            assert down[child][1] > down[parent.id][1], "a child drawn above its parent"
    deepest = {d: max(y for n, (_, y) in down.items() if beam.nodes[n].depth == d) for d in range(9)}
    shallowest = {d: min(y for n, (_, y) in down.items() if beam.nodes[n].depth == d) for d in range(9)}
    assert all(deepest[d] < shallowest[d + 1] for d in range(8) if d + 1 in shallowest), "depth bands mixed"
    xs = [x for x, _ in down.values()]
    assert max(xs) - min(xs) + 1 <= MAX_COLUMNS
    frame = chart_frame(down, "top-down")
    px = pixel_positions(frame)
    gaps = np.sqrt(((px[:, None, :] - px[None, :, :]) ** 2).sum(axis=-1))
    np.fill_diagonal(gaps, np.inf)
    assert gaps.min() >= frame.max_marker >= MIN_MARKER, f"markers overlap: {gaps.min():.1f} px apart"
    narrow = random_tree(16, seed=16)  # a tree that fits keeps one level per depth
    assert {y for _, y in tidy_layout(narrow, orientation="top-down").values()} == {float(n.depth) for n in narrow}
    path = {n.id for n in beam.path(beam.chosen["node"])}  # a narrow tree: auto lays it out top-down
    assert tidy_layout(beam, path).orientation == "top-down"
    assert tidy_layout(beam, path, orientation="left-right").orientation == "left-right"
    with pytest.raises(ValueError, match="orientation"):
        tidy_layout(beam, orientation="sideways")
