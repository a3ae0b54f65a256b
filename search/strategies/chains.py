"""Whole-chain strategies: greedy, sampling, self-consistency and best-of-N.

All four grow N independent chains step by step (batched across chains, one policy call
per depth) and differ only in temperature, N and how the answer is chosen afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from search.answer import AnswerMethod
from search.config import StrategyConfig, knob, require
from search.context import SearchContext
from search.registry import register
from search.scoring import Aggregation
from search.tree import ROOT_ID


def grow_chains(ctx: SearchContext, n: int) -> list[int]:
    """Grow n chains from the root until each is terminal or at max depth; return the leaves."""
    leaves = ctx.expand([ROOT_ID], n)[0]
    while True:
        active = [leaf for leaf in leaves if ctx.is_open(leaf)]
        _prune_at_depth(ctx, leaves)
        ctx.report_spend()
        if not active:
            return leaves
        children = ctx.expand(active, 1)
        extended = {parent: kids[0] for parent, kids in zip(active, children, strict=True) if kids}
        leaves = [extended.get(leaf, leaf) for leaf in leaves]
        if not extended:
            return leaves


def _prune_at_depth(ctx: SearchContext, nodes: list[int]) -> None:
    for node_id in nodes:
        node = ctx.node(node_id)
        if not node.terminal and node.depth >= ctx.config.max_depth:
            ctx.prune(node_id, f"reached max_depth={ctx.config.max_depth} without an answer")


@dataclass(frozen=True, kw_only=True)
class GreedyConfig(StrategyConfig):
    temperature: float = knob(0.0, "Greedy decoding always uses temperature 0.")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.temperature == 0, "greedy uses temperature 0; choose 'sampling' for temperature > 0.")


@dataclass(frozen=True, kw_only=True)
class SamplingConfig(StrategyConfig):
    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.temperature > 0, "sampling needs temperature > 0; choose 'greedy' for temperature 0.")


@dataclass(frozen=True, kw_only=True)
class SelfConsistencyConfig(StrategyConfig):
    n: int = knob(8, "How many independent chains to sample before voting.")
    answer_method: AnswerMethod = knob("majority", "majority: the most frequent answer wins (self-consistency).")

    @property
    def max_solutions(self) -> int:
        return self.n

    def __post_init__(self) -> None:
        super().__post_init__()
        require(1 <= self.n <= 1024, f"n must be between 1 and 1024 (got {self.n}).")
        require(self.temperature > 0, "self-consistency needs temperature > 0, or all chains are identical.")


@dataclass(frozen=True, kw_only=True)
class BestOfNConfig(StrategyConfig):
    n: int = knob(8, "How many independent chains to sample and rank.")
    ranker: Literal["prm", "orm"] = knob(
        "prm", "prm: rank by aggregated step scores; orm: one outcome-verifier score per chain."
    )
    aggregation: Aggregation = knob("min", "How step scores become a chain score: min, prod, last or mean.")

    @property
    def max_solutions(self) -> int:
        return self.n

    def __post_init__(self) -> None:
        super().__post_init__()
        require(1 <= self.n <= 1024, f"n must be between 1 and 1024 (got {self.n}).")
        require(self.temperature > 0, "best-of-N needs temperature > 0, or all chains are identical.")
        require(self.ranker == "prm" or self.answer_method != "majority", "majority ignores the ranker.")

    @property
    def ranks_with(self) -> str:
        return self.ranker


@register("greedy", GreedyConfig, "One chain, always the likeliest next token: the baseline.")
def greedy(ctx: SearchContext) -> None:
    ctx.score(grow_chains(ctx, 1))


@register("sampling", SamplingConfig, "One chain sampled at the chosen temperature.")
def sampling(ctx: SearchContext) -> None:
    ctx.score(grow_chains(ctx, 1))


def _chains(size: int) -> dict[str, int]:
    return {"n": size}


@register(
    "self_consistency", SelfConsistencyConfig, "Sample N chains and take the majority answer.", scale=_chains
)
def self_consistency(ctx: SearchContext) -> None:
    ctx.score(grow_chains(ctx, ctx.config.n))


@register(
    "best_of_n", BestOfNConfig, "Sample N chains; a reward model ranks them (or weights a vote).", scale=_chains
)
def best_of_n(ctx: SearchContext) -> None:
    leaves = grow_chains(ctx, ctx.config.n)
    finished = [leaf for leaf in leaves if ctx.node(leaf).terminal]
    if ctx.config.ranker == "orm":
        ctx.score_outcome(finished)
    ctx.score(leaves)
