"""Every strategy's answer pool respects its own knob (search-and-learn: N beams yield at most N solutions)."""

from __future__ import annotations

import pytest

from search import Budget, Models, run_search
from search.fakes import EagerPolicy, ScriptedPRM
from tests.engine_cases import PROBLEM

#: (strategy, config, the most live solutions that may reach the answer rule)
POOLS = [
    ("greedy", {}, 1),
    ("sampling", {"temperature": 1.0}, 1),
    ("self_consistency", {"n": 6}, 6),
    ("best_of_n", {"n": 5}, 5),
    ("beam", {"n": 4, "beam_width": 4}, 4),
    ("beam", {"n": 8, "beam_width": 4}, 8),
    ("beam", {"n": 8, "beam_width": 2}, 8),
    ("beam", {"n": 6, "beam_width": 3}, 6),
    ("dvts", {"n": 4, "beam_width": 2}, 2),
    ("dvts", {"n": 8, "beam_width": 2}, 4),
    ("dvts", {"n": 9, "beam_width": 3}, 3),
]


def _live_solutions(result) -> list[int]:
    return [n.id for n in result.tree.terminals() if not n.pruned]


@pytest.mark.parametrize("finish", [(3, 4), (1, 2), (1, 1)])
@pytest.mark.parametrize("max_nodes", [None, 7, 13])
@pytest.mark.parametrize(("strategy", "config", "pool"), POOLS)
def test_answer_pool_never_exceeds_the_strategys_own_knob(strategy, config, pool, max_nodes, finish) -> None:
    models = Models(policy=EagerPolicy(*finish), prm=ScriptedPRM())
    for seed in (0, 1, 2):
        result = run_search(
            PROBLEM,
            task="arith",
            strategy=strategy,
            models=models,
            config=config,
            budget=Budget(max_nodes=max_nodes),
            seed=seed,
        )
        live = _live_solutions(result)
        assert len(live) <= pool, (strategy, config, seed, live)
        table = next(e for e in result.events if e.kind == "answer_chosen").data["table"]
        assert sum(1 for row in table if "node" in row) <= pool


def test_beam_of_n_counts_finished_beams_against_n_and_says_why_the_rest_were_dropped() -> None:
    """The field report: n=4, beam_width=4 with an eager policy ended with 6 live solutions."""
    models = Models(policy=EagerPolicy(), prm=ScriptedPRM())
    for n in (4, 8):
        result = run_search(PROBLEM, task="arith", strategy="beam", models=models, config={"n": n, "beam_width": 4})
        live = _live_solutions(result)
        assert 1 <= len(live) <= n
        dropped = [node for node in result.tree.terminals() if node.pruned]
        assert dropped and all(f"at most N={n}" in node.prune_reason for node in dropped)
