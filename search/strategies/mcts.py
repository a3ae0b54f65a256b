"""AlphaZero-style MCTS over reasoning steps.

One simulation: descend from the root by UCT or PUCT to a leaf, expand it with k proposed
steps, value each child (PRM, Monte-Carlo rollouts as in Math-Shepherd, or a mix), and back
each value up the path (mean or max).  Whenever the descent turns away from the path it
extended last, a `backtracked` event records the numbers that made the other branch win.
"""

from __future__ import annotations

from dataclasses import dataclass

from search.config import StrategyConfig, knob, require, require_choice
from search.context import SearchContext
from search.events import EventKind
from search.registry import register
from search.scoring import ChildStats, Choice, rank_children
from search.tree import ROOT_ID


@dataclass(frozen=True, kw_only=True)
class MCTSConfig(StrategyConfig):
    simulations: int = knob(32, "How many select-expand-evaluate-backup rounds to run.")
    rule: str = knob("puct", "uct: Q + c*sqrt(ln N / n); puct: Q + c*P*sqrt(N)/(1+n) with the policy's prior P.")
    c: float = knob(1.0, "Exploration constant: larger values try less-visited steps more often.")
    expand_width: int = knob(3, "k: how many next steps are proposed when a leaf is expanded.")
    value_source: str = knob(
        "prm",
        "How a new step is valued: prm (the reward model), rollout (finish the solution and "
        "grade it, Math-Shepherd), or mix (weighted blend).",
    )
    mix_weight: float = knob(0.5, "With value_source=mix: weight of the PRM value (the rest is rollouts).")
    rollouts: int = knob(2, "Rollouts per new step when rollouts are used.")
    rollout_scorer: str = knob(
        "prm",
        "How a finished rollout is graded: prm (the learned outcome verifier) or checker (the "
        "task's exact checker: Math-Shepherd labelling, not a fair test-time search).",
    )
    backup: str = knob("mean", "How values combine up the tree: mean (average) or max (best found below).")
    answer_method: str = knob("most_visits", "most_visits or best_value pick among solutions; votes also work.")

    ALLOWED_ANSWER_METHODS = ("most_visits", "best_value", "argmax", "majority", "prm_vote")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.simulations >= 1, f"simulations must be at least 1 (got {self.simulations}).")
        require(self.c >= 0, f"c must be >= 0 (got {self.c}); it scales exploration.")
        require(self.expand_width >= 1, f"expand_width must be at least 1 (got {self.expand_width}).")
        require_choice("rule", self.rule, ("uct", "puct"))
        require_choice("value_source", self.value_source, ("prm", "rollout", "mix"))
        require_choice("rollout_scorer", self.rollout_scorer, ("prm", "checker"))
        require_choice("backup", self.backup, ("mean", "max"))
        require(0 <= self.mix_weight <= 1, f"mix_weight must be between 0 and 1 (got {self.mix_weight}).")
        require(self.rollouts >= 1, f"rollouts must be at least 1 (got {self.rollouts}).")
        require(
            self.value_source == "prm" or self.temperature > 0 or self.rollouts == 1,
            "several rollouts at temperature 0 are identical: raise temperature or set rollouts=1.",
        )


@register("mcts", MCTSConfig, "Monte-Carlo tree search: UCT/PUCT selection, PRM or rollout values, backup.")
def mcts(ctx: SearchContext) -> None:
    last_path: list[int] = []
    for _ in range(ctx.config.simulations):
        path = _select(ctx, last_path)
        leaf = path[-1]
        if ctx.node(leaf).expanded:
            ctx.prune(leaf, "every continuation below it was a dead end")
            _backup(ctx, path, 0.0)
        elif ctx.is_open(leaf):
            children = ctx.expand([leaf], ctx.config.expand_width)[0]
            for child, value in zip(children, evaluate(ctx, children), strict=True):
                _backup(ctx, [*path, child], value)
            last_path = path
        else:
            _backup(ctx, path, _leaf_value(ctx, leaf))
            last_path = path
        ctx.report_budget()


def _select(ctx: SearchContext, last_path: list[int]) -> list[int]:
    """Descend by the selection rule; record each choice and the first turn off `last_path`."""
    path = [ROOT_ID]
    turned = False
    while ctx.node(path[-1]).expanded:
        node_id = path[-1]
        options = [c for c in ctx.node(node_id).children if not ctx.node(c).pruned]
        if not options:
            break
        ranked = _rank(ctx, node_id, options)
        chosen = ranked[0]
        _record_selection(ctx, node_id, ranked)
        depth = len(path)
        previous = last_path[depth] if depth < len(last_path) and last_path[depth - 1] == node_id else None
        if not turned and previous is not None and previous != chosen.node:
            _record_backtrack(ctx, last_path, node_id, chosen, next(r for r in ranked if r.node == previous))
            turned = True
        path.append(chosen.node)
    return path


def _rank(ctx: SearchContext, node_id: int, options: list[int]) -> list[Choice]:
    stats = [
        ChildStats(node=c, q=ctx.q_value(c), visits=ctx.node(c).visits, prior=ctx.node(c).prior or 0.0) for c in options
    ]
    return rank_children(stats, ctx.node(node_id).visits, ctx.config.c, ctx.config.rule)


def _record_selection(ctx: SearchContext, parent: int, ranked: list[Choice]) -> None:
    ctx.emit(
        EventKind.SELECTED,
        node=ranked[0].node,
        parent=parent,
        rule=ctx.config.rule,
        c=ctx.config.c,
        parent_visits=ctx.node(parent).visits,
        candidates=[choice.to_json() for choice in ranked],
    )


def _record_backtrack(ctx: SearchContext, last_path: list[int], at: int, chosen: Choice, old: Choice) -> None:
    leaf = last_path[-1]
    leaf_q = ctx.q_value(leaf)
    reason = (
        f"node {chosen.node} now scores {chosen.score:.3f} (Q {chosen.q:.3f} + exploration "
        f"{chosen.exploration:.3f}) against {old.score:.3f} (Q {old.q:.3f} + exploration "
        f"{old.exploration:.3f}) for node {old.node} on the previous path, whose leaf {leaf} "
        f"is valued {leaf_q:.3f}"
    )
    ctx.emit(
        EventKind.BACKTRACKED,
        from_node=leaf,
        to_node=at,
        reason=reason,
        breakdown={"chosen": chosen.to_json(), "previous": old.to_json(), "leaf_value": round(leaf_q, 6)},
    )


def evaluate(ctx: SearchContext, nodes: list[int]) -> list[float]:
    """Value of each new node under `value_source` (batched over the nodes)."""
    if not nodes:
        return []
    source = ctx.config.value_source
    prm_values = _prm_values(ctx, nodes) if source in ("prm", "mix") else None
    if source == "prm":
        return prm_values
    rollout_values = [_rollout_value(ctx, n) for n in nodes]
    if source == "rollout":
        return rollout_values
    w = ctx.config.mix_weight
    return [w * p + (1 - w) * r for p, r in zip(prm_values, rollout_values, strict=True)]


def _prm_values(ctx: SearchContext, nodes: list[int]) -> list[float]:
    ctx.score(nodes)
    return [ctx.path_value(n, ctx.config.aggregation) for n in nodes]


def _rollout_value(ctx: SearchContext, node_id: int) -> float:
    """Mean outcome of rollouts from the node (a finished node is graded as it stands)."""
    if ctx.node(node_id).terminal:
        return _graded_outcome(ctx, node_id)
    values = ctx.rollout(node_id, ctx.config.rollouts, ctx.config.temperature, ctx.config.rollout_scorer)
    value = sum(values) / len(values)
    ctx.emit(EventKind.NODE_SCORED, node=node_id, source="rollout", value=round(value, 6), step_scores=None)
    return value


def _graded_outcome(ctx: SearchContext, node_id: int) -> float:
    node = ctx.node(node_id)
    if ctx.config.rollout_scorer == "checker":
        return 1.0 if node.correct else 0.0
    if node.answer is None:
        return 0.0
    ctx.score_outcome([node_id])
    return ctx.node(node_id).scores["orm"]


def _leaf_value(ctx: SearchContext, leaf: int) -> float:
    """Value re-used when the descent ends at a finished or depth-capped leaf."""
    node = ctx.node(leaf)
    if leaf == ROOT_ID:
        return 0.0
    if not node.terminal and not node.pruned:
        ctx.prune(leaf, f"reached max_depth={ctx.config.max_depth} without an answer")
        return 0.0
    if node.terminal and node.answer is None:
        return 0.0
    return ctx.q_value(leaf) if node.visits else evaluate(ctx, [leaf])[0]


def _backup(ctx: SearchContext, path: list[int], value: float) -> None:
    ctx.emit(EventKind.BACKPROPAGATED, path=path, value=round(value, 6))
