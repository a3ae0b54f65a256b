"""Tree-of-Thoughts BFS (search/strategies/tot.py): breadth, proposals, merged repeats, and a search
that no checker steers (the checker only grades the chosen answer afterwards)."""

from __future__ import annotations

from collections import Counter

import pytest

from search import Models, run_search
from search.config import ConfigError
from search.events import EventKind
from search.fakes import ScriptedPolicy, ScriptedPRM
from search.tasks.arith import ArithTask
from tests.engine_cases import PROBLEM, scripted_models


def tot(config: dict, *, models: Models | None = None, task: str = "arith", problem: str = PROBLEM, seed: int = 7):
    return run_search(problem, task=task, strategy="tot_bfs", models=models or scripted_models(), config=config,
                      seed=seed)


def test_each_depth_keeps_the_best_breadth_states_and_each_state_proposes_k_steps() -> None:
    result = tot({"breadth": 3, "proposals": 4, "distinct": False})
    tree = result.tree
    assert result.status == "finished"
    depths = Counter(node.depth for node in tree if node.id and not node.pruned)
    assert depths and all(count <= 3 for count in depths.values()), depths
    for node in tree:
        if node.children:
            assert len(node.children) == 4, (node.id, node.children)
    kept = [n for n in tree if n.id and not n.pruned]
    for depth in sorted(depths):
        level = [n for n in tree if n.depth == depth and n.id]
        dropped = [n for n in level if n.pruned]
        best_dropped = max((n.scores["prm"] for n in dropped), default=0.0)
        assert all(n.scores["prm"] >= best_dropped for n in kept if n.depth == depth)
    assert any("below the best 3" in (n.prune_reason or "") for n in tree)


def test_only_kept_open_states_are_expanded() -> None:
    tree = tot({"breadth": 2, "proposals": 3}).tree
    for node in tree:
        if node.id and node.children:
            assert not node.pruned and not node.terminal


def test_identical_proposals_under_one_state_are_merged() -> None:
    """At temperature 0 the scripted policy writes one step k times: one survives per state."""
    result = tot({"breadth": 2, "proposals": 4, "temperature": 0.0})
    tree = result.tree
    merged = [n for n in tree if "same step as sibling" in (n.prune_reason or "")]
    assert merged
    for node in tree:
        live = [tree.nodes[c].text for c in node.children if not tree.nodes[c].pruned]
        assert len(live) == len(set(live))
    assert all(len(tree.nodes[c].text) for c in tree.nodes[0].children)


def test_the_answer_is_the_best_valued_kept_solution() -> None:
    result = tot({"breadth": 3, "proposals": 3})
    tree = result.tree
    finished = [n for n in tree.terminals() if not n.pruned]
    assert finished
    chosen = tree.chosen
    assert chosen["method"] == "argmax"
    assert tree.nodes[chosen["node"]].scores["prm"] == max(n.scores["prm"] for n in finished)


class LyingArith(ArithTask):
    """The arith task with its checker inverted: a search that read the checker would change."""

    name = "arith"

    def check_answer(self, problem, answer, reference):
        return not super().check_answer(problem, answer, reference)

    def check_step(self, problem, previous, step):
        return not super().check_step(problem, previous, step)


def test_the_search_never_reads_the_checker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same trees with an inverted checker: only the `correct` verdicts differ, never the growth."""
    import random

    import search.tasks as tasks

    problems = [PROBLEM] + [ArithTask().generate(random.Random(i), 3).text for i in range(6)]
    config = {"breadth": 2, "proposals": 4, "distinct": False}  # repeats compete for the slots too

    def shape(tree):
        return [(n.id, n.parent, n.text, n.pruned, n.scores.get("prm")) for n in tree], tree.chosen["node"]

    noisy = Models(policy=ScriptedPolicy(), prm=ScriptedPRM(noise=0.9))  # wrong paths survive too
    honest = [tot(config, problem=p, models=noisy).tree for p in problems]
    monkeypatch.setitem(tasks.TASKS, "arith", LyingArith())
    lying = [tot(config, problem=p, models=noisy).tree for p in problems]
    assert [shape(t) for t in honest] == [shape(t) for t in lying]
    assert [n.correct for t in honest for n in t.terminals()] != [n.correct for t in lying for n in t.terminals()]


def test_the_value_model_steers_the_search() -> None:
    """A PRM that prefers wrong steps changes which states survive (the value is what ranks them)."""

    class Backwards(ScriptedPRM):
        def score(self, problem, paths):
            from search.models import StepScores

            return [StepScores(tuple(round(1 - s, 6) for s in r.scores), r.tokens_read)
                    for r in super().score(problem, paths)]

    import random

    problems = [ArithTask().generate(random.Random(i), 3).text for i in range(10)]
    backwards = Models(policy=ScriptedPolicy(), prm=Backwards())
    good = [tot({"breadth": 2, "proposals": 4}, problem=p) for p in problems]
    bad = [tot({"breadth": 2, "proposals": 4}, problem=p, models=backwards) for p in problems]
    kept = {n.text for n in good[0].tree if n.id and not n.pruned}
    assert kept != {n.text for n in bad[0].tree if n.id and not n.pruned}
    assert sum(bool(r.correct) for r in good) > sum(bool(r.correct) for r in bad) + 3


@pytest.mark.parametrize(("knobs", "message"), [({"breadth": 0}, "breadth"), ({"proposals": 0}, "proposals")])
def test_impossible_knobs_are_refused(knobs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tot(knobs)


def test_progress_reports_depth_reached() -> None:
    from search.registry import get_strategy

    result = tot({"breadth": 2, "proposals": 2, "max_depth": 12})
    progress = get_strategy("tot_bfs").progress(result.tree)
    deepest = max(n.depth for n in result.tree)
    assert progress == pytest.approx(deepest / 12)
    assert any(e.kind is EventKind.SPEND for e in result.events)
