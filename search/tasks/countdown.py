"""`countdown`: combine the given numbers with + - * / to make a target (Game of 24, generalised).

Problem: ``Use 4 5 6 10 to make 24.`` (3 to 5 whole numbers from 1 to 100, a target from 1 to 100;
every number is used exactly once, as in the Tree of Thoughts Game-of-24 format).
Steps, one per line, each combining two of the numbers left and listing what is then left:
``10 - 4 = 6 (left: 5 6 6)``, ``5 * 6 = 30 (left: 6 30)``, ``30 - 6 = 24 (left: 24)``, then
``Answer: (10 - 4) * 5 - 6 = 24``.

Values are exact `Fraction`s.  A fraction is written without spaces (``8/3``) while an operator has
spaces around it, so ``8 / 3`` is a division and ``8/3`` a number.  The canonical ``left:`` list
is sorted ascending by value; the checker accepts any order (it compares multisets).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from search.tasks.base import Problem, ProblemError, ReferenceAnswerError, Task, reference_text
from search.tasks.expression import MalformedError, evaluate
from search.tasks.expression import tokens as expression_tokens
from search.tasks.game24 import is_test_puzzle

MIN_NUMBERS, MAX_NUMBERS = 3, 5
MAX_NUMBER = 100
MIN_TARGET, MAX_TARGET = 1, 100

_NUM = r"-?\d+(?:/\d+)?"
_NUMBER = re.compile(_NUM)
_PROBLEM = re.compile(r"^Use\s+(\d+(?:\s+\d+)*)\s+to\s+make\s+(\d+)\s*\.?$", re.IGNORECASE)
_STEP = re.compile(
    rf"^\s*({_NUM})\s+([+\-*/])\s+({_NUM})\s*=\s*({_NUM})\s*\(\s*left\s*:([^()]*)\)\s*\.?\s*$",
    re.IGNORECASE,
)
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}
_ATOM = 3
_PROBLEM_FORMAT = (
    "A countdown problem looks like 'Use 4 5 6 10 to make 24.' "
    f"({MIN_NUMBERS} to {MAX_NUMBERS} whole numbers from 1 to {MAX_NUMBER}, "
    f"a target from {MIN_TARGET} to {MAX_TARGET})."
)

#: A solver move: (left operand, operator, right operand, result).
Move = tuple[Fraction, str, Fraction, Fraction]
Values = tuple[Fraction, ...]


@dataclass(frozen=True)
class CountdownProblem:
    """Parsed problem: the numbers (ascending) and the target."""

    numbers: tuple[int, ...]
    target: int

    @property
    def text(self) -> str:
        return f"Use {' '.join(map(str, self.numbers))} to make {self.target}."

    def start(self) -> Values:
        """The multiset before any step, as sorted Fractions."""
        return tuple(Fraction(n) for n in self.numbers)


@dataclass(frozen=True)
class Step:
    """A parsed step ``a op b = result (left: ...)``; `left` is sorted ascending."""

    a: Fraction
    op: str
    b: Fraction
    result: Fraction
    left: Values


def parse_problem(text: str) -> CountdownProblem:
    """Parse the problem text; raises ProblemError naming the expected format."""
    match = _PROBLEM.match((text or "").strip())
    if not match:
        raise ProblemError(_PROBLEM_FORMAT)
    numbers = tuple(sorted(int(n) for n in match.group(1).split()))
    target = int(match.group(2))
    if not MIN_NUMBERS <= len(numbers) <= MAX_NUMBERS:
        raise ProblemError(f"This problem has {len(numbers)} numbers. {_PROBLEM_FORMAT}")
    if not all(1 <= n <= MAX_NUMBER for n in numbers) or not MIN_TARGET <= target <= MAX_TARGET:
        raise ProblemError(f"A number or the target is out of range. {_PROBLEM_FORMAT}")
    return CountdownProblem(numbers, target)


def parse_number(text: str) -> Fraction | None:
    """An integer or fraction written like ``-8/3``, or None (also for a zero denominator)."""
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def parse_step(step: str) -> Step | None:
    """The parts of a step like ``8 / 3 = 8/3 (left: 3 8 8/3)``, or None if malformed."""
    match = _STEP.match(step)
    if not match:
        return None
    a, op, b, result, left_text = match.groups()
    numbers = [parse_number(tok) for tok in (a, b, result, *left_text.replace(",", " ").split())]
    if any(n is None for n in numbers) or len(numbers) < 4:
        return None
    x, y, r, *left = numbers
    return Step(x, op, y, r, tuple(sorted(left)))  # type: ignore[arg-type]


def render(value: Fraction) -> str:
    """``24``, ``8/3`` or ``-1/3``: the written form of a value."""
    return str(value)


def render_left(values: Sequence[Fraction]) -> str:
    """The canonical ``left:`` list: ascending by value."""
    return " ".join(render(v) for v in sorted(values))


def apply(a: Fraction, op: str, b: Fraction) -> Fraction | None:
    """One exact operation; None for division by zero."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b if b else None


def advance(values: Values, step: Step) -> Values | None:
    """The multiset after a step, or None when the step is not valid from `values`.

    Valid: both operands are available (respecting multiplicity), the arithmetic is exact, and
    the ``left:`` list is the new multiset.
    """
    pool = Counter(values)
    for operand in (step.a, step.b):
        if not pool[operand]:
            return None
        pool[operand] -= 1
    result = apply(step.a, step.op, step.b)
    if result is None or result != step.result:
        return None
    pool[result] += 1
    after = tuple(sorted(pool.elements()))
    return after if after == step.left else None


# --- solver -------------------------------------------------------------------------------------


def _moves(a: Fraction, b: Fraction, signed: bool) -> Iterator[Move]:
    """Every distinct combination of two values.

    With no negative value in the multiset, only ``larger - smaller`` is tried: for a target >= 0
    that loses nothing, since any expression's absolute value can be built from the absolute
    values of its leaves with non-negative intermediates.
    """
    lo, hi = (a, b) if a <= b else (b, a)
    yield lo, "+", hi, lo + hi
    yield lo, "*", hi, lo * hi
    yield hi, "-", lo, hi - lo
    if signed and lo != hi:
        yield lo, "-", hi, lo - hi
    if lo:
        yield hi, "/", lo, hi / lo
    if hi and lo != hi:
        yield lo, "/", hi, lo / hi


@lru_cache(maxsize=1 << 16)
def solve(values: Values, target: Fraction) -> tuple[Move, ...] | None:
    """Moves that turn the sorted multiset `values` into exactly ``[target]``, or None.

    Exhaustive over pairs and operators, memoised on the multiset, so reachability checks inside
    the search stay cheap (a 4-number multiset is a few thousand operations at most).
    """
    if len(values) == 1:
        return () if values[0] == target else None
    signed = values[0] < 0
    tried: set[tuple[Fraction, Fraction]] = set()
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            if (values[i], values[j]) in tried:
                continue
            tried.add((values[i], values[j]))
            rest = values[:i] + values[i + 1 : j] + values[j + 1 :]
            for move in _moves(values[i], values[j], signed):
                found = solve(tuple(sorted((*rest, move[3]))), target)
                if found is not None:
                    return (move, *found)
    return None


def reachable(values: Values, target: int | Fraction) -> bool:
    """Whether the target can still be made from all of `values`."""
    return solve(tuple(sorted(values)), Fraction(target)) is not None


def _join(left: tuple[str, int], op: str, right: tuple[str, int]) -> tuple[str, int]:
    """``left op right`` with only the parentheses precedence needs."""
    prec = _PREC[op]
    left_text = f"({left[0]})" if left[1] < prec else left[0]
    wrap_right = right[1] < prec or (right[1] == prec and op in "-/")
    right_text = f"({right[0]})" if wrap_right else right[0]
    return f"{left_text} {op} {right_text}", prec


def expression(numbers: Sequence[int], moves: Sequence[Move]) -> str:
    """The single expression the moves build from the numbers, e.g. ``(10 - 4) * 5 - 6``."""
    pool: list[tuple[Fraction, tuple[str, int]]] = [(Fraction(n), (str(n), _ATOM)) for n in numbers]
    for a, op, b, result in moves:
        left = pool.pop(next(i for i, (v, _) in enumerate(pool) if v == a))
        right = pool.pop(next(i for i, (v, _) in enumerate(pool) if v == b))
        pool.append((result, _join(left[1], op, right[1])))
    return pool[0][1][0]


def _split_answer(answer: str) -> tuple[str, Fraction | None]:
    """``expr = 24`` -> (expr, 24); ``expr`` -> (expr, None).  Raises ValueError if malformed."""
    text = answer.strip().removesuffix(".")
    expr, equals, claimed = text.partition("=")
    if not equals:
        return expr, None
    value = parse_number(claimed.strip())
    if value is None:
        raise MalformedError(f"{claimed.strip()!r} after '=' is not a number")
    return expr, value


# --- the task -----------------------------------------------------------------------------------

#: difficulty -> (how many numbers, largest number)
_LEVELS = {1: (3, 10), 2: (4, 13), 3: (4, 25), 4: (5, 13), 5: (5, 50)}
_GAME24_SHARE = 0.5


class CountdownTask(Task):
    name = "countdown"
    description = "Combine the numbers with + - * / to hit the target (Game of 24); exact checker."
    max_step_tokens = 40

    def validate(self, problem: str) -> str:
        text = super().validate(problem)
        parse_problem(text)
        return text

    def example(self) -> str:
        return "Use 4 5 6 10 to make 24."

    def normalize_answer(self, answer: str) -> str:
        """Canonical spacing, so ``(10-4)*5-6=24`` and ``(10 - 4) * 5 - 6 = 24`` vote together."""
        try:
            tokens = expression_tokens(answer.strip())
        except ValueError:
            return super().normalize_answer(answer)
        text = "".join(f" {t} " if t in "+-*/=" else t for t in tokens)
        return super().normalize_answer(text)

    def parse_reference(self, reference: str | float | None, problem: str | None = None) -> str | None:
        """A reference solution: an expression (``(10 - 4) * 5 - 6``, optionally ``= 24``) or the bare target.

        The checker accepts any correct expression, so the reference only documents one; with
        `problem` given it must use each number once and make the target.  Raises
        ReferenceAnswerError naming what is wrong.
        """
        text = reference_text(reference)
        if text is None:
            return None
        parsed = parse_problem(problem) if problem is not None else None
        number = parse_number(text)
        if number is not None and (parsed is None or number == parsed.target):
            return render(number)
        try:
            expr, _ = _split_answer(text)
            evaluate(expr)
        except ValueError as exc:
            raise ReferenceAnswerError(
                f"A countdown answer is an expression like '(10 - 4) * 5 - 6 = 24'; the known answer {text!r} "
                f"is not one ({exc})."
            ) from None
        if parsed is not None and not self.check_answer(problem, text, None):
            raise ReferenceAnswerError(
                f"The known answer {text!r} does not make {parsed.target} from "
                f"{' '.join(map(str, parsed.numbers))} using each number once."
            )
        return self.normalize_answer(text)

    def _solve(self, problem: str) -> tuple[CountdownProblem, tuple[Move, ...] | None]:
        parsed = parse_problem(problem)
        return parsed, solve(parsed.start(), Fraction(parsed.target))

    def reference_answer(self, problem: str) -> str | None:
        """One solution found by the solver, as ``expr = target``; None when unsolvable."""
        parsed, moves = self._solve(problem)
        return None if moves is None else f"{expression(parsed.numbers, moves)} = {parsed.target}"

    def solution(self, problem: str) -> list[str] | None:
        """A full correct step list ending with the answer step (generators and fakes)."""
        parsed, moves = self._solve(problem)
        if moves is None:
            return None
        steps, pool = [], Counter(parsed.start())
        for a, op, b, result in moves:
            pool.subtract((a, b))
            pool[result] += 1
            steps.append(
                f"{render(a)} {op} {render(b)} = {render(result)} (left: {render_left(list(pool.elements()))})"
            )
        return [*steps, f"Answer: {expression(parsed.numbers, moves)} = {parsed.target}"]

    def compose_answer(self, problem: str, steps: Sequence[str]) -> str | None:
        """``Answer: (13 - 1) * (1 + 1) = 24`` once the moves leave one number: the moves as one expression.

        The value after ``=`` is the one the last move claims, right or wrong, and the expression
        is built from the operands as written, so a slip stays a slip for the checker to grade.
        None while numbers remain, or when a step is malformed, final or uses a number the steps
        before it did not leave (the policy then writes the answer).  The moves are the solution
        (Yao et al. 2023 ask the model for this line; a nano policy often miscopies it).
        """
        parsed = parse_problem(problem)
        if len(steps) != len(parsed.numbers) - 1:
            return None
        parts = [parse_step(step) for step in steps]
        if any(part is None for part in parts):
            return None
        moves = [(part.a, part.op, part.b, part.result) for part in parts if part is not None]
        try:
            text = expression(parsed.numbers, moves)
        except StopIteration:  # an operand the earlier moves did not leave
            return None
        return f"Answer: {text} = {render(moves[-1][3])}"

    def recompute_prefix(self, step: str) -> str | None:
        """``8 - 3 =`` for the move ``8 - 3 = 5 (left: 5 6)``: the policy recomputes the result and the
        numbers left; None for the answer line or a malformed step."""
        if self.is_final(step) or parse_step(step) is None:
            return None
        return step.split("=", 1)[0] + "="

    def same_claim(self, step: str, redone: str) -> bool:
        """Same result and the same numbers left (in any order); a rewrite that is not a move disagrees."""
        written, again = parse_step(step), parse_step(redone)
        if written is None or again is None:
            return False
        return (written.result, written.left) == (again.result, again.left)

    def check_answer(self, problem: str, answer: str | None, reference: str | None) -> bool:
        """True when `answer` uses each problem number exactly once and equals the target.

        Any correct expression counts, so `reference` is ignored; a trailing ``= N`` is optional
        but must then be the target.  The answer is parsed, never evaluated as code, and a
        malformed answer is simply wrong.
        """
        if answer is None:
            return False
        parsed = parse_problem(problem)
        try:
            expr, claimed = _split_answer(answer)
            value, literals = evaluate(expr)
        except ValueError:
            return False
        if claimed is not None and claimed != parsed.target:
            return False
        return literals == parsed.numbers and value == parsed.target

    def _replay(self, problem: str, previous: Sequence[str]) -> tuple[CountdownProblem, Values | None]:
        """The multiset after the previous steps; None when one of them is invalid or final."""
        parsed = parse_problem(problem)
        values: Values | None = parsed.start()
        for text in previous:
            step = None if self.is_final(text) else parse_step(text)
            values = None if step is None or values is None else advance(values, step)
        return parsed, values

    def step_valid(self, problem: str, previous: Sequence[str], step: str) -> bool:
        """True when the step is legal after `previous` (all of which must be legal too).

        Legal: both operands are among the numbers left, the arithmetic is exact, and the
        ``left:`` list is the new multiset (any order).  It may still be a dead end.  A final
        ``Answer:`` step is judged by `check_answer`.
        """
        _, values = self._replay(problem, previous)
        if values is None:
            return False
        if self.is_final(step):
            return self.check_answer(problem, self.extract_answer(step), None)
        parts = parse_step(step)
        return parts is not None and advance(values, parts) is not None

    def step_reachable(self, problem: str, previous: Sequence[str], step: str) -> bool:
        """True when the step is legal and the target can still be made from what is left."""
        parsed, values = self._replay(problem, previous)
        if values is None:
            return False
        if self.is_final(step):
            return self.check_answer(problem, self.extract_answer(step), None)
        parts = parse_step(step)
        after = None if parts is None else advance(values, parts)
        return after is not None and reachable(after, parsed.target)

    def check_step(self, problem: str, previous: Sequence[str], step: str) -> bool:
        """`step_reachable`: a legal step that leads into a dead end is a bad step.

        This is Math-Shepherd semantics (a good step is one from which the right answer is
        still reachable), as in arith; `step_valid` is the pure legality check.
        """
        return self.step_reachable(problem, previous, step)

    def generate(self, rng: random.Random, difficulty: int = 2) -> Problem:
        """A random solvable problem; `difficulty` 1..5 sets 3..5 numbers and their range.

        Half the 4-number problems are Game-of-24 style (target 24, solvability checked by the
        solver); the rest get the value of a random expression over the numbers as target.
        A 4-number target-24 problem from the Game-of-24 test slice is never emitted.
        """
        count, top = _LEVELS[min(5, max(1, difficulty))]
        while True:
            numbers = sorted(rng.randint(1, top) for _ in range(count))
            if count == 4 and rng.random() < _GAME24_SHARE:
                target = 24
                moves = solve(tuple(Fraction(n) for n in numbers), Fraction(target))
                answer = None if moves is None else expression(numbers, moves)
            else:
                target, answer = _random_expression(rng, numbers)
            if answer is None or (count == 4 and target == 24 and is_test_puzzle(numbers)):
                continue
            text = f"Use {' '.join(map(str, numbers))} to make {target}."
            return Problem(self.name, text, f"{answer} = {target}")


def _random_expression(rng: random.Random, numbers: Sequence[int]) -> tuple[int, str | None]:
    """(target, expression) from combining the numbers at random; (0, None) if no tries land
    on a whole target in range."""
    for _ in range(50):
        pool = [(Fraction(n), (str(n), _ATOM)) for n in numbers]
        while len(pool) > 1:
            i, j = sorted(rng.sample(range(len(pool)), 2), reverse=True)
            (a, a_text), (b, b_text) = pool.pop(i), pool.pop(j)
            if rng.random() < 0.5:
                (a, a_text), (b, b_text) = (b, b_text), (a, a_text)
            op = rng.choice("+-*/" if b else "+-*")
            if op == "-" and a < b:
                (a, a_text), (b, b_text) = (b, b_text), (a, a_text)
            pool.append((apply(a, op, b), _join(a_text, op, b_text)))  # type: ignore[arg-type]
        value, (text, _) = pool[0]
        if value.denominator == 1 and MIN_TARGET <= value <= MAX_TARGET:
            return int(value), text
    return 0, None
