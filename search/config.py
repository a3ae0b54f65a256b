"""Keyword-only, self-validating configuration shared by every strategy.

Why validate on construction: an impossible config (beam width above N, negative c, a zero
budget) should fail with a sentence a learner understands before any model is touched.
Each field's `help` metadata feeds the CLI's `strategies` command and the app's help text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

ScoreSource = Literal["prm", "self_eval", "prm_x_self_eval"]


class ConfigError(ValueError):
    """A configuration that cannot run; the message says which knob and why."""


def knob(default: Any, help: str) -> Any:  # noqa: A002 - mirrors argparse/typer naming
    """A dataclass field carrying its learner-facing help text."""
    return field(default=default, metadata={"help": help})


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def require_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    require(value in choices, f"{name} must be one of {', '.join(choices)} (got {value!r}).")


@dataclass(frozen=True, kw_only=True)
class Budget:
    """Compute limits shared by every strategy so they can be compared at equal cost."""

    max_nodes: int | None = knob(None, "Stop after this many tree nodes (None: no limit).")
    max_tokens: int | None = knob(None, "Stop after the policy generated this many tokens.")
    max_seconds: float | None = knob(None, "Stop after this many wall-clock seconds.")

    def __post_init__(self) -> None:
        for name in ("max_nodes", "max_tokens", "max_seconds"):
            value = getattr(self, name)
            require(value is None or value > 0, f"Budget {name} must be positive or unset (got {value}).")


@dataclass(frozen=True, kw_only=True)
class StrategyConfig:
    """Knobs every strategy has."""

    temperature: float = knob(0.8, "Sampling temperature: 0 always takes the likeliest token; higher explores more.")
    max_depth: int = knob(12, "Most reasoning steps in one path before it is cut off.")
    max_step_tokens: int | None = knob(None, "Longest step in tokens (None: the task's default).")
    self_evaluate: bool = knob(False, "Ask the policy 'is this step correct?' after every new step and record P(yes).")
    score_source: ScoreSource = knob(
        "prm",
        "Which score ranks steps: the PRM, the policy's own P(yes), or their product.",
    )
    aggregation: str = knob(
        "last",
        "How per-step scores become one path score: min (weakest step), prod, last (PRM's view of "
        "the whole prefix) or mean.",
    )
    answer_method: str = knob(
        "argmax",
        "How the final answer is chosen: argmax (best path score), majority (one vote per "
        "solution), prm_vote (votes weighted by path score), most_visits / best_value (MCTS).",
    )
    on_bad_number: str = knob(
        "fail",
        "What a NaN or infinite number from a model (score, log-probability, P(yes)) does: fail (end the "
        "run, naming the model, path and step) or unscored (leave that score out, record an 'unscored' "
        "event, value the node 0).",
    )

    #: Answer methods that make sense for this strategy.
    ALLOWED_ANSWER_METHODS: ClassVar[tuple[str, ...]] = ("argmax", "majority", "prm_vote")

    def __post_init__(self) -> None:
        require(self.temperature >= 0, f"temperature must be >= 0 (got {self.temperature}).")
        require(1 <= self.max_depth <= 200, f"max_depth must be between 1 and 200 (got {self.max_depth}).")
        require(
            self.max_step_tokens is None or self.max_step_tokens > 0,
            f"max_step_tokens must be positive (got {self.max_step_tokens}).",
        )
        require_choice("score_source", self.score_source, ("prm", "self_eval", "prm_x_self_eval"))
        require_choice("aggregation", self.aggregation, ("min", "prod", "last", "mean"))
        require_choice("answer_method", self.answer_method, self.ALLOWED_ANSWER_METHODS)
        require_choice("on_bad_number", self.on_bad_number, ("fail", "unscored"))
        require(
            self.score_source == "prm" or self.self_evaluate,
            f"score_source={self.score_source!r} reads self-evaluation: also set self_evaluate=True.",
        )

    @property
    def max_solutions(self) -> int | None:
        """The most completed solutions this strategy hands the answer rule (None: no fixed cap).

        Greedy and sampling grow one chain; N-chain strategies N; beam search N; DVTS N/M
        (search-and-learn semantics: finished beams count against N).  `decide` enforces it.
        """
        n = getattr(self, "n", None)
        return 1 if n is None else int(n)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def knobs(cls) -> list[tuple[str, Any, str]]:
        """(name, default, help) for every knob, for the CLI and the app."""
        return [(f.name, f.default, f.metadata.get("help", "")) for f in dataclasses.fields(cls)]

    @classmethod
    def knob_choices(cls, name: str) -> tuple[str, ...] | None:
        """The valid values of a text knob, where it has a fixed set (for menus)."""
        return KNOB_CHOICES.get(name) if name != "answer_method" else cls.ALLOWED_ANSWER_METHODS

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StrategyConfig:
        """Build from loose key/values (CLI, app, JSON), naming unknown knobs clearly."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        require(not unknown, f"unknown knob(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}.")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(str(exc)) from exc


KNOB_CHOICES: dict[str, tuple[str, ...]] = {
    "score_source": ("prm", "self_eval", "prm_x_self_eval"),
    "aggregation": ("min", "prod", "last", "mean"),
    "ranker": ("prm", "orm"),
    "rule": ("uct", "puct"),
    "value_source": ("prm", "rollout", "mix"),
    "rollout_scorer": ("prm", "checker"),
    "backup": ("mean", "max"),
    "on_bad_number": ("fail", "unscored"),
}
