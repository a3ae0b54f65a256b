"""AlphaZero-style MCTS over reasoning steps.

One simulation: descend from the root by UCT or PUCT to a leaf, expand it with k proposed
steps, value each child (PRM, Monte-Carlo rollouts as in Math-Shepherd, or a mix), and back
each value up the path (mean or max).  Whenever the descent turns away from the path it
extended last, a `backtracked` event records the numbers that made the other branch win.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from search.answer import AnswerMethod
from search.config import StrategyConfig, knob, require
from search.context import SearchContext
from search.events import EventKind
from search.registry import register
from search.scoring import ChildStats, Choice, rank_children
from search.tree import ROOT_ID, Tree


@dataclass(frozen=True, kw_only=True)
class MCTSConfig(StrategyConfig):
    simulations: int = knob(32, "How many select-expand-evaluate-backup rounds to run.")
    rule: Literal["uct", "puct"] = knob(
        "puct", "uct: Q + c*sqrt(ln N / n); puct: Q + c*P*sqrt(N)/(1+n) with the policy's prior P."
    )
    c: float = knob(1.0, "Exploration constant: larger values try less-visited steps more often.")
    expand_width: int = knob(3, "k: how many next steps are proposed when a leaf is expanded.")
    distinct: bool = knob(
        True,
        "Merge identical proposals: a step written twice under one parent is pruned as a duplicate, "
        "so visits are not split between copies of the same branch.",
    )
    value_source: Literal["prm", "rollout", "mix"] = knob(
        "prm",
        "How a new step is valued: prm (the reward model), rollout (finish the solution and "
        "grade it, Math-Shepherd), or mix (weighted blend).",
    )
    mix_weight: float = knob(0.5, "With value_source=mix: weight of the PRM value (the rest is rollouts).")
    rollouts: int = knob(2, "Rollouts per new step when rollouts are used.")
    rollout_scorer: Literal["prm", "checker"] = knob(
        "prm",
        "How a finished rollout is graded: prm (the learned outcome verifier) or checker (the "
        "task's exact checker: Math-Shepherd labelling, not a fair test-time search).",
    )
    backup: Literal["mean", "max"] = knob(
        "mean", "How values combine up the tree: mean (average) or max (best found below)."
    )
    answer_method: AnswerMethod = knob(
        "most_visits", "most_visits or best_value pick among solutions; votes also work."
    )
    parallel: int = knob(1, "Leaves selected per wave; >1 uses virtual loss so a wave spreads over different branches.")
    virtual_loss: float = knob(
        1.0, "With parallel > 1: visits (valued 0) added to each node on a path already picked in the wave."
    )

    widen_below: float = knob(
        0.0,
        "Progressive widening by value: when every child of a node the descent reaches is valued below "
        "this, the node is expanded again with expand_width more steps instead of descending (0: never).",
    )
    widen_c: float = knob(
        0.0,
        "Progressive widening by visits (Coulom 2007; Couetoux et al. 2011): a node visited n times may "
        "have up to widen_c * n ** widen_alpha children; while it has fewer, the descent expands it again "
        "with expand_width more steps instead of descending (0: never).",
    )
    widen_alpha: float = knob(
        0.5, "With widen_c: how fast the children a node may have grow with its visits (0 < widen_alpha < 1)."
    )
    max_children: int = knob(16, "With widen_below or widen_c: the most children one node may get.")

    ALLOWED_ANSWER_METHODS = ("most_visits", "best_value", "argmax", "majority", "prm_vote")

    @property
    def max_solutions(self) -> None:
        """MCTS has no solution count knob: every solution the simulations reached may be chosen."""
        return None

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.simulations >= 1, f"simulations must be at least 1 (got {self.simulations}).")
        require(self.c >= 0, f"c must be >= 0 (got {self.c}); it scales exploration.")
        require(self.expand_width >= 1, f"expand_width must be at least 1 (got {self.expand_width}).")
        require(0 <= self.mix_weight <= 1, f"mix_weight must be between 0 and 1 (got {self.mix_weight}).")
        require(self.rollouts >= 1, f"rollouts must be at least 1 (got {self.rollouts}).")
        require(self.parallel >= 1, f"parallel must be at least 1 (got {self.parallel}).")
        require(self.virtual_loss >= 0, f"virtual_loss must be >= 0 (got {self.virtual_loss}).")
        require(0 <= self.widen_below <= 1, f"widen_below must be between 0 and 1 (got {self.widen_below}).")
        require(self.widen_c >= 0, f"widen_c must be >= 0 (got {self.widen_c}); 0 turns widening by visits off.")
        require(0 < self.widen_alpha < 1, f"widen_alpha must be between 0 and 1, exclusive (got {self.widen_alpha}).")
        require(self.max_children >= 1, f"max_children must be at least 1 (got {self.max_children}).")
        require(
            not (self.widen_below or self.widen_c) or self.max_children >= 2 * self.expand_width,
            f"max_children ({self.max_children}) leaves no room to widen: a node gets expand_width "
            f"({self.expand_width}) steps at a time, so widening needs max_children >= {2 * self.expand_width}.",
        )
        require(
            self.value_source == "prm" or self.temperature > 0 or self.rollouts == 1,
            "several rollouts at temperature 0 are identical: raise temperature or set rollouts=1.",
        )

    @property
    def backs_up_by(self) -> str:
        return self.backup


def simulations_done(tree: Tree) -> float | None:
    """Share of the configured simulations run so far (expanded nodes, as each simulation expands one)."""
    simulations = (tree.meta or {}).get("config", {}).get("simulations")
    if not simulations:
        return None
    return sum(1 for node in tree if node.expanded) / simulations


@register(
    "mcts",
    MCTSConfig,
    "Monte-Carlo tree search: UCT/PUCT selection, PRM or rollout values, backup.",
    scale=lambda size: {"simulations": size},
    progress=simulations_done,
)
def mcts(ctx: SearchContext) -> None:
    last_path: list[int] = []
    saturated: set[int] = set()  # nodes whose last expansion added no new step: never widened again
    done = wave = 0
    while done < ctx.config.simulations:
        ctx.raise_if_stopped()  # waves that only revisit finished solutions call no model, so check here too
        wave += 1
        paths = _select_wave(ctx, last_path, min(ctx.config.parallel, ctx.config.simulations - done), wave, saturated)
        last_path = _run_wave(ctx, paths, last_path, saturated)
        done += len(paths)
        ctx.report_spend()


@dataclass
class _Descent:
    """One dry-run descent: the path and the choices made, emitted only once the path is kept."""

    path: list[int]
    choices: list[tuple[int, list[Choice], float]]


def _select_wave(
    ctx: SearchContext, last_path: list[int], size: int, wave: int, saturated: set[int]
) -> list[list[int]]:
    """Up to `size` root-to-leaf paths; virtual loss on picked paths steers later picks elsewhere.

    A descent that ends at a leaf already in the wave ends the wave early (expanding it twice
    would waste a model call), so small trees give short waves.  Each kept descent's `selected`
    events carry the wave number (null when parallel == 1) and the virtual visits that were on
    the chosen child.  With parallel == 1 this is exactly the classic one-simulation loop.
    """
    virtual: dict[int, float] = {}
    paths: list[list[int]] = []
    previous = last_path
    for _ in range(size):
        descent = _descend(ctx, virtual, saturated)
        if any(descent.path[-1] == p[-1] for p in paths):
            break
        _record_descent(ctx, descent, previous, wave if ctx.config.parallel > 1 else None)
        paths.append(descent.path)
        previous = descent.path
        if ctx.config.parallel > 1:
            for node_id in descent.path:
                virtual[node_id] = virtual.get(node_id, 0.0) + ctx.config.virtual_loss
    return paths


def _run_wave(ctx: SearchContext, paths: list[list[int]], last_path: list[int], saturated: set[int]) -> list[int]:
    """Expand every open leaf of the wave in ONE policy call, value all children in one batch, back up.

    A leaf whose expansion added no new step (every proposal repeated a sibling) joins `saturated`.
    Returns the path the next wave compares against for backtracking.
    """
    to_expand: list[list[int]] = []
    for path in paths:
        leaf = path[-1]
        if ctx.node(leaf).expanded and _may_widen(ctx, leaf, saturated):
            to_expand.append(path)
        elif ctx.node(leaf).expanded:
            ctx.prune(leaf, "every continuation below it was a dead end")
            _backup(ctx, path, 0.0)
        elif ctx.is_open(leaf):
            to_expand.append(path)
        else:
            _backup(ctx, path, _leaf_value(ctx, leaf))
            last_path = path
    if not to_expand:
        return last_path
    children = ctx.expand([p[-1] for p in to_expand], ctx.config.expand_width)
    if ctx.config.distinct:
        children = [drop_duplicates(ctx, group) for group in children]
        saturated.update(path[-1] for path, group in zip(to_expand, children, strict=True) if not group)
    values = iter(evaluate(ctx, [c for group in children for c in group]))
    for path, group in zip(to_expand, children, strict=True):
        for child in group:
            _backup(ctx, [*path, child], next(values))
    return to_expand[-1]


def _may_widen(ctx: SearchContext, node_id: int, saturated: set[int]) -> bool:
    """Progressive widening is on and this open node has room for expand_width more children.

    Never a node whose next step the task writes itself (`answer_from_steps`: the same answer line
    every time) or whose last expansion only repeated its children (`saturated`).
    """
    cfg = ctx.config
    room = cfg.max_children - len(ctx.node(node_id).children)
    if not (cfg.widen_below > 0 or cfg.widen_c > 0) or not ctx.is_open(node_id) or room < cfg.expand_width:
        return False
    return node_id not in saturated and ctx.composed_answer(node_id) is None


def _widens_here(ctx: SearchContext, node_id: int, options: list[int], saturated: set[int]) -> bool:
    """Whether the descent stops at this expanded node to expand it again (progressive widening).

    By value (widen_below): every live child is valued below it.  By visits (widen_c, widen_alpha):
    the node has fewer children than widen_c * visits ** widen_alpha (Coulom 2007), so a node the
    search keeps returning to keeps getting new proposals instead of re-deciding among a few.
    """
    cfg = ctx.config
    node = ctx.node(node_id)
    by_value = cfg.widen_below > 0 and max(ctx.q_value(c) for c in options) < cfg.widen_below
    by_visits = cfg.widen_c > 0 and len(node.children) < cfg.widen_c * node.visits**cfg.widen_alpha
    # the cheap tests first: `_may_widen` parses the path's steps (answer_from_steps), at every level of every descent
    return (by_value or by_visits) and _may_widen(ctx, node_id, saturated)


def drop_duplicates(ctx: SearchContext, group: list[int]) -> list[int]:
    """Keep the first child of each distinct step text; prune the copies and say which sibling they repeat.

    Why: a small policy often samples its favourite step several times.  Copies would each get a
    share of the visits (and of the exploration bonus), so the search would spend its budget
    re-deciding between identical branches instead of going deeper.
    """
    if not group:
        return group
    parent = ctx.node(ctx.node(group[0]).parent)
    first = {ctx.node(c).text.strip(): c for c in parent.children if c not in group and not ctx.node(c).pruned}
    kept = []
    for child in group:
        text = ctx.node(child).text.strip()
        if text in first:
            ctx.prune(child, f"same step as sibling {first[text]}: merged into it")
        else:
            first[text] = child
            kept.append(child)
    return kept


def _descend(ctx: SearchContext, virtual: dict[int, float], saturated: set[int]) -> _Descent:
    """Descend by the selection rule, seeing virtual visits, without emitting anything yet."""
    path = [ROOT_ID]
    choices: list[tuple[int, list[Choice], float]] = []
    while ctx.node(path[-1]).expanded:
        node_id = path[-1]
        options = [c for c in ctx.node(node_id).children if not ctx.node(c).pruned]
        if not options or _widens_here(ctx, node_id, options, saturated):
            break
        ranked = _rank(ctx, node_id, options, virtual)
        choices.append((node_id, ranked, virtual.get(ranked[0].node, 0.0)))
        path.append(ranked[0].node)
    return _Descent(path, choices)


def _record_descent(ctx: SearchContext, descent: _Descent, last_path: list[int], wave: int | None) -> None:
    """Emit each choice of a kept descent and the first turn off `last_path`."""
    turned = False
    for depth, (node_id, ranked, applied) in enumerate(descent.choices, start=1):
        chosen = ranked[0]
        _record_selection(ctx, node_id, ranked, wave, applied)
        previous = last_path[depth] if depth < len(last_path) and last_path[depth - 1] == node_id else None
        if not turned and previous is not None and previous != chosen.node:
            _record_backtrack(ctx, last_path, node_id, chosen, next(r for r in ranked if r.node == previous))
            turned = True


def _rank(ctx: SearchContext, node_id: int, options: list[int], virtual: dict[int, float]) -> list[Choice]:
    """Rank children; virtual visits count as visits valued 0 (a mean Q shrinks, a max Q stays)."""
    stats = [_stats(ctx, c, virtual.get(c, 0.0)) for c in options]
    parent_visits = ctx.node(node_id).visits + virtual.get(node_id, 0.0)
    return rank_children(stats, _as_count(parent_visits), ctx.config.c, ctx.config.rule)


def _stats(ctx: SearchContext, node_id: int, extra: float) -> ChildStats:
    node = ctx.node(node_id)
    q = ctx.q_value(node_id)
    if extra and ctx.config.backup == "mean":
        q = q * node.visits / (node.visits + extra)
    return ChildStats(node=node_id, q=q, visits=_as_count(node.visits + extra), prior=node.prior or 0.0)


def _as_count(visits: float) -> int | float:
    """Keep integer visit counts integers (so events and classic runs are unchanged)."""
    return int(visits) if float(visits).is_integer() else visits


def _record_selection(
    ctx: SearchContext, parent: int, ranked: list[Choice], wave: int | None = None, applied: float = 0.0
) -> None:
    ctx.emit(
        EventKind.SELECTED,
        node=ranked[0].node,
        parent=parent,
        rule=ctx.config.rule,
        c=ctx.config.c,
        parent_visits=ctx.node(parent).visits,
        candidates=[choice.to_json() for choice in ranked],
        wave=wave,
        virtual_loss=_as_count(applied),
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
    return ctx.node(node_id).scores.get("orm", 0.0)


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
