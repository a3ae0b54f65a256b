"""Layout and figure builders are pure functions of a Tree, tested without Streamlit."""

from __future__ import annotations

from reasoning_viz.figures import hover_text, score_strip, tree_figure
from reasoning_viz.layout import tidy_layout
from search import Tree, run_search
from tests.engine_cases import CASES, PROBLEM, scripted_models


def finished(case: str) -> Tree:
    strategy, config = CASES[case]
    return run_search(PROBLEM, task="arith", strategy=strategy, models=scripted_models(), config=config).tree


def test_tidy_layout_places_children_below_parents_without_overlap() -> None:
    tree = finished("beam")
    pos = tidy_layout(tree)
    assert set(pos) == set(tree.nodes)
    for node in tree:
        if node.parent is not None:
            assert pos[node.id][1] == pos[node.parent][1] + 1
    by_depth: dict[float, list[float]] = {}
    for x, y in pos.values():
        by_depth.setdefault(y, []).append(x)
    for xs in by_depth.values():
        assert len(xs) == len(set(xs)), "two nodes share a position"


def test_tree_figure_encodes_scores_visits_and_terminals() -> None:
    tree = finished("mcts_puct_prm")
    figure = tree_figure(tree, tidy_layout(tree), selected=1)
    pruned, unscored, scored = figure.data[-3], figure.data[-2], figure.data[-1]
    assert sorted([*pruned.customdata, *unscored.customdata, *scored.customdata]) == sorted(tree.nodes)
    assert all("prm" in tree.nodes[n].scores for n in scored.customdata)
    assert unscored.marker.color == "#ffffff" and 0 in unscored.customdata  # the root has no PRM score
    assert scored.marker.cmin == 0 and scored.marker.cmax == 1
    ids = [*pruned.customdata, *unscored.customdata, *scored.customdata]
    sizes = dict(zip(ids, [*pruned.marker.size, *unscored.marker.size, *scored.marker.size], strict=True))
    busiest = max(tree, key=lambda n: n.visits)
    assert sizes[busiest.id] == max(sizes.values())
    symbols = dict(zip(ids, [*pruned.marker.symbol, *unscored.marker.symbol, *scored.marker.symbol], strict=True))
    for node in tree.terminals():
        assert symbols[node.id] in ("star", "x", "diamond")
    assert any(trace.line.dash == "dash" for trace in figure.data[:-3]), "backtracks are drawn dashed"


def test_model_text_is_escaped_in_hover_labels() -> None:
    tree = finished("greedy")
    node = tree.nodes[1]
    node.text = "<script>alert(1)</script> <b>bold</b>"
    label = hover_text(node)
    assert "<script>" not in label and "&lt;script&gt;" in label
    assert "<b>bold</b>" not in label


def test_score_strip_shows_one_cell_per_step() -> None:
    tree = finished("beam")
    chosen = tree.chosen["node"]
    strip = score_strip(tree, chosen)
    assert len(strip.data[0].z[0]) == tree.nodes[chosen].depth


def test_safe_markdown_leaves_no_live_markup() -> None:
    from reasoning_viz.text import safe_markdown

    evil = "<script>alert(1)</script> [x](javascript:alert(1)) ![i](http://e/x.png) **b** # h `c`"
    out = safe_markdown(evil)
    for live in ("<script>", "](", "![", "**", "`c`"):
        assert live not in out
    assert out.replace("\\", "") == evil
