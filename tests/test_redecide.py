"""Re-deciding a finished run over its stored tree: the run's own settings give the recorded
answer for every strategy; other aggregations and rules give the answer worked out by hand."""

from __future__ import annotations

import pytest

from search import Tree, run_search
from search.redecide import answer_methods, redecide, redecide_grid
from search.tree import Node
from tests.engine_cases import CASES, PROBLEM, scripted_models


@pytest.mark.parametrize("case", list(CASES))
def test_the_runs_own_settings_give_the_recorded_answer(case: str) -> None:
    strategy, config = CASES[case]
    tree = run_search(PROBLEM, task="arith", strategy=strategy, models=scripted_models(), config=config).tree
    again = redecide(tree)
    recorded = tree.chosen
    assert (again.answer, again.node, again.method) == (recorded["answer"], recorded["node"], recorded["method"])
    assert again.correct == tree.chosen["correct"]
    assert again.table == tree.chosen["table"]


def two_solutions(**config) -> Tree:
    """Root -> three solutions of three steps: A writes 112 (right) with PRM steps 0.9, 0.1, 0.9;
    B and C write 111 (wrong) with 0.6, 0.6, 0.6 and 0.2, 0.2, 0.2."""
    meta = {"task": "arith", "problem": PROBLEM, "strategy": "best_of_n", "config": {"n": 3, **config}}
    tree = Tree(meta={**meta, "reference": None})
    tree.nodes[0] = Node(0, None, 0)
    solutions = [("112", [0.9, 0.1, 0.9]), ("111", [0.6, 0.6, 0.6]), ("111", [0.2, 0.2, 0.2])]
    next_id = 1
    for answer, scores in solutions:
        parent = 0
        for depth, score in enumerate(scores, start=1):
            node = Node(next_id, parent, depth, text=f"step {depth}")
            node.scores["prm"] = score
            tree.nodes[next_id] = node
            tree.nodes[parent].children.append(next_id)
            parent, next_id = next_id, next_id + 1
        leaf = tree.nodes[parent]
        leaf.terminal, leaf.answer, leaf.step_scores["prm"] = True, answer, list(scores)
    return tree


@pytest.mark.parametrize(
    ("aggregation", "method", "answer", "node", "correct"),
    [
        ("last", "argmax", "112", 3, True),  # A 0.9 > B 0.6
        ("mean", "argmax", "112", 3, True),  # A 0.633 > B 0.6
        ("min", "argmax", "111", 6, False),  # A 0.1 < B 0.6
        ("prod", "argmax", "111", 6, False),  # A 0.081 < B 0.216
        ("last", "majority", "111", 6, False),  # two votes against one
    ],
)
def test_aggregation_and_rule_change_the_answer(aggregation, method, answer, node, correct) -> None:
    found = redecide(two_solutions(), aggregation=aggregation, method=method)
    assert (found.answer, found.node, found.correct) == (answer, node, correct)


def test_weighted_vote_sums_aggregated_path_scores() -> None:
    tree = two_solutions()
    assert redecide(tree, aggregation="last", method="prm_vote").answer == "112"  # 0.9 vs 0.6 + 0.2
    assert redecide(tree, aggregation="min", method="prm_vote").answer == "111"  # 0.1 vs 0.6 + 0.2
    assert redecide(tree, aggregation="min", method="prm_vote").table == [
        {"answer": "111", "votes": 0.8},
        {"answer": "112", "votes": 0.1},
    ]


def test_pruned_solutions_stay_out_of_the_pool() -> None:
    tree = two_solutions()
    tree.nodes[6].pruned = True
    assert redecide(tree, aggregation="min", method="argmax").node == 9


def test_grid_lists_every_rule_and_aggregation_the_strategy_allows() -> None:
    tree = two_solutions()
    rows = redecide_grid(tree)
    assert answer_methods(tree) == ("argmax", "majority", "prm_vote")
    assert [(r["rule"], r["aggregation"]) for r in rows] == [
        *(("argmax", how) for how in ("min", "prod", "last", "mean")),
        ("majority", "–"),
        *(("prm_vote", how) for how in ("min", "prod", "last", "mean")),
    ]
    assert {r["answer"]: r["correct"] for r in rows} == {"112": True, "111": False}
    from reasoning_viz.panels import readable_grid

    shown = readable_grid([*rows, {**rows[0], "answer": None, "correct": None}])
    assert {r["answer"]: r["correct"] for r in shown} == {  # words, not bare checkboxes (a fresh user's report)
        "112": "✅ correct", "111": "❌ wrong", "no answer": "not checked"}


def test_unknown_rule_or_aggregation_is_refused() -> None:
    tree = two_solutions()
    with pytest.raises(ValueError, match="aggregation"):
        redecide(tree, aggregation="median")
    with pytest.raises(ValueError, match="most_visits"):
        redecide(tree, method="most_visits")  # an MCTS rule: best-of-N has no visits


def test_eval_counts_what_each_rule_would_have_answered() -> None:
    """`eval --answer-rules`: one tree where argmax/last is right and argmax/min and majority are
    wrong, one where every rule is wrong; the table ranks rules by the share they got right."""
    from search.evaluate import rule_outcomes, rules_table

    right = rule_outcomes(two_solutions())
    assert right["argmax/last"] and right["argmax/mean"] and right["prm_vote/last"]
    assert not right["argmax/min"] and not right["majority"] and not right["prm_vote/min"]
    wrong_tree = two_solutions()
    wrong_tree.nodes[3].answer = "113"
    wrong = rule_outcomes(wrong_tree)
    assert set(wrong) == set(right) and not any(wrong.values())
    table = rules_table([{"rules": right}, {"rules": wrong}, {"rules": {}}], own="majority")  # a failed search: none
    shares = {row["answer rule"]: row["accuracy"] for row in table}
    assert shares["argmax/last"] == 0.5 and shares["majority"] == 0.0 and table[0]["accuracy"] == 0.5
    assert {row["problems"] for row in table} == {2}
    assert [row["answer rule"] for row in table if row["used"]] == ["majority"]
    assert rules_table([{"rules": {}}]) == []
