"""Shared engine fixtures: the scripted models and one configuration per strategy."""

from __future__ import annotations

from search import Models
from search.fakes import ScriptedPolicy, ScriptedPRM

PROBLEM = "Start with 17. Add 25. Multiply by 3. Subtract 14. What is the result?"

#: One small, fast configuration per strategy (plus MCTS variants covering every value source).
CASES: dict[str, tuple[str, dict]] = {
    "greedy": ("greedy", {}),
    "sampling": ("sampling", {"temperature": 1.0}),
    "self_consistency": ("self_consistency", {"n": 6}),
    "best_of_n": ("best_of_n", {"n": 6, "aggregation": "min"}),
    "best_of_n_orm_vote": ("best_of_n", {"n": 6, "ranker": "orm", "answer_method": "prm_vote"}),
    "beam": ("beam", {"n": 8, "beam_width": 2}),
    "dvts": ("dvts", {"n": 8, "beam_width": 2}),
    "tot_bfs": ("tot_bfs", {"breadth": 3, "proposals": 3}),
    "mcts_puct_prm": ("mcts", {"simulations": 12, "expand_width": 3, "c": 2.0}),
    "mcts_widen": ("mcts", {"simulations": 16, "expand_width": 3, "widen_below": 0.6}),
    "mcts_parallel": ("mcts", {"simulations": 12, "expand_width": 3, "parallel": 4}),
    "mcts_uct_rollout": ("mcts", {"simulations": 8, "rule": "uct", "value_source": "rollout", "rollouts": 2}),
    "mcts_mix_max_selfeval": (
        "mcts",
        {
            "simulations": 8,
            "value_source": "mix",
            "backup": "max",
            "self_evaluate": True,
            "score_source": "prm_x_self_eval",
            "answer_method": "best_value",
        },
    ),
}


def scripted_models() -> Models:
    return Models(policy=ScriptedPolicy(), prm=ScriptedPRM())
