"""The small batched protocols the engine talks to models through.

Why protocols: strategies stay identical whether the models are deterministic fakes (engine
tests), the bundled nano pack, or a user's 7B Hugging Face PRM.  Every call is batched so a
backend can fill one forward pass with a whole frontier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from search.tasks.base import Task


@dataclass(frozen=True)
class Proposal:
    """One generated continuation: its text (delimiter stripped) and what it cost."""

    text: str
    token_count: int
    token_logprobs: tuple[float, ...]
    #: True when generation stopped at end-of-sequence rather than at the step delimiter.
    ended: bool = False

    @property
    def logprob(self) -> float:
        return float(sum(self.token_logprobs))


@dataclass(frozen=True)
class Judgement:
    """The policy's verdict on one step when asked "is this step correct?"."""

    p_yes: float
    words: str
    token_count: int = 0


@dataclass(frozen=True)
class StepScores:
    """A reward model's per-step scores for one path, and how many tokens it read."""

    scores: tuple[float, ...]
    tokens_read: int


@runtime_checkable
class Policy(Protocol):
    """Generates steps, completes paths (rollouts) and judges steps (self-evaluation)."""

    name: str

    def propose(
        self,
        prompts: Sequence[str],
        k: int,
        *,
        temperature: float,
        max_new_tokens: int,
        stop: str,
        seed: int,
    ) -> list[list[Proposal]]:
        """k next-step proposals for each prompt, each cut at the first `stop`."""
        ...

    def complete(
        self,
        prompts: Sequence[str],
        *,
        temperature: float,
        max_new_tokens: int,
        seed: int,
    ) -> list[Proposal]:
        """Continue each prompt to the end of a solution (for Monte-Carlo rollouts)."""
        ...

    def judge(self, questions: Sequence[str]) -> list[Judgement]:
        """P(yes) and the model's own words for each yes/no question."""
        ...


class PromptFormat(Protocol):
    """How a policy wants its prompts written, e.g. through its tokenizer's chat template.

    A policy with a `chat` attribute holding one (models/prompting.py `ChatFormat`) gets every
    prompt and self-evaluation question from it; other policies get the task's plain text
    (`Task.prompt`, `Task.self_eval_question`).  A prompt must grow by appending each step and
    the task's delimiter, so a child's prompt extends its parent's (prefix caches).
    """

    def prompt(self, task: Task, problem: str, steps: Sequence[str]) -> str:
        """The text the policy continues: the problem, then the steps so far."""
        ...

    def judge(self, task: Task, problem: str, steps: Sequence[str], step: str) -> str:
        """The yes/no question about `step` (the newest step after `steps`)."""
        ...


def _format(policy: object) -> PromptFormat | None:
    return getattr(policy, "chat", None)


def render_prompt(policy: object, task: Task, problem: str, steps: Sequence[str]) -> str:
    """The prompt `policy` receives: through its `chat` format when it has one, else the task's text."""
    fmt = _format(policy)
    return fmt.prompt(task, problem, steps) if fmt is not None else task.prompt(problem, steps)


def render_judge(policy: object, task: Task, problem: str, steps: Sequence[str], step: str) -> str:
    """The self-evaluation question `policy` receives (see `render_prompt`)."""
    fmt = _format(policy)
    return fmt.judge(task, problem, steps, step) if fmt is not None else task.self_eval_question(problem, steps, step)


@runtime_checkable
class RewardModel(Protocol):
    """Scores every step of a batch of paths, one forward pass per path."""

    name: str

    def score(self, problem: str, paths: Sequence[Sequence[str]]) -> list[StepScores]:
        """One score per step for each path (a path is the list of its step texts)."""
        ...


#: What a PRM's step score is called unless the models say otherwise (`Models.score_name`).
DEFAULT_SCORE_NAME = "PRM score"


@dataclass(frozen=True)
class Models:
    """The models one search uses; `orm` is optional (the PRM's last step stands in).

    `score_name`: what the PRM slot's step score is called where people read it (the colour bar,
    the legend): "PRM score", or "value-model score" for a value model read through the slot (the
    countdown value model: P(legal and the target still reachable) after the step).
    """

    policy: Policy
    prm: RewardModel
    orm: RewardModel | None = None
    score_name: str = DEFAULT_SCORE_NAME

    def names(self) -> dict[str, str | None]:
        return {
            "policy": self.policy.name,
            "prm": self.prm.name,
            "orm": self.orm.name if self.orm else None,
        }
