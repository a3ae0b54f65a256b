"""Strategy registry: every strategy is a small `grow(ctx)` function plus its config class.

Why a registry: the CLI, the app and the eval harness list and build strategies by name,
so adding one is a decorator, not an edit in three places.  What others need to know about a
strategy travels in its spec (how to scale it to a compute budget, how far a run has got) or
on its config (how values back up, what ranks solutions), never as a field read by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from search.config import ConfigError, StrategyConfig
from search.context import SearchContext
from search.tree import Tree

GrowFn = Callable[[SearchContext], None]
#: Budget size (chains / beams / simulations) -> the knobs that give the strategy that size.
ScaleFn = Callable[[int], dict[str, Any]]
#: A (live) tree -> fraction of the strategy's own work done, 0..1, or None when it has no such measure.
ProgressFn = Callable[[Tree], float | None]


@dataclass(frozen=True)
class StrategySpec:
    name: str
    grow: GrowFn
    config_cls: type[StrategyConfig]
    summary: str
    #: None: the strategy has no size knob (greedy, sampling), so a sweep runs it once.
    scale: ScaleFn | None = None
    progress: ProgressFn | None = None

    def make_config(self, config: StrategyConfig | dict[str, Any] | None) -> StrategyConfig:
        """Accept a ready config, loose key/values, or None for the defaults."""
        if config is None:
            return self.config_cls()
        if isinstance(config, dict):
            knobs = self.config_cls.knob_types()
            unknown = [key for key in config if key not in knobs]
            if unknown:
                raise ConfigError(
                    f"{self.name} has no knob {unknown[0]!r}; its knobs: {', '.join(knobs)} "
                    "(see `python cli.py strategies`)."
                )
            return self.config_cls.from_dict(config)
        if not isinstance(config, self.config_cls):
            raise ConfigError(f"{self.name} needs a {self.config_cls.__name__}, got {type(config).__name__}.")
        return config


STRATEGIES: dict[str, StrategySpec] = {}


def register(
    name: str,
    config_cls: type[StrategyConfig],
    summary: str,
    *,
    scale: ScaleFn | None = None,
    progress: ProgressFn | None = None,
) -> Callable[[GrowFn], GrowFn]:
    """Decorator adding a grow function to the registry under `name`.

    `scale(size)` returns the knobs for a compute budget of `size` (used by sweeps);
    `progress(tree)` the fraction of the strategy's own work done (used by progress bars).
    """

    def wrap(grow: GrowFn) -> GrowFn:
        if name in STRATEGIES:
            raise ValueError(f"strategy {name!r} registered twice")
        STRATEGIES[name] = StrategySpec(name, grow, config_cls, summary, scale, progress)
        return grow

    return wrap


def get_strategy(name: str) -> StrategySpec:
    """The registered strategy `name` (the built-ins register when `search` is imported)."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ConfigError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.") from None


def all_strategies() -> dict[str, StrategySpec]:
    """name -> spec for every registered strategy, in registration order."""
    return dict(STRATEGIES)
