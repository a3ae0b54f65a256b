"""`arith`: multi-step arithmetic chains whose mistakes are calculation slips.

Problem: ``Start with 17. Add 25. Multiply by 3. Subtract 14. What is the result?``
Steps, one per line: ``17 + 25 = 42``, ``42 * 3 = 126``, ``126 - 14 = 112``, ``Answer: 112``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from search.tasks.base import Problem, ProblemError, ReferenceAnswerError, Task, reference_text

_START = re.compile(r"^Start with (-?\d+)\.")
_OP = re.compile(r"(Add|Subtract|Multiply by|Divide by) (\d+)\.")
_STEP = re.compile(r"^\s*(-?\d+) ([+\-*/]) (\d+) = (-?\d+)\s*$")
_INT = re.compile(r"^-?\d+$")
#: An integer as people write it: ``8``, ``+8``, ``-8``, ``8.0``, ``1,500``, ``1 500``, ``1_500``, ``1,500.00``.
_WRITTEN_INT = re.compile(r"^([+-]?)(\d{1,3}(?:([,_ ])\d{3})(?:\3\d{3})*|\d+)(?:\.0*)?$")

SYMBOL = {"Add": "+", "Subtract": "-", "Multiply by": "*", "Divide by": "/"}


@dataclass(frozen=True)
class ArithProblem:
    """Parsed problem: the start value and the (symbol, operand) operations in order."""

    start: int
    ops: tuple[tuple[str, int], ...]

    def values(self) -> list[int]:
        """The running value after each operation (the correct chain)."""
        out, value = [], self.start
        for symbol, operand in self.ops:
            value = apply(value, symbol, operand)
            out.append(value)
        return out


def apply(value: int, symbol: str, operand: int) -> int:
    """One exact integer operation (division must be exact)."""
    if symbol == "+":
        return value + operand
    if symbol == "-":
        return value - operand
    if symbol == "*":
        return value * operand
    if operand == 0 or value % operand:
        raise ValueError(f"{value} / {operand} is not an exact division")
    return value // operand


def parse_problem(text: str) -> ArithProblem:
    """Parse the problem text; raises ProblemError naming the expected format."""
    start = _START.match(text.strip())
    ops = [(SYMBOL[word], int(num)) for word, num in _OP.findall(text)]
    if not start or not 1 <= len(ops) <= 12:
        raise ProblemError(
            "An arith problem looks like 'Start with 17. Add 25. Multiply by 3. "
            "What is the result?' (1 to 12 operations)."
        )
    problem = ArithProblem(int(start.group(1)), tuple(ops))
    try:
        problem.values()
    except ValueError as exc:
        raise ProblemError(f"This arith problem is not well posed: {exc}.") from exc
    return problem


def parse_step(step: str) -> tuple[int, str, int, int] | None:
    """(left, symbol, operand, result) of a step like ``42 * 3 = 126``, or None if malformed."""
    match = _STEP.match(step)
    if not match:
        return None
    left, symbol, operand, result = match.groups()
    return int(left), symbol, int(operand), int(result)


class ArithTask(Task):
    name = "arith"
    description = "Multi-step integer arithmetic; every slip is caught by an exact checker."
    max_step_tokens = 24

    def validate(self, problem: str) -> str:
        text = super().validate(problem)
        parse_problem(text)
        return text

    def example(self) -> str:
        return "Start with 17. Add 25. Multiply by 3. Subtract 14. What is the result?"

    def reference_answer(self, problem: str) -> str:
        return str(parse_problem(problem).values()[-1])

    def parse_reference(self, reference: str | float | None, problem: str | None = None) -> str | None:
        """An integer reference in canonical form: ``8.0`` -> ``8``, ``1,500`` -> ``1500``, ``+7`` -> ``7``.

        Raises ReferenceAnswerError for anything that is not a whole number (``8.5``, ``abc``,
        ``1,50``), so a bad reference is refused before the search rather than after it.
        """
        text = reference_text(reference)
        if text is None:
            return None
        match = _WRITTEN_INT.match(text)
        if not match:
            raise ReferenceAnswerError(
                f"An arith answer is a whole number (like 112, -7, 1,500 or 8.0); the known answer {text!r} is not."
            )
        sign, digits = match.group(1), re.sub(r"[,_ ]", "", match.group(2))
        return str(int(sign + digits))

    def solution(self, problem: str) -> list[str]:
        """The correct steps, ending with the answer step (used by generators and fakes)."""
        parsed = parse_problem(problem)
        steps, value = [], parsed.start
        for (symbol, operand), result in zip(parsed.ops, parsed.values(), strict=True):
            steps.append(f"{value} {symbol} {operand} = {result}")
            value = result
        return [*steps, f"Answer: {value}"]

    def check_answer(self, problem: str, answer: str | None, reference: str | None) -> bool:
        truth = reference if reference is not None else self.reference_answer(problem)
        return answer is not None and _INT.match(answer.strip()) is not None and int(answer) == int(truth)

    def check_step(self, problem: str, previous: Sequence[str], step: str) -> bool:
        """True when this step is the correct next step of the correct chain.

        A step built on an earlier slip is wrong too (Math-Shepherd semantics: a good step
        is one from which the right answer is still reachable).
        """
        parsed = parse_problem(problem)
        correct = self.solution(problem)
        index = len(previous)
        if index >= len(correct) or list(previous) != correct[:index]:
            return False
        if index == len(parsed.ops):
            answer = self.extract_answer(step)
            return answer is not None and self.check_answer(problem, answer, None)
        parts = parse_step(step)
        return parts is not None and f"{parts[0]} {parts[1]} {parts[2]} = {parts[3]}" == correct[index]

    def generate(self, rng: random.Random, difficulty: int = 2) -> Problem:
        """A random chain; `difficulty` 1..5 sets 2..6 operations, larger operands and a larger cap.

        Why a cap on the running value: without one, a few multiplications make five-digit
        numbers, and the chain stops being "a few careful steps" and becomes long multiplication,
        which hides what search adds behind raw calculation skill.
        """
        difficulty = min(5, max(1, difficulty))
        n_ops = min(6, max(2, difficulty + 1 + rng.randint(0, 1)))
        top = 10 * difficulty + 10
        cap = 100 * (difficulty + 1)
        value = rng.randint(2, top)
        text = [f"Start with {value}."]
        for _ in range(n_ops):
            word, operand = _random_op(rng, value, top, cap)
            value = apply(value, SYMBOL[word], operand)
            text.append(f"{word} {operand}.")
        text.append("What is the result?")
        problem = " ".join(text)
        return Problem(self.name, problem, str(value))


def _random_op(rng: random.Random, value: int, top: int, cap: int) -> tuple[str, int]:
    """An operation that keeps the chain between 0 and `cap` and divisions exact."""
    divisors = [d for d in range(2, 10) if value and value % d == 0]
    multipliers = [m for m in range(2, 10) if value * m <= cap]
    choices = (
        (["Add"] if value < cap else [])
        + (["Multiply by"] if multipliers else [])
        + (["Subtract"] if value > 1 else [])
        + (["Divide by"] if divisors else [])
    )
    word = rng.choice(choices)
    if word == "Add":
        return word, rng.randint(1, min(top, cap - value))
    if word == "Subtract":
        return word, rng.randint(1, min(value - 1, top))
    if word == "Multiply by":
        return word, rng.choice(multipliers)
    return word, rng.choice(divisors)
