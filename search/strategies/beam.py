"""PRM-guided step-level beam search and DVTS, with huggingface/search-and-learn semantics.

Beam search: N proposals from the problem; keep the N/M best by path score; give each kept
beam M continuations (N candidates again); repeat until N solutions are complete or max
depth.  DVTS: N/M independent subtrees, each keeping only its best of M continuations, so
diversity comes from the subtrees rather than from one shared beam.
"""

from __future__ import annotations

from dataclasses import dataclass

from search.config import StrategyConfig, knob, require
from search.context import SearchContext
from search.registry import register
from search.tree import ROOT_ID


@dataclass(frozen=True, kw_only=True)
class BeamConfig(StrategyConfig):
    n: int = knob(16, "N: candidate steps generated per round (and solutions wanted).")
    beam_width: int = knob(4, "M: continuations given to each kept beam; N/M beams survive each round.")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.n >= 1, f"n must be at least 1 (got {self.n}).")
        require(self.beam_width >= 1, f"beam_width must be at least 1 (got {self.beam_width}).")
        require(
            self.beam_width <= self.n,
            f"beam_width ({self.beam_width}) cannot be larger than n ({self.n}): N/M beams must be at least one.",
        )
        require(
            self.n % self.beam_width == 0,
            f"n ({self.n}) must be a multiple of beam_width ({self.beam_width}).",
        )

    @property
    def keep(self) -> int:
        return self.n // self.beam_width

    @property
    def max_solutions(self) -> int:
        return self.n


@dataclass(frozen=True, kw_only=True)
class DVTSConfig(BeamConfig):
    @property
    def max_solutions(self) -> int:
        """One solution per subtree: N/M (search-and-learn's DVTS returns one completion per beam)."""
        return self.keep


def scale_beams(size: int) -> dict[str, int]:
    """N = size candidates per round, M = min(4, N) continuations per kept beam (search-and-learn's width 4)."""
    return {"n": size, "beam_width": min(4, size)}


@register(
    "beam",
    BeamConfig,
    "Step-level beam search: keep the N/M best partial solutions by PRM score.",
    scale=scale_beams,
)
def beam_search(ctx: SearchContext) -> None:
    config: BeamConfig = ctx.config
    completed: list[int] = []
    candidates = ctx.expand([ROOT_ID], config.n)[0]
    while candidates:
        ctx.score(candidates)
        completed = _cap_solutions(ctx, completed + [c for c in candidates if ctx.node(c).terminal], config.n)
        open_ = [c for c in candidates if not ctx.node(c).terminal]
        kept = _keep_best(ctx, open_, config.keep, done=len(completed) >= config.n)
        ctx.report_spend()
        if not kept:
            return
        candidates = [c for group in ctx.expand(kept, _spread(config.n, len(kept))) for c in group]


def _cap_solutions(ctx: SearchContext, completed: list[int], n: int) -> list[int]:
    """Keep the best n completed solutions by path score and prune the rest, saying why.

    search-and-learn's beam search of N returns at most N completed beams (sorted by score);
    finished beams count against N, so one eager round cannot flood the answer rule.
    """
    if len(completed) <= n:
        return completed
    how = ctx.config.aggregation
    ranked = sorted(completed, key=lambda c: (-ctx.path_value(c, how), c))
    for rank, node_id in enumerate(ranked[n:], start=n + 1):
        ctx.prune(
            node_id,
            f"solution ranked {rank} of {len(ranked)} by path score {ctx.path_value(node_id, how):.3f}: "
            f"a beam search keeps at most N={n} solutions",
        )
    return ranked[:n]


def _spread(n: int, beams: int) -> list[int]:
    """Share N continuations over the surviving beams (search-and-learn refills to N)."""
    return [n // beams + (1 if i < n % beams else 0) for i in range(beams)]


def _keep_best(ctx: SearchContext, open_: list[int], keep: int, *, done: bool) -> list[int]:
    """Rank open candidates by path score, prune all but the best `keep`, say why for each."""
    if done:
        for node_id in open_:
            ctx.prune(node_id, "enough complete solutions were found")
        return []
    how = ctx.config.aggregation
    ranked = sorted(open_, key=lambda n: (-ctx.path_value(n, how), n))
    cutoff = ctx.path_value(ranked[keep - 1], how) if len(ranked) >= keep else None
    for rank, node_id in enumerate(ranked[keep:], start=keep + 1):
        ctx.prune(
            node_id,
            f"ranked {rank} of {len(ranked)}: path score {ctx.path_value(node_id, how):.3f} "
            f"below the top {keep} (cut-off {cutoff:.3f})",
        )
    kept = ranked[:keep]
    return [n for n in kept if _within_depth(ctx, n)]


def _within_depth(ctx: SearchContext, node_id: int) -> bool:
    if ctx.node(node_id).depth >= ctx.config.max_depth:
        ctx.prune(node_id, f"reached max_depth={ctx.config.max_depth} without an answer")
        return False
    return True


@register(
    "dvts",
    DVTSConfig,
    "Diverse verifier tree search: N/M independent subtrees, each greedy on PRM.",
    scale=scale_beams,
)
def dvts(ctx: SearchContext) -> None:
    config: BeamConfig = ctx.config
    heads = ctx.expand([ROOT_ID], config.keep)[0]
    ctx.score(heads)
    active = [h for h in heads if not ctx.node(h).terminal and _within_depth(ctx, h)]
    while active:
        ctx.report_spend()
        groups = ctx.expand(active, config.beam_width)
        ctx.score([c for group in groups for c in group])
        active = [best for group in groups if (best := _best_in_subtree(ctx, group)) is not None]
        active = [b for b in active if not ctx.node(b).terminal and _within_depth(ctx, b)]
    ctx.report_spend()


def _best_in_subtree(ctx: SearchContext, group: list[int]) -> int | None:
    """Keep the best of one subtree's M continuations and prune its siblings."""
    if not group:
        return None
    how = ctx.config.aggregation
    best = min(group, key=lambda n: (-ctx.path_value(n, how), n))
    for node_id in group:
        if node_id != best:
            ctx.prune(
                node_id,
                f"path score {ctx.path_value(node_id, how):.3f} lost to sibling {best} "
                f"({ctx.path_value(best, how):.3f}) in its subtree",
            )
    return best
