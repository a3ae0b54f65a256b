"""What a task tells the engine: how a problem is written, how steps are delimited, how an
answer is extracted, and (where one exists) an exact checker.

Checkers parse text; nothing here ever calls `eval` on model output.
"""

from __future__ import annotations

import math
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from search.answer_text import answer_line

MAX_PROBLEM_CHARS = 4000
MAX_REFERENCE_CHARS = 1000
ANSWER_PREFIX = "Answer:"
#: Characters PostgreSQL text and UTF-8 files cannot hold (other control characters are fine).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class ProblemError(ValueError):
    """A problem text the task cannot work with; the message says what to do."""


class ReferenceAnswerError(ProblemError):
    """A known answer (reference) the task cannot read; raised where it enters, before any search."""


def reference_text(reference: object) -> str | None:
    """The reference as stripped text: None or blank -> None; JSON numbers (int, float) accepted.

    Raises ReferenceAnswerError for booleans, NaN/infinite numbers, other types and text over
    `MAX_REFERENCE_CHARS`.  Integral floats are written without ``.0`` (a JSON ``8.0`` reads as ``8``).
    """
    if reference is None:
        return None
    if isinstance(reference, bool) or not isinstance(reference, (str, int, float)):
        raise ReferenceAnswerError(
            f"The known answer must be text or a number (got {type(reference).__name__} {reference!r})."
        )
    if isinstance(reference, float):
        if not math.isfinite(reference):
            raise ReferenceAnswerError(f"The known answer {reference!r} is not a finite number.")
        reference = str(int(reference)) if reference.is_integer() else repr(reference)
    text = str(reference).strip()
    if len(text) > MAX_REFERENCE_CHARS:
        raise ReferenceAnswerError(
            f"The known answer has {len(text):,} characters; the limit is {MAX_REFERENCE_CHARS:,}."
        )
    return text.removeprefix(ANSWER_PREFIX).strip() or None


@dataclass(frozen=True)
class Problem:
    """A problem as text plus its known answer (None when unknown)."""

    task: str
    text: str
    answer: str | None = None


class Task(ABC):
    """Base class: the nano-pack prompt format, `Answer:` extraction, and no checker."""

    name: str = "task"
    description: str = ""
    step_delimiter: str = "\n"
    #: Longest step the policy may write before it is cut (tokens).
    max_step_tokens: int = 48
    #: What a chat policy is asked in the user turn after the problem, unless its model card
    #: gives an instruction of its own (then the problem stands alone).
    chat_instruction: str = "Solve it one step per line and end with a line 'Answer: <the answer>'."

    def validate(self, problem: str) -> str:
        """Return the cleaned problem text or raise ProblemError with a clear reason."""
        text = (problem or "").strip()
        if not text:
            raise ProblemError("The problem text is empty: type a problem or draw a random one.")
        if UNSTORABLE.search(text):
            raise ProblemError(
                "The problem text contains a NUL character or an unpaired surrogate (bytes that were not "
                "valid UTF-8); no database or file can hold it. Remove it or retype the text."
            )
        if len(text) > MAX_PROBLEM_CHARS:
            raise ProblemError(
                f"The problem text has {len(text):,} characters; the limit is {MAX_PROBLEM_CHARS:,}. Shorten it."
            )
        return text

    def prompt(self, problem: str, steps: Sequence[str]) -> str:
        """The text the policy continues: the problem, then one step per delimiter."""
        head = f"Problem: {problem}\nSolution:\n"
        return head + "".join(step + self.step_delimiter for step in steps)

    def self_eval_question(self, problem: str, steps: Sequence[str], step: str) -> str:
        """The yes/no question the policy answers about its own newest step."""
        return f"{self.prompt(problem, steps)}Check: {step}\nIs this step correct?"

    def chat_user_turn(self, problem: str, *, instruction: bool = True) -> str:
        """The user turn of a chat prompt: the problem, then `chat_instruction` when `instruction`."""
        return f"{problem}\n\n{self.chat_instruction}" if instruction and self.chat_instruction else problem

    def chat_judge_turn(self, step: str) -> str:
        """The user turn that asks a chat policy about its newest step (self-evaluation, yes/no)."""
        return f"Check this step: {step}\nIs this step correct? Answer yes or no."

    def is_final(self, step: str) -> bool:
        """A step that states the final answer (an `Answer:` line, also `**Answer:**`) ends the solution."""
        return answer_line(step) is not None

    def compose_answer(self, problem: str, steps: Sequence[str]) -> str | None:
        """The final step that `steps` already determine, written without the policy; None: the policy writes it.

        Used by the `answer_from_steps` knob.  A task overrides it when its steps spell out the
        whole solution (countdown: the moves are the expression).  It transcribes and never
        checks: the composed answer is graded like any other.
        """
        return None

    def recompute_prefix(self, step: str) -> str | None:
        """The part of `step` the policy rewrites the rest from when it rechecks it (self_check=recompute).

        Default: everything up to and including the step's last ``=`` when a claim follows it
        (``12 * 3 = 36`` -> ``12 * 3 =``); None for a final step or one with nothing to recompute.
        """
        head, sep, claim = step.rpartition("=")
        if not sep or not claim.strip() or self.is_final(step):
            return None
        return head + sep

    def same_claim(self, step: str, redone: str) -> bool:
        """Whether the policy's rewrite `redone` (the prefix and its greedy continuation) claims what
        `step` claims.  Default: the same text after the last ``=``, whitespace folded."""
        def claim(text: str) -> str:
            return " ".join(text.rpartition("=")[2].split())

        return claim(step) == claim(redone)

    def extract_answer(self, step: str) -> str | None:
        """The answer written in a final step, normalised; None when there is none or it is empty."""
        answer = answer_line(step)
        return self.normalize_answer(answer) if answer else None

    def normalize_answer(self, answer: str) -> str:
        """Canonical form used for voting (whitespace folded)."""
        return re.sub(r"\s+", " ", answer.strip())

    def parse_reference(self, reference: str | float | None, problem: str | None = None) -> str | None:
        """The one place a known answer is read: canonical text, or None when there is none.

        Called where a reference enters (CLI ``--reference``, the app's Known answer box, each
        JSONL row, `run_search` before its first event), so nothing reads a reference for the
        first time after compute was spent.  `problem` (already validated) lets a task check
        the reference against it.  Raises ReferenceAnswerError with a sentence saying why.
        """
        text = reference_text(reference)
        return None if text is None else self.normalize_answer(text)

    def check_answer(self, problem: str, answer: str | None, reference: str | None) -> bool | None:
        """Exact verdict on a final answer; None when the task cannot tell."""
        if answer is None:
            return False if reference is not None else None
        if reference is None:
            return None
        return self.answers_equal(reference, answer)

    def answers_equal(self, a: str, b: str) -> bool:
        """Do two extracted answers mean the same?  Votes pool such answers (text equality here)."""
        return self.normalize_answer(a) == self.normalize_answer(b)

    def check_step(self, problem: str, previous: Sequence[str], step: str) -> bool | None:
        """Exact verdict on one step given the steps before it; None when unknown."""
        return None

    def reference_answer(self, problem: str) -> str | None:
        """The answer the task can work out itself from the problem, if any."""
        return None

    def generate(self, rng: random.Random, difficulty: int = 2) -> Problem:
        """A random problem (tasks without a generator raise)."""
        raise ProblemError(f"The {self.name} task has no problem generator; type a problem.")

    @abstractmethod
    def example(self) -> str:
        """A problem shown as a placeholder in the CLI and app."""
