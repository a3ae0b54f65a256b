"""Tree-of-Thoughts breadth-first search (Yao et al. 2023, "Tree of Thoughts: Deliberate Problem
Solving with Large Language Models", NeurIPS 2023, arXiv:2305.10601; their `methods/bfs.py`).

At each depth every kept state proposes `proposals` next steps; identical proposals under one
state are merged (ToT values a repeated candidate 0 so it is never selected twice); every new
step is valued by the reward model (here a learned value model read through the PRM slot: the
path's last-step score, "can the numbers left still reach the target"); the best `breadth`
candidates over all states are kept, finished solutions competing for the same slots as open
states, as in ToT's greedy selection.  The search ends when no open state is left; the answer
is the best-valued finished solution (argmax).  Only the learned models run inside the search:
the task's checker grades the chosen answer afterwards, never a candidate.

Why not beam search with other knobs: `beam` refills N candidates over N/M beams, keeps
finished solutions outside the beam until N are complete, and never merges duplicates; ToT
gives each kept state the same number of proposals, lets a finished solution take one of the
b slots, and drops repeats, so its trees (and costs) differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from search.config import StrategyConfig, knob, require
from search.context import SearchContext
from search.registry import register
from search.strategies.mcts import drop_duplicates
from search.tree import ROOT_ID, Tree


@dataclass(frozen=True, kw_only=True)
class ToTConfig(StrategyConfig):
    breadth: int = knob(5, "b: states kept at each depth, best value first (ToT's n_select_sample; 5 on Game of 24).")
    proposals: int = knob(
        8, "k: next steps proposed from every kept state at each depth (sampled; repeats are merged)."
    )
    distinct: bool = knob(
        True, "Merge identical proposals under one state: a repeat is pruned, so it cannot take a second slot."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        require(1 <= self.breadth <= 256, f"breadth must be between 1 and 256 (got {self.breadth}).")
        require(1 <= self.proposals <= 256, f"proposals must be between 1 and 256 (got {self.proposals}).")

    @property
    def max_solutions(self) -> None:
        """No fixed count: each depth keeps at most `breadth` solutions, and all kept ones may be chosen."""
        return None


def depth_done(tree: Tree) -> float | None:
    """Share of `max_depth` reached by the deepest node (a BFS grows one depth per round)."""
    config = (tree.meta or {}).get("config", {})
    depth = config.get("max_depth")
    if not depth:
        return None
    return min(1.0, max((node.depth for node in tree), default=0) / depth)


@register(
    "tot_bfs",
    ToTConfig,
    "Tree-of-Thoughts BFS (Yao et al. 2023): k proposals per kept state, keep the best b by value.",
    scale=lambda size: {"breadth": size},
    progress=depth_done,
)
def tot_bfs(ctx: SearchContext) -> None:
    config: ToTConfig = ctx.config
    frontier = [ROOT_ID]
    while frontier:
        groups = ctx.expand(frontier, config.proposals)
        if config.distinct:
            groups = [drop_duplicates(ctx, group) for group in groups]
        candidates = [c for group in groups for c in group]
        ctx.score(candidates)
        kept = _select(ctx, candidates, config.breadth)
        ctx.report_spend()
        frontier = [c for c in kept if not ctx.node(c).terminal and _within_depth(ctx, c)]


def _select(ctx: SearchContext, candidates: list[int], breadth: int) -> list[int]:
    """Keep the `breadth` best candidates by value (ties: lower id), prune the rest and say why."""
    how = ctx.config.aggregation
    ranked = sorted(candidates, key=lambda n: (-ctx.path_value(n, how), n))
    if len(ranked) > breadth:
        cutoff = ctx.path_value(ranked[breadth - 1], how)
        for rank, node_id in enumerate(ranked[breadth:], start=breadth + 1):
            ctx.prune(
                node_id,
                f"ranked {rank} of {len(ranked)} at depth {ctx.node(node_id).depth}: value "
                f"{ctx.path_value(node_id, how):.3f} below the best {breadth} (cut-off {cutoff:.3f})",
            )
    return ranked[:breadth]


def _within_depth(ctx: SearchContext, node_id: int) -> bool:
    if ctx.node(node_id).depth >= ctx.config.max_depth:
        ctx.prune(node_id, f"reached max_depth={ctx.config.max_depth} without an answer")
        return False
    return True
