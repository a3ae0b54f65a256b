"""Keyword-only, self-validating configuration shared by every strategy.

Why validate on construction: an impossible config (beam width above N, negative c, a zero
budget) should fail with a sentence a learner understands before any model is touched.
Each field's `help` metadata feeds the CLI's `strategies` command and the app's help text.

Why configs parse their own strings: a knob's type (`bool`, `int`, `float`, optional, or a
`Literal` of choices) is declared once on the field, and `parse_knob` reads it, so the CLI,
the eval harness and the app cannot each guess differently (`self_evaluate=maybe` is refused
everywhere, not silently False in one place).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from search.answer import AnswerMethod
from search.scoring import Aggregation

ScoreSource = Literal["prm", "self_eval", "prm_x_self_eval"]
SelfCheck = Literal["ask", "recompute"]
#: The knobs that turn self-evaluation off (a Game-of-24 preset sets all four the other way).
SELF_EVAL_OFF = "self_evaluate=false self_check=ask doubt_below=0 score_source=prm"
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


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


def split_pairs(pairs: Sequence[str] | None) -> dict[str, str]:
    """``["n=4", "beam-width=2"]`` -> ``{"n": "4", "beam_width": "2"}``; the config parses the values."""
    knobs: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, raw = pair.partition("=")
        require(bool(sep), f"knob {pair!r} must look like name=value (e.g. beam_width=4).")
        knobs[key.strip().replace("-", "_")] = raw
    return knobs


@dataclass(frozen=True)
class KnobType:
    """What one knob accepts, read from its field annotation.

    `base` is bool, int, float or str; `choices` is set for `Literal[...]` fields;
    `optional` when the annotation allows None.
    """

    base: type
    optional: bool = False
    choices: tuple[str, ...] | None = None

    def describe(self) -> str:
        """Short human form for docs and errors: ``int or None``, ``one of a, b``."""
        text = " / ".join(self.choices) if self.choices else self.base.__name__
        return f"{text} or None" if self.optional else text

    def parse(self, name: str, raw: str) -> Any:
        """Turn a command-line string into the knob's value; ConfigError if it does not parse."""
        text = raw.strip()
        if self.optional and text.lower() in ("none", "null", ""):
            return None
        if self.choices is not None:
            return text  # membership is checked by the config itself, listing the valid values
        if self.base is bool:
            if text.lower() in _TRUE + _FALSE:
                return text.lower() in _TRUE
            raise ConfigError(f"knob {name}={raw!r} is not a valid bool (use true or false).")
        try:
            value = self.base(text)
        except ValueError:
            raise ConfigError(f"knob {name}={raw!r} is not a valid {self.describe()}.") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"knob {name}={raw!r} must be a finite number.")
        return value

    def check(self, name: str, value: Any) -> Any:
        """Coerce a typed value (JSON, widgets) or parse a string; refuse the wrong type."""
        if isinstance(value, str) and not (self.choices is not None or self.base is str):
            return self.parse(name, value)
        if value is None:
            require(self.optional, f"knob {name} cannot be None (expects {self.describe()}).")
            return None
        if self.base is bool:
            require(isinstance(value, bool), f"knob {name}={value!r} is not a valid bool (use true or false).")
        elif self.base is int:
            require(
                (isinstance(value, int) and not isinstance(value, bool))
                or (isinstance(value, float) and value.is_integer()),
                f"knob {name}={value!r} is not a valid {self.describe()}.",
            )
            value = int(value)
        elif self.base is float:
            require(
                isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value),
                f"knob {name}={value!r} is not a valid {self.describe()}.",
            )
            value = float(value)
        else:
            require(isinstance(value, str), f"knob {name}={value!r} must be text ({self.describe()}).")
        return value


def knob_type(annotation: Any) -> KnobType:
    """Read a field annotation (`bool`, `int | None`, `Literal["a", "b"]`, ...) into a KnobType."""
    optional = False
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(members) < len(get_args(annotation))
        if len(members) != 1:
            raise TypeError(f"knob annotation {annotation!r} must be one type, optionally with None")
        annotation = members[0]
    if get_origin(annotation) is Literal:
        return KnobType(str, optional, tuple(get_args(annotation)))
    if annotation not in (bool, int, float, str):
        raise TypeError(f"knob annotation {annotation!r} is not bool, int, float, str or a Literal")
    return KnobType(annotation, optional)


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
    self_evaluate: bool = knob(
        False, "Have the policy judge every new step and record P(yes) (how it judges: self_check)."
    )
    self_check: SelfCheck = knob(
        "ask",
        "How self_evaluate judges a step: ask (the policy answers 'is this step correct?', P(yes)) or "
        "recompute (the policy rewrites the step greedily from its last '=', on countdown its own 'a op b =': "
        "1 if it claims the same, 0 if not; SelfCheck, Miao et al. 2023).",
    )
    doubt_below: float = knob(
        0.0,
        "With self_check=recompute: a step also fails its recheck (scored 0) when the policy wrote one of its "
        "tokens with a probability below this (its least likely token; token confidence, DeepConf). 0: off.",
    )
    answer_from_steps: bool = knob(
        False,
        "When the steps already determine the answer (countdown: one number left), write the answer "
        "line from them instead of asking the policy (no tokens; graded like any answer).",
    )
    score_source: ScoreSource = knob(
        "prm",
        "Which score ranks steps: the PRM, the policy's own P(yes), or their product.",
    )
    aggregation: Aggregation = knob(
        "last",
        "How per-step scores become one path score: min (weakest step), prod, last (PRM's view of "
        "the whole prefix) or mean.",
    )
    answer_method: AnswerMethod = knob(
        "argmax",
        "How the final answer is chosen: argmax (best path score), majority (one vote per "
        "solution), prm_vote (votes weighted by path score), most_visits / best_value (MCTS).",
    )
    on_bad_number: Literal["fail", "unscored"] = knob(
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
        for name, kind in self.knob_types().items():
            if kind.choices is not None and not (kind.optional and getattr(self, name) is None):
                require_choice(name, getattr(self, name), self.knob_choices(name) or kind.choices)
        require(
            self.self_check == "ask" or self.self_evaluate,
            "self_check=recompute is how self-evaluation judges a step: also set self_evaluate=True (to turn "
            f"self-evaluation off: {SELF_EVAL_OFF}).",
        )
        require(0 <= self.doubt_below < 1, f"doubt_below must be in [0, 1) (got {self.doubt_below}).")
        require(
            self.doubt_below == 0 or self.self_check == "recompute",
            "doubt_below fails a recheck: also set self_check=recompute and self_evaluate=True (to turn "
            f"self-evaluation off: {SELF_EVAL_OFF}).",
        )
        require(
            self.score_source == "prm" or self.self_evaluate,
            f"score_source={self.score_source!r} reads self-evaluation: also set self_evaluate=True (to turn "
            f"self-evaluation off: {SELF_EVAL_OFF}).",
        )

    @property
    def ranks_with(self) -> str:
        """The score that ranks finished solutions for argmax / prm_vote: ``prm`` (path score) or ``orm``."""
        return "prm"

    @property
    def backs_up_by(self) -> str:
        """How a node's value summarises the values backed up through it: ``mean`` or ``max``."""
        return "mean"

    @property
    def max_solutions(self) -> int | None:
        """The most completed solutions this strategy hands the answer rule (None: no fixed cap).

        Greedy and sampling grow one chain (1); the N-chain strategies and beam search N; DVTS
        N/M (search-and-learn semantics: finished beams count against N); MCTS None.  Each
        config with a solution-count knob overrides this; `decide` enforces it.
        """
        return 1

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def knobs(cls) -> list[tuple[str, Any, str]]:
        """(name, default, help) for every knob, for the CLI and the app."""
        return [(f.name, f.default, f.metadata.get("help", "")) for f in dataclasses.fields(cls)]

    @classmethod
    def knob_types(cls) -> dict[str, KnobType]:
        """name -> KnobType, read from the field annotations (cached per class)."""
        cached = cls.__dict__.get("_knob_types")
        if cached is None:
            hints = typing.get_type_hints(cls)
            cached = {f.name: knob_type(hints[f.name]) for f in dataclasses.fields(cls)}
            cls._knob_types = cached
        return cached

    @classmethod
    def knob_choices(cls, name: str) -> tuple[str, ...] | None:
        """The valid values of a text knob, where it has a fixed set (for menus and validation)."""
        if name == "answer_method":
            return cls.ALLOWED_ANSWER_METHODS
        kind = cls.knob_types().get(name)
        return kind.choices if kind else None

    @classmethod
    def parse_knob(cls, name: str, raw: str) -> Any:
        """One knob from its text form (``"4"``, ``"true"``, ``"none"``); ConfigError if it does not parse."""
        kinds = cls.knob_types()
        require(name in kinds, f"unknown knob {name!r}; valid: {', '.join(sorted(kinds))}.")
        return kinds[name].parse(name, raw)

    @classmethod
    def parse_pairs(cls, pairs: Sequence[str], strategy: str = "this strategy") -> dict[str, Any]:
        """``["n=4", "self-evaluate=true"]`` -> typed values; ConfigError names the bad pair."""
        kinds = cls.knob_types()
        values: dict[str, Any] = {}
        for key, raw in split_pairs(pairs).items():
            require(
                key in kinds,
                f"{strategy} has no knob {key!r}; its knobs: {', '.join(kinds)} (see `python cli.py strategies`).",
            )
            values[key] = kinds[key].parse(key, raw)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> StrategyConfig:
        """Build from loose key/values (CLI strings, app widgets, JSON): each value is parsed or
        type-checked against its field, and unknown knobs are named clearly."""
        kinds = cls.knob_types()
        unknown = sorted(set(values) - set(kinds))
        require(not unknown, f"unknown knob(s) {', '.join(unknown)}; valid: {', '.join(sorted(kinds))}.")
        typed = {name: kinds[name].check(name, value) for name, value in values.items()}
        try:
            return cls(**typed)
        except TypeError as exc:
            raise ConfigError(str(exc)) from exc
