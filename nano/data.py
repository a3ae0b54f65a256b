"""Seeded training data for the nano pack: solutions, corrupted steps and self-check questions.

Seed ranges (documented so evaluation never sees training problems):

* training problems are drawn from ``random.Random(TRAIN_SEED_BASE + seed)`` (seed 0 by default),
  PRM training problems from ``random.Random(PRM_SEED_BASE + seed)``;
* held-out evaluation problems come from ``random.Random(EVAL_SEED_BASE + seed)`` (see
  `heldout_problems`), a disjoint stream.

Every countdown problem goes through `CountdownTask.generate`, which never emits a Game-of-24
test-slice puzzle (ranks 901-1000); `keep_problem` checks it again so a builder bug cannot leak one.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from search.tasks.arith import ArithTask
from search.tasks.arith import parse_step as parse_arith_step
from search.tasks.base import Problem
from search.tasks.countdown import (
    CountdownTask,
    Move,
    _moves,
    expression,
    parse_problem,
    reachable,
    render,
    render_left,
)
from search.tasks.game24 import is_test_puzzle

TRAIN_SEED_BASE = 0
PRM_SEED_BASE = 500_000
EVAL_SEED_BASE = 1_000_000
TASKS = {"arith": ArithTask(), "countdown": CountdownTask()}
DIFFICULTIES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Example:
    """One training text and the character offset where the loss starts (the prompt is context only)."""

    text: str
    loss_from: int
    kind: str


def keep_problem(problem: Problem) -> bool:
    """False for a Game-of-24 test puzzle (4 numbers, target 24), which must never be trained on."""
    if problem.task != "countdown":
        return True
    parsed = parse_problem(problem.text)
    return not (len(parsed.numbers) == 4 and parsed.target == 24 and is_test_puzzle(parsed.numbers))


def problems(task: str, rng: random.Random, count: int, difficulties: Sequence[int] = DIFFICULTIES) -> list[Problem]:
    """`count` problems cycling through the difficulties, test-slice puzzles dropped."""
    out: list[Problem] = []
    while len(out) < count:
        problem = TASKS[task].generate(rng, difficulties[len(out) % len(difficulties)])
        if keep_problem(problem):
            out.append(problem)
    return out


def heldout_problems(task: str, count: int, seed: int = 0, difficulties: Sequence[int] = DIFFICULTIES) -> list[Problem]:
    """Evaluation problems from the held-out seed stream (EVAL_SEED_BASE + seed)."""
    return problems(task, random.Random(EVAL_SEED_BASE + seed), count, difficulties)


# --- solutions -------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 18)
def _float_reachable(values: tuple[float, ...], target: float) -> bool:
    if len(values) == 1:
        return abs(values[0] - target) < 1e-6
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            a, b = values[i], values[j]
            rest = values[:i] + values[i + 1 : j] + values[j + 1 :]
            results = [a + b, a * b, a - b, b - a] + ([a / b] if b else []) + ([b / a] if a else [])
            if any(_float_reachable(tuple(sorted((*rest, round(r, 9)))), target) for r in results):
                return True
    return False


def fast_reachable(values: Sequence[Fraction], target: int) -> bool:
    """`countdown.reachable` in floats with early exit: ~20x faster, and exact enough for small integers.

    A float "yes" is confirmed by the exact solver, so a rounding accident can only cost a move, never
    put a dead end into the training data.
    """
    if not _float_reachable(tuple(sorted(round(float(v), 9) for v in values)), float(target)):
        return False
    return reachable(tuple(values), target)


def countdown_solution(problem: str, rng: random.Random) -> list[str]:
    """A random correct solution: each move drawn uniformly among the moves that keep the target reachable.

    Why random instead of the solver's first solution: the policy should spread probability over
    many good moves, so sampling explores and a PRM has something to choose between.
    """
    parsed = parse_problem(problem)
    values = list(parsed.start())
    moves: list[Move] = []
    steps: list[str] = []
    while len(values) > 1:
        options = []
        for i in range(len(values)):
            for j in range(i + 1, len(values)):
                rest = values[:i] + values[i + 1 : j] + values[j + 1 :]
                options += [(move, rest) for move in _moves(values[i], values[j], min(values) < 0)]
        rng.shuffle(options)  # the first reachable option of a random order is uniform among them
        move, rest = next(o for o in options if fast_reachable((*o[1], o[0][3]), parsed.target))
        values = sorted([*rest, move[3]])
        moves.append(move)
        steps.append(f"{render(move[0])} {move[1]} {render(move[2])} = {render(move[3])} (left: {render_left(values)})")
    return [*steps, f"Answer: {expression(parsed.numbers, moves)} = {parsed.target}"]


def solution(problem: Problem, rng: random.Random) -> list[str]:
    if problem.task == "arith":
        return TASKS["arith"].solution(problem.text)
    return countdown_solution(problem.text, rng)


# --- corrupted steps ---------------------------------------------------------------------------


def _slip(value: int, rng: random.Random) -> int:
    """A plausible calculation slip: off by a little, a digit changed, or two digits swapped."""
    text = str(abs(value))
    choice = rng.random()
    if choice < 0.4 or len(text) == 1:
        return value + rng.choice([-1, 1]) * rng.randint(1, 10)
    i = rng.randrange(len(text))
    if choice < 0.75 or len(text) < 2:
        digits = list(text)
        digits[i] = str((int(digits[i]) + rng.randint(1, 9)) % 10)
        new = int("".join(digits))
    else:
        j = (i + 1) % len(text)
        digits = list(text)
        digits[i], digits[j] = digits[j], digits[i]
        new = int("".join(digits))
    new = -new if value < 0 else new
    return new if new != value else value + 1


def corrupt_arith(step: str, rng: random.Random) -> str:
    """A wrong version of an arith step (or answer)."""
    if step.startswith("Answer:"):
        return f"Answer: {_slip(int(step.split(':')[1]), rng)}"
    left, symbol, operand, result = parse_arith_step(step)  # type: ignore[misc]
    roll = rng.random()
    if roll < 0.7:
        result = _slip(result, rng)
    elif roll < 0.85:
        operand = max(1, _slip(operand, rng))
    else:
        left = _slip(left, rng)
    return f"{left} {symbol} {operand} = {result}"


def corrupt_countdown(problem: str, previous: Sequence[str], step: str, rng: random.Random) -> str:
    """A wrong countdown step: arithmetic slip, wrong `left:` list, an unavailable number, or a dead end."""
    task = TASKS["countdown"]
    if step.startswith("Answer:"):
        parsed = parse_problem(problem)
        nums = list(parsed.numbers)
        rng.shuffle(nums)
        ops = [rng.choice("+-*") for _ in nums[1:]]
        expr = " ".join(f"{n} {op}" for n, op in zip(nums, [*ops, ""], strict=True)).strip()
        return f"Answer: {expr} = {parsed.target}"
    _, values = task._replay(problem, previous)
    values = list(values or parse_problem(problem).start())
    roll = rng.random()
    if roll < 0.45 and len(values) >= 2:  # any legal move; often a dead end
        i, j = sorted(rng.sample(range(len(values)), 2))
        move = rng.choice(list(_moves(values[i], values[j], min(values) < 0)))
        rest = values[:i] + values[i + 1 : j] + values[j + 1 :]
        after = render_left([*rest, move[3]])
        return f"{render(move[0])} {move[1]} {render(move[2])} = {render(move[3])} (left: {after})"
    head, _, left = step.partition(" (left: ")
    a, op, b, _, result = head.split(" ")
    if roll < 0.75:  # slip in the result, carried into the left list
        wrong = Fraction(_slip(int(Fraction(result)), rng)) if Fraction(result).denominator == 1 else Fraction(0)
        pool = Counter(values)
        pool.subtract([Fraction(a), Fraction(b)])
        pool[wrong] += 1
        return f"{a} {op} {b} = {render(wrong)} (left: {render_left(list(pool.elements()))})"
    if roll < 0.9:  # left list wrong (a number dropped or changed)
        items = left.rstrip(")").split()
        if len(items) > 1 and rng.random() < 0.5:
            items.pop(rng.randrange(len(items)))
        else:
            k = rng.randrange(len(items))
            items[k] = str(_slip(int(Fraction(items[k])), rng)) if Fraction(items[k]).denominator == 1 else "1"
        return f"{head} (left: {' '.join(items)})"
    fake = rng.randint(1, 13)  # an operand that is not on the table
    value = Fraction(fake) + Fraction(b) if op == "+" else Fraction(fake) * Fraction(b)
    return f"{fake} {op} {b} = {render(value)} (left: {left}"


def corrupt(problem: Problem, previous: Sequence[str], step: str, rng: random.Random) -> str:
    if problem.task == "arith":
        return corrupt_arith(step, rng)
    try:
        return corrupt_countdown(problem.text, previous, step, rng)
    except (ValueError, ZeroDivisionError, IndexError):
        return f"{step.split(' ')[0]} + 1 = 0 (left: 0)"


# --- policy examples ---------------------------------------------------------------------------


def prompt(problem: Problem, steps: Sequence[str]) -> str:
    return TASKS[problem.task].prompt(problem.text, steps)


def solution_example(problem: Problem, steps: Sequence[str]) -> Example:
    """The whole solution after the prompt; loss only on the solution and the end token."""
    head = prompt(problem, [])
    return Example(prompt(problem, steps), len(head), "solution")


def check_example(problem: Problem, steps: Sequence[str], rng: random.Random) -> Example:
    """A self-check question about one (correct or corrupted) step, answered by the exact checker."""
    task = TASKS[problem.task]
    index = rng.randrange(len(steps))
    step = steps[index] if rng.random() < 0.5 else corrupt(problem, steps[:index], steps[index], rng)
    verdict = task.check_step(problem.text, steps[:index], step)
    question = task.self_eval_question(problem.text, steps[:index], step)
    return Example(f"{question}{' yes' if verdict else ' no'}\n", len(question), "check")


#: Countdown levels of the policy data: level 2 (four numbers up to 13, half of them "make 24")
#: twice, because Game of 24 is the benchmark people know.
COUNTDOWN_TRAIN_LEVELS = (1, 2, 2, 3, 4, 5)


def policy_examples(
    seed: int, count: int, check_share: float = 0.25, arith_share: float = 0.5
) -> Iterator[Example]:
    """`count` solution and self-check examples of both tasks at all levels.

    With arith_share=0.5 the tasks alternate exactly; otherwise each example's task is drawn.
    """
    rng = random.Random(TRAIN_SEED_BASE + seed)
    for i in range(count):
        pick_arith = i % 2 == 0 if arith_share == 0.5 else rng.random() < arith_share
        task = "arith" if pick_arith else "countdown"
        levels = DIFFICULTIES if pick_arith else COUNTDOWN_TRAIN_LEVELS
        problem = problems(task, rng, 1, (levels[(i // 2) % len(levels)],))[0]
        steps = solution(problem, rng)
        if rng.random() < check_share:
            yield check_example(problem, steps, rng)
        else:
            yield solution_example(problem, steps)


#: Examples per data chunk; chunk k of training seed s draws from ``Random(TRAIN_SEED_BASE + s * 1000 + k)``.
CHUNK = 4000


def _chunk(args: tuple[int, int, int, float, float]) -> list[Example]:
    seed, index, count, check_share, arith_share = args
    return list(policy_examples(seed * 1000 + index, count, check_share, arith_share))


def policy_dataset(
    seed: int, count: int, check_share: float, arith_share: float, workers: int = 1, progress=None
) -> list[Example]:
    """`count` examples built in fixed-size chunks, in parallel when `workers` > 1.

    Why chunks with their own seeds: the result is the same for any number of workers (so a run
    is reproducible on any machine), and countdown's solver-backed solutions are slow enough
    (~150 examples/s per core) that building them in parallel saves minutes.
    """
    n_chunks = (count + CHUNK - 1) // CHUNK
    jobs = [(seed, k, min(CHUNK, count - k * CHUNK), check_share, arith_share) for k in range(n_chunks)]
    workers = min(workers, n_chunks)  # one chunk needs no pool
    pool = multiprocessing.get_context("fork").Pool(workers) if workers > 1 else contextlib.nullcontext()
    out: list[Example] = []
    with pool:
        for chunk in pool.imap(_chunk, jobs) if workers > 1 else map(_chunk, jobs):
            out += chunk
            if progress:
                progress(len(chunk))
    return out
