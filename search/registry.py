"""Strategy registry: every strategy is a small `grow(ctx)` function plus its config class.

Why a registry: the CLI, the app and the eval harness list and build strategies by name,
so adding one is a decorator, not an edit in three places.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from search.config import ConfigError, StrategyConfig
from search.context import SearchContext

GrowFn = Callable[[SearchContext], None]


@dataclass(frozen=True)
class StrategySpec:
    name: str
    grow: GrowFn
    config_cls: type[StrategyConfig]
    summary: str

    def make_config(self, config: StrategyConfig | dict[str, Any] | None) -> StrategyConfig:
        """Accept a ready config, loose key/values, or None for the defaults."""
        if config is None:
            return self.config_cls()
        if isinstance(config, dict):
            return self.config_cls.from_dict(config)
        if not isinstance(config, self.config_cls):
            raise ConfigError(f"{self.name} needs a {self.config_cls.__name__}, got {type(config).__name__}.")
        return config


STRATEGIES: dict[str, StrategySpec] = {}


def register(name: str, config_cls: type[StrategyConfig], summary: str) -> Callable[[GrowFn], GrowFn]:
    """Decorator adding a grow function to the registry under `name`."""

    def wrap(grow: GrowFn) -> GrowFn:
        if name in STRATEGIES:
            raise ValueError(f"strategy {name!r} registered twice")
        STRATEGIES[name] = StrategySpec(name, grow, config_cls, summary)
        return grow

    return wrap


def get_strategy(name: str) -> StrategySpec:
    import search.strategies  # noqa: F401 - registers the built-in strategies

    try:
        return STRATEGIES[name]
    except KeyError:
        raise ConfigError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.") from None


def all_strategies() -> dict[str, StrategySpec]:
    import search.strategies  # noqa: F401

    return dict(STRATEGIES)
