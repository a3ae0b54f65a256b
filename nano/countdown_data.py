"""Countdown states with exact labels: the value model's and the countdown policy's training data.

Every label comes from the project's exact checker (`CountdownTask.step_valid` /
`step_reachable`), so the data is unlimited and never wrong.  A state is a path written exactly as
the policy writes it (``Problem: ...\\nSolution:\\n`` then one step per line); the value model reads
a score at the newline after each step.  Three classes per step:

* ``GOOD`` (1): the step is legal and the target can still be made from the numbers left;
* ``DEAD`` (2): the step is legal but the target is no longer reachable;
* ``ILLEGAL`` (0): wrong arithmetic, a number that is not on the list, a wrong ``left:`` list, or
  any step after an illegal one.

The head-PRM path (`models.hf.HFPRM`, kind="head") reads softmax label 1 = P(GOOD).

Held-out puzzles: the Game-of-24 test slice (ranks 901-1000 of game24.csv) and a validation set
(`validation_ranks`, every tenth rank outside the test slice) are never training problems;
`is_held_out` is applied to every generated problem and a test checks it against the CSV.

Randomness: example `i` of a stream with seed `s` is drawn from ``Random(s * 10**9 + i)`` (see
`example_rng`), so a training run resumed at step k sees exactly the data it would have seen.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from nano.data import fast_reachable
from search.tasks.countdown import CountdownTask, expression, render, render_left
from search.tasks.game24 import TEST_RANKS, is_test_puzzle, load_puzzles

ILLEGAL, GOOD, DEAD = 0, 1, 2
LABELS = ("illegal", "good", "dead end")
TASK = CountdownTask()
#: (count of numbers, largest number) of the training problems besides Game-of-24 puzzles.
RANGES = {3: (10, 25), 4: (13, 25), 5: (13, 50)}


def example_rng(seed: int, index: int) -> random.Random:
    """The RNG of example `index` of stream `seed` (independent of how the stream is batched)."""
    return random.Random(seed * 10**9 + index)


# --- held-out puzzles ------------------------------------------------------------------------


def validation_ranks() -> list[int]:
    """Ranks of game24.csv used to measure the value model and policy: ranks 5, 15, 25, ... outside 901-1000."""
    return [p.rank for p in load_puzzles() if p.rank % 10 == 5 and p.rank not in TEST_RANKS]


@lru_cache(maxsize=1)
def validation_multisets() -> frozenset[tuple[int, ...]]:
    """Sorted numbers of the validation puzzles (needs the CSV: FileNotFoundError says where)."""
    keep = set(validation_ranks())
    return frozenset(tuple(sorted(p.numbers)) for p in load_puzzles() if p.rank in keep)


#: Problems of the held-out countdown stream (`nano.data.heldout_problems`) kept out of training.
HELDOUT_COUNTDOWN = 300


@lru_cache(maxsize=1)
def heldout_countdown() -> frozenset[tuple[tuple[int, ...], int]]:
    """(sorted numbers, target) of the first HELDOUT_COUNTDOWN held-out countdown problems (`eval`'s)."""
    from nano.data import heldout_problems
    from search.tasks.countdown import parse_problem

    parsed = [parse_problem(p.text) for p in heldout_problems("countdown", HELDOUT_COUNTDOWN)]
    return frozenset((p.numbers, p.target) for p in parsed)


def is_held_out(numbers: Sequence[int], target: int) -> bool:
    """True for a Game-of-24 test or validation puzzle (four numbers, target 24) or a held-out
    countdown problem of `eval`'s stream."""
    key = tuple(sorted(numbers))
    if (key, target) in heldout_countdown():
        return True
    return len(key) == 4 and target == 24 and (is_test_puzzle(key) or key in validation_multisets())


# --- problems --------------------------------------------------------------------------------


def random_problem(rng: random.Random, count: int, game24_share: float = 0.5) -> tuple[tuple[int, ...], int]:
    """(sorted numbers, target) with `count` numbers, never a held-out puzzle.

    Four numbers: `game24_share` of them are Game-of-24 style (1-13, target 24, solvable or not).
    Otherwise the target is the value of a random expression (solvable) or, a third of the
    time, any number 1-100 (often unsolvable: the value model must see dead starts too).
    """
    while True:
        if count == 4 and rng.random() < game24_share:
            numbers, target = tuple(sorted(rng.randint(1, 13) for _ in range(4))), 24
        else:
            top = rng.choice(RANGES[count])
            numbers = tuple(sorted(rng.randint(1, top) for _ in range(count)))
            unsolvable_ok = count < 5 and rng.random() < 1 / 3  # five numbers: exhaustive checks are too slow
            target = rng.randint(1, 100) if unsolvable_ok else _expression_value(rng, numbers)
        if target and not is_held_out(numbers, target):
            return numbers, target


def _expression_value(rng: random.Random, numbers: Sequence[int]) -> int:
    """A whole target 1-100 reached by combining all numbers at random (0 when no try lands)."""
    for _ in range(30):
        pool = [Fraction(n) for n in numbers]
        while len(pool) > 1:
            a, b = pool.pop(rng.randrange(len(pool))), pool.pop(rng.randrange(len(pool)))
            pool.append(_apply(a, rng.choice("+-*/"), b))
        if pool[0].denominator == 1 and 1 <= pool[0] <= 100:
            return int(pool[0])
    return 0


def _apply(a: Fraction, op: str, b: Fraction) -> Fraction:
    if op == "+":
        return a + b
    if op == "*":
        return a * b
    if op == "-":
        return abs(a - b)
    return a / b if b else a + b


# --- moves and steps -------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    """A step as text and the multiset it claims to leave (None when the claim cannot be parsed)."""

    text: str
    after: tuple[Fraction, ...] | None


def legal_moves(values: Sequence[Fraction]) -> list[tuple[Fraction, str, Fraction, Fraction]]:
    """Every legal move a writer might make: both orders of - and / (negative and fractional results allowed)."""
    out, seen = [], set()
    for i in range(len(values)):
        for j in range(len(values)):
            if i == j or (values[i], values[j]) in seen:
                continue
            seen.add((values[i], values[j]))
            a, b = values[i], values[j]
            for op in "+-*/":
                if op in "+*" and a > b:
                    continue  # the same move as b op a
                if op == "/" and not b:
                    continue
                out.append((a, op, b, _exact(a, op, b)))
    return out


def _exact(a: Fraction, op: str, b: Fraction) -> Fraction:
    return a + b if op == "+" else a - b if op == "-" else a * b if op == "*" else a / b


def after_move(values: Sequence[Fraction], move: tuple[Fraction, str, Fraction, Fraction]) -> tuple[Fraction, ...]:
    pool = Counter(values)
    pool.subtract((move[0], move[2]))
    pool[move[3]] += 1
    return tuple(sorted(pool.elements()))


def write(move: tuple[Fraction, str, Fraction, Fraction], left: Sequence[Fraction], rng: random.Random,
          shuffle_share: float = 0.05) -> str:
    """``a op b = r (left: ...)``; operands of + and * in either order; rarely an unsorted left list."""
    a, op, b, result = move
    if op in "+*" and rng.random() < 0.5:
        a, b = b, a
    items = list(left)
    if rng.random() < shuffle_share:
        rng.shuffle(items)
        left_text = " ".join(render(v) for v in items)
    else:
        left_text = render_left(items)
    return f"{render(a)} {op} {render(b)} = {render(result)} (left: {left_text})"


def good_moves(values: Sequence[Fraction], target: int) -> list[tuple[Fraction, str, Fraction, Fraction]]:
    """Legal moves after which the target is still reachable."""
    return [m for m in legal_moves(values) if fast_reachable(after_move(values, m), target)]


def random_good_move(values: Sequence[Fraction], target: int, rng: random.Random):
    """A uniformly drawn good move, or None (the first reachable one in a random order)."""
    moves = legal_moves(values)
    rng.shuffle(moves)
    return next((m for m in moves if fast_reachable(after_move(values, m), target)), None)


def _slip(value: Fraction, rng: random.Random) -> Fraction:
    """A wrong result close to the right one (off by a little, a digit changed, another operator)."""
    roll = rng.random()
    if value.denominator != 1 or roll < 0.45:
        wrong = value + rng.choice([-1, 1]) * rng.randint(1, 4)
    elif roll < 0.8 and abs(value) >= 10:
        digits = list(str(abs(int(value))))
        k = rng.randrange(len(digits))
        digits[k] = str((int(digits[k]) + rng.randint(1, 9)) % 10)
        wrong = Fraction(int("".join(digits))) * (1 if value >= 0 else -1)
    else:
        wrong = value * rng.choice([2, 3]) if value else Fraction(rng.randint(1, 9))
    return wrong if wrong != value else value + 1


def tempting_slip(values: Sequence[Fraction], target: int, rng: random.Random) -> str:
    """A move with wrong arithmetic whose claimed result makes the claimed list look solvable.

    With two numbers left the move claims the target itself (``10 * 11 = 24 (left: 24)``); earlier
    it claims a nearby wrong result from which the target is reachable, when one exists (else an
    ordinary slip); nearby includes the policy's commonest slips, ``3 - 5 = 2`` and ``2 / 6 = 3``.
    These are the hard negatives a value model meets in a search: the policy writes the result it
    wants, and only the arithmetic says it is wrong.
    """
    move = rng.choice(legal_moves(values))
    a, op, b, result = move
    rest = Counter(values)
    rest.subtract((a, b))
    rest_values = list(rest.elements())
    if not rest_values:
        wrong = Fraction(target) if result != target else _slip(result, rng)
    else:
        near = {_slip(result, rng) for _ in range(12)} | {result + d for d in (-2, -1, 1, 2)}
        near |= {-result} | ({1 / result} if result else set())  # the sign or the division turned round
        near.discard(result)
        tempting = [w for w in sorted(near) if fast_reachable(tuple(sorted([*rest_values, w])), target)]
        wrong = rng.choice(tempting) if tempting else _slip(result, rng)
    return write((a, op, b, wrong), sorted([*rest_values, wrong]), rng)


def corrupted(values: Sequence[Fraction], rng: random.Random, target: int | None = None,
              tempting_share: float = 0.0) -> str:
    """An illegal step from `values`: wrong arithmetic, an unavailable number, or a wrong left list;
    with `target` given, `tempting_share` of them are `tempting_slip`s (no random draw when 0, so
    streams made without it are unchanged)."""
    if target is not None and tempting_share and rng.random() < tempting_share:
        return tempting_slip(values, target, rng)
    move = rng.choice(legal_moves(values))
    a, op, b, result = move
    roll = rng.random()
    if roll < 0.4:  # arithmetic slip, carried consistently into the left list
        wrong = _slip(result, rng)
        pool = Counter(values)
        pool.subtract((a, b))
        pool[wrong] += 1
        return write((a, op, b, wrong), list(pool.elements()), rng)
    if roll < 0.65:  # an operand that is not on the list (or used more often than it is there)
        fake = rng.choice([v for v in values if v != a] + [Fraction(rng.randint(1, 13))])
        if Counter(values)[fake] > (1 if fake == b else 0):
            fake = fake + rng.randint(1, 5)
        move = (fake, op, b, _exact(fake, op, b)) if op != "/" or b else move
        rest = Counter(values)
        rest.subtract((a, b))
        rest[move[3]] += 1
        return write(move, list(rest.elements()), rng)
    left = list(after_move(values, move))
    kind = rng.random()
    if kind < 0.25 and len(left) > 1:
        left.pop(rng.randrange(len(left)))  # a number dropped
    elif kind < 0.45:
        left.append(rng.choice([a, b]))  # an operand kept
    elif kind < 0.65:
        left = list(values)  # the list not updated
    elif kind < 0.85:
        left[left.index(result)] = _slip(result, rng)  # the result miscopied
    else:
        k = rng.randrange(len(left))
        left[k] = left[k] + rng.choice([-1, 1]) * rng.randint(1, 3)  # another number miscopied
    return write(move, left, rng, shuffle_share=0.0)


# --- value examples --------------------------------------------------------------------------


@dataclass(frozen=True)
class ValueExample:
    """A problem, a path and one class label per step (ILLEGAL / GOOD / DEAD)."""

    problem: str
    steps: tuple[str, ...]
    labels: tuple[int, ...]


def label_steps(problem: str, steps: Sequence[str]) -> tuple[int, ...]:
    """Exact labels from the project's checker, step by step."""
    out = []
    for i, step in enumerate(steps):
        if TASK.step_reachable(problem, steps[:i], step):
            out.append(GOOD)
        elif TASK.step_valid(problem, steps[:i], step):
            out.append(DEAD)
        else:
            out.append(ILLEGAL)
    return tuple(out)


def value_example(rng: random.Random, count_weights: dict[int, float], corrupt_share: float = 0.25,
                  good_share: float = 0.4, game24_share: float = 0.5, tempting_share: float = 0.0) -> ValueExample:
    """A random path of a random problem (`count_weights`: numbers in the problem -> weight).

    Each step is a good move (`good_share`), a corrupted one (`corrupt_share`, and the path ends
    there; `tempting_share` of those are `tempting_slip`s) or any legal move; a path that reaches
    one number may end with an ``Answer:`` step.
    """
    count = rng.choices(list(count_weights), weights=list(count_weights.values()))[0]
    numbers, target = random_problem(rng, count, game24_share)
    problem = f"Use {' '.join(map(str, numbers))} to make {target}."
    values: tuple[Fraction, ...] = tuple(Fraction(n) for n in numbers)
    steps: list[str] = []
    moves: list[tuple[Fraction, str, Fraction, Fraction]] = []
    depth = count - 1 if rng.random() < 0.6 else rng.randint(1, count - 1)  # long paths: more labels per pass
    for _ in range(depth):
        roll = rng.random()
        if roll < corrupt_share:
            steps.append(corrupted(values, rng, target, tempting_share))
            break
        move = random_good_move(values, target, rng) if roll < corrupt_share + good_share else None
        move = move or rng.choice(legal_moves(values))
        values = after_move(values, move)
        moves.append(move)
        steps.append(write(move, values, rng))
    else:
        if len(values) == 1 and rng.random() < 0.5:
            steps.append(_answer(numbers, target, moves, rng))
    return ValueExample(problem, tuple(steps), label_steps(problem, steps))


def _answer(numbers: Sequence[int], target: int, moves: Sequence, rng: random.Random) -> str:
    """The answer the moves build (right or wrong), sometimes with a number miscopied."""
    text = expression(numbers, moves)
    if rng.random() < 0.2:
        text = text.replace(str(numbers[0]), str(numbers[0] + 1), 1)
    return f"Answer: {text} = {target}"


# --- states near Game-of-24 puzzles (measurement) --------------------------------------------


def puzzle_states(numbers: Sequence[int], rng: random.Random, second: int = 3,
                  corrupt_per_state: int = 1) -> list[tuple[ValueExample, int]]:
    """Every distinct legal first move of a puzzle, `second` second moves after some of them, and
    `corrupt_per_state` corrupted steps at each depth; each as (example, depth).

    The label that counts is the last step's; the earlier steps are legal.
    """
    problem = f"Use {' '.join(map(str, sorted(numbers)))} to make 24."
    start = tuple(Fraction(n) for n in sorted(numbers))
    out: list[tuple[ValueExample, int]] = []
    firsts = legal_moves(start)
    for move in firsts:
        after = after_move(start, move)
        steps = (write(move, after, rng, shuffle_share=0.0),)
        out.append((ValueExample(problem, steps, label_steps(problem, steps)), 1))
    for move in rng.sample(firsts, min(second, len(firsts))):
        after = after_move(start, move)
        first = write(move, after, rng, shuffle_share=0.0)
        for move2 in legal_moves(after):
            steps = (first, write(move2, after_move(after, move2), rng, shuffle_share=0.0))
            out.append((ValueExample(problem, steps, label_steps(problem, steps)), 2))
        for _ in range(corrupt_per_state):
            steps = (first, corrupted(after, rng))
            out.append((ValueExample(problem, steps, label_steps(problem, steps)), 2))
    for _ in range(corrupt_per_state * 3):
        steps = (corrupted(start, rng),)
        out.append((ValueExample(problem, steps, label_steps(problem, steps)), 1))
    return out


def final_states(numbers: Sequence[int], rng: random.Random, paths: int = 3,
                 slips_per_path: int = 2) -> list[tuple[ValueExample, int]]:
    """Last moves of a puzzle, each as (example, 3): after `paths` random pairs of good moves (two
    numbers left that can make 24), every legal last move (good when it makes 24) and
    `slips_per_path` wrong-arithmetic moves that claim 24 (`tempting_slip`).

    This is where a search's found-but-wrong answers came from (session 6: all 11 on validation
    puzzles were last moves claiming 24 with wrong arithmetic).
    """
    problem = f"Use {' '.join(map(str, sorted(numbers)))} to make 24."
    start = tuple(Fraction(n) for n in sorted(numbers))
    out: list[tuple[ValueExample, int]] = []
    for _ in range(paths):
        values, steps = start, []
        for _ in range(2):
            move = random_good_move(values, 24, rng)
            if move is None:
                return out
            values = after_move(values, move)
            steps.append(write(move, values, rng, shuffle_share=0.0))
        lasts = [write(m, after_move(values, m), rng, shuffle_share=0.0) for m in legal_moves(values)]
        lasts += [tempting_slip(values, 24, rng) for _ in range(slips_per_path)]
        for last in lasts:
            path = (*steps, last)
            out.append((ValueExample(problem, path, label_steps(problem, path)), 3))
    return out
