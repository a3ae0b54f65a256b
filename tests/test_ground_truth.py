"""Ground truth beside the verifier, and "Colour by": pure functions of a tree, checked by hand."""

from __future__ import annotations

import pytest

from reasoning_viz.colouring import COLOR_BY, leaf_values, legend, paint
from reasoning_viz.figures import tree_figure
from reasoning_viz.ground_truth import (
    Agreement,
    agreement,
    has_step_checker,
    step_verdicts,
    summarize,
)
from reasoning_viz.layout import tidy_layout
from search import Models, Tree, run_search
from search.fakes import ScriptedPolicy, ScriptedPRM
from search.tasks import TASKS
from search.tree import Node
from tests.engine_cases import CASES, PROBLEM, scripted_models

COUNTDOWN = "Use 2 3 10 to make 15."


def chain_tree(task: str, problem: str, steps: list[tuple[str, float | None]], **meta) -> Tree:
    """A one-chain tree: each step with its PRM score (None: unscored)."""
    tree = Tree(meta={"task": task, "problem": problem, **meta})
    tree.nodes[0] = Node(0, None, 0)
    for i, (text, score) in enumerate(steps, start=1):
        node = Node(i, i - 1, i, text=text)
        if score is not None:
            node.scores["prm"] = score
        tree.nodes[i] = node
        tree.nodes[i - 1].children.append(i)
    return tree


def test_only_arith_and_countdown_have_an_exact_step_checker() -> None:
    assert {name for name, task in TASKS.items() if has_step_checker(task)} == {"arith", "countdown"}


def test_arith_verdicts_mark_the_slip_and_every_step_built_on_it() -> None:
    tree = chain_tree(
        "arith", PROBLEM, [("17 + 25 = 42", 0.9), ("42 * 3 = 125", 0.8), ("125 - 14 = 111", 0.2), ("Answer: 111", 0.3)]
    )
    assert step_verdicts(tree) == {1: True, 2: False, 3: False, 4: False}


def test_countdown_verdicts_follow_the_solver() -> None:
    tree = chain_tree(
        "countdown",
        COUNTDOWN,
        [("3 / 2 = 3/2 (left: 3/2 10)", 0.7), ("3/2 * 10 = 15 (left: 15)", 0.4), ("Answer: 3 / 2 * 10 = 15", 0.9)],
    )
    assert step_verdicts(tree) == {1: True, 2: True, 3: True}
    dead_end = chain_tree("countdown", COUNTDOWN, [("10 - 2 = 8 (left: 3 8)", 0.9)])  # legal, but 15 is out of reach
    illegal = chain_tree("countdown", COUNTDOWN, [("2 * 7 = 14 (left: 3 10 14)", 0.9)])  # 7 is not a number given
    assert step_verdicts(dead_end) == {1: False} and step_verdicts(illegal) == {1: False}


@pytest.mark.parametrize(
    ("score", "verdict", "expected"),
    [
        (0.9, True, Agreement.AGREE),
        (0.1, False, Agreement.AGREE),
        (0.9, False, Agreement.MISSED),
        (0.2, True, Agreement.FLAGGED),
        (0.5, False, Agreement.MISSED),  # the threshold itself reads as "good"
        (None, True, None),
        (0.7, None, None),
    ],
)
def test_agreement_classes(score, verdict, expected) -> None:
    assert agreement(score, verdict, 0.5) == expected


def test_summary_counts_agreements_slips_flags_and_unscored_steps() -> None:
    tree = chain_tree(
        "arith",
        PROBLEM,
        [("17 + 25 = 42", 0.3), ("42 * 3 = 125", 0.8), ("125 - 14 = 111", 0.1), ("Answer: 111", None)],
    )
    from reasoning_viz.figures import step_scores

    summary = summarize(step_scores(tree), step_verdicts(tree))
    assert (summary.checked, summary.wrong_steps) == (4, 3)
    assert (summary.agree, summary.missed, summary.flagged, summary.unscored) == (1, 1, 1, 1)
    assert "missed 1 slip" in summary.sentence() and "PRM ≥ 0.5" in summary.sentence()


def test_truth_paint_colours_each_class_and_leaves_unscored_hollow() -> None:
    tree = chain_tree(
        "arith", PROBLEM, [("17 + 25 = 42", 0.3), ("42 * 3 = 125", 0.8), ("125 - 14 = 111", 0.1), ("Answer: 111", None)]
    )
    p = paint(tree, "truth")
    assert p.values == {1: Agreement.FLAGGED, 2: Agreement.MISSED, 3: Agreement.AGREE}
    figure = tree_figure(tree, tidy_layout(tree), paint=p)
    hollow, coloured = figure.data[-2], figure.data[-1]
    assert sorted(hollow.customdata) == [0, 4] and hollow.marker.color == "#ffffff"
    colours = dict(zip(coloured.customdata, coloured.marker.color, strict=True))
    assert colours == {1: "#9467bd", 2: "#d62728", 3: "#2ca02c"}
    assert "missed a slip" in legend(p) and "flagged a good step" in legend(p)
    assert "faded grey" not in legend(p), "pruned steps keep their class colour here: the legend must not say grey"
    tree.nodes[2].pruned = True  # a caught or missed slip that was pruned keeps its class colour, faded
    pruned = tree_figure(tree, tidy_layout(tree), paint=p).data[-3]
    assert list(pruned.customdata) == [2] and list(pruned.marker.color) == ["#d62728"] and pruned.marker.opacity < 1


def test_a_task_without_checker_says_so_instead_of_colouring() -> None:
    tree = chain_tree("freeform", "What is 2+2?", [("2+2 is 4", 0.9), ("Answer: 4", 0.9)])
    assert step_verdicts(tree) == {}
    p = paint(tree, "truth")
    assert p.values == {} and "no exact step checker" in p.note


def test_noisy_prm_on_a_real_search_gives_every_class() -> None:
    """A PRM noisier than the threshold margin both misses slips and flags good steps."""
    models = Models(policy=ScriptedPolicy(), prm=ScriptedPRM(noise=0.7))
    tree = run_search(PROBLEM, task="arith", strategy="best_of_n", models=models, config={"n": 8}).tree
    p = paint(tree, "truth")
    assert set(p.values.values()) == set(Agreement)
    from reasoning_viz.figures import step_scores

    summary = summarize(step_scores(tree), step_verdicts(tree))
    assert summary.agree + summary.missed + summary.flagged == len(p.values)


def finished(case: str) -> Tree:
    strategy, config = CASES[case]
    return run_search(PROBLEM, task="arith", strategy=strategy, models=scripted_models(), config=config).tree


@pytest.mark.parametrize("key", list(COLOR_BY))
def test_every_colour_by_choice_draws_every_node_once_with_a_matching_scale(key: str) -> None:
    strategy, config = CASES["mcts_mix_max_selfeval"]
    result = run_search(PROBLEM, task="arith", strategy=strategy, models=scripted_models(), config=config)
    tree = result.tree
    p = paint(tree, key, result.events)
    figure = tree_figure(tree, tidy_layout(tree), paint=p)
    pruned, hollow, coloured = figure.data[-3], figure.data[-2], figure.data[-1]
    assert sorted([*pruned.customdata, *hollow.customdata, *coloured.customdata]) == sorted(tree.nodes)
    live = {n.id for n in tree if not n.pruned}
    assert set(coloured.customdata) == {n for n in p.values if n in live}
    assert set(hollow.customdata) == live - set(p.values)
    if p.colors is None:
        assert coloured.marker.colorbar.title.text == COLOR_BY[key]
        assert list(coloured.marker.color) == [p.values[n] for n in coloured.customdata]
    assert p.values, f"this MCTS run has values for {key}"


def test_a_value_model_in_the_prm_slot_is_named_on_the_colour_bar_and_legend() -> None:
    """The countdown value model is read through the PRM slot: its colour bar, menu label and legend
    say so (a teacher reading "PRM score" on a Game-of-24 tree is told the wrong thing)."""
    from dataclasses import replace

    from reasoning_viz.colouring import choice_label

    plain = finished("beam")
    assert paint(plain, "prm").title == choice_label(plain, "prm") == "PRM score"
    assert "score_name" not in plain.meta  # a PRM's run log is unchanged
    models = replace(scripted_models(), score_name="value-model score")
    strategy, config = CASES["beam"]
    result = run_search(PROBLEM, task="arith", strategy=strategy, models=models, config=config)
    tree = result.tree
    assert result.events[0].data["score_name"] == tree.meta["score_name"] == "value-model score"
    p = paint(tree, "prm")
    assert p.title == choice_label(tree, "prm") == "value-model score"
    figure = tree_figure(tree, tidy_layout(tree), paint=p)
    assert figure.data[-1].marker.colorbar.title.text == "value-model score"
    assert tree_figure(tree, tidy_layout(tree)).data[-1].marker.colorbar.title.text == "value-model score"
    assert legend(p).startswith("Colour: value-model score, the value model's score of the state")


def test_the_inspector_and_the_summary_name_a_value_model_as_such() -> None:
    """#17: beside a colour bar saying "value-model score", the inspector's numbers, its path table
    and the checker summary still said "PRM"."""
    from dataclasses import replace

    from reasoning_viz.colouring import choice_label
    from reasoning_viz.figures import step_scores
    from reasoning_viz.inspector import node_numbers, path_rows

    plain = finished("beam")
    leaf = max(plain, key=lambda n: n.depth).id
    assert "PRM" in node_numbers(plain, leaf) and "PRM" in path_rows(plain, leaf)[0]
    strategy, config = CASES["beam"]
    models = replace(scripted_models(), score_name="value-model score")
    tree = run_search(PROBLEM, task="arith", strategy=strategy, models=models, config=config).tree
    numbers, row = node_numbers(tree, leaf), path_rows(tree, leaf)[0]
    assert "PRM" not in numbers and "PRM" not in row
    assert numbers["value-model"] == node_numbers(plain, leaf)["PRM"] and "value-model" in row
    sentence = summarize(step_scores(tree), step_verdicts(tree, TASKS["arith"])).sentence("value-model")
    assert "PRM" not in sentence and "Exact checker vs value-model" in sentence
    # and the colour-by choice, its legend, the score strip and the narration (a fresh user's finding)
    from reasoning_viz.figures import for_scorer, score_strip
    from reasoning_viz.narration import narrate
    from search.events import EventKind

    truth = paint(tree, "truth")
    assert choice_label(tree, "truth") == truth.title == "value-model vs exact checker"
    assert "PRM" not in legend(truth) and "green: value-model agrees" in legend(truth)
    assert for_scorer("PRM agrees", tree) == "value-model agrees" and for_scorer("PRM agrees", plain) == "PRM agrees"
    assert list(score_strip(tree, leaf).data[0].y) == ["value-model"]
    traces = tree_figure(tree, tidy_layout(tree)).data
    hovers = [h for t in traces if t.hovertext is not None for h in t.hovertext if isinstance(h, str)]
    assert any("value-model 0." in h for h in hovers) and not any("prm " in h for h in hovers)
    scored = next(e for e in run_search(PROBLEM, task="arith", strategy=strategy, models=models, config=config).events
                  if e.kind is EventKind.NODE_SCORED and e.data["source"] == "prm")
    assert narrate(scored, tree).startswith("value-model scored node")


def test_the_bundled_value_model_preset_names_its_score() -> None:
    from models.bundle import PRM_PRESETS

    assert PRM_PRESETS["nano-value"].score_name == "value-model score"
    assert {spec.score_name for name, spec in PRM_PRESETS.items() if name != "nano-value"} == {"PRM score"}


def test_colour_values_are_the_nodes_own_numbers() -> None:
    strategy, config = CASES["mcts_mix_max_selfeval"]
    result = run_search(PROBLEM, task="arith", strategy=strategy, models=scripted_models(), config=config)
    tree = result.tree
    assert paint(tree, "q").values == {n.id: n.q_mean for n in tree if n.visits}
    assert paint(tree, "visits").values[0] == tree.root.visits == paint(tree, "visits").cmax
    assert paint(tree, "self_eval").values == {n.id: n.scores["self_eval"] for n in tree if n.self_eval}
    assert paint(tree, "rollout").values == {n.id: n.scores["rollout"] for n in tree if "rollout" in n.scores}
    leaves = leaf_values(result.events)
    assert leaves and all(tree.nodes[n].visits >= 1 for n in leaves)


def test_beam_search_has_no_q_or_visits_and_says_so() -> None:
    tree = finished("beam")
    for key in ("q", "visits", "value", "rollout"):
        p = paint(tree, key)
        assert p.values == {} and "all are drawn hollow" in p.note
    with pytest.raises(ValueError, match="colour by"):
        paint(tree, "nonsense")
