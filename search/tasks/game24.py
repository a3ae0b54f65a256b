"""The Game-of-24 puzzles of Tree of Thoughts (``game24.csv``) and their held-out test slice.

The CSV (columns ``Rank,Puzzles,...``, puzzles like ``1 1 4 6``) is ranked from easiest to hardest;
ranks 901-1000 are the test slice reported in the ToT paper.  The countdown generator must never
emit one of those puzzles, so their multisets are also pasted here (`_TEST_SLICE_FALLBACK`) and the
exclusion holds even on a machine without the CSV; a test keeps the copy equal to the file.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ENV_VAR = "THOUGHTSCOPE_GAME24_CSV"
DEFAULT_CSV = Path(__file__).resolve().parents[2].parent / "shared/eval/game24.csv"
TARGET = 24
TEST_RANKS = range(901, 1001)


@dataclass(frozen=True)
class Game24Puzzle:
    """One ranked puzzle: four numbers to combine into 24."""

    rank: int
    numbers: tuple[int, ...]

    @property
    def text(self) -> str:
        """The puzzle as a countdown problem, e.g. ``Use 1 1 4 6 to make 24.``."""
        return f"Use {' '.join(map(str, self.numbers))} to make {TARGET}."


def csv_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The CSV to read: an explicit path, else `THOUGHTSCOPE_GAME24_CSV`, else the shared copy."""
    if path is not None:
        return Path(path)
    override = os.environ.get(ENV_VAR)
    return Path(override) if override else DEFAULT_CSV


def load_puzzles(path: str | os.PathLike[str] | None = None) -> list[Game24Puzzle]:
    """All puzzles of the CSV in rank order; FileNotFoundError says where it was looked for."""
    where = csv_path(path)
    if not where.is_file():
        raise FileNotFoundError(
            f"The Game-of-24 puzzles were looked for at {where} and are not there; put the Tree of "
            f"Thoughts game24.csv there or point {ENV_VAR} at it."
        )
    with where.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    try:
        puzzles = [Game24Puzzle(int(row["Rank"]), tuple(int(n) for n in row["Puzzles"].split())) for row in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where} is not a Game-of-24 CSV with columns Rank,Puzzles: {exc}") from exc
    return sorted(puzzles, key=lambda puzzle: puzzle.rank)


def test_slice(path: str | os.PathLike[str] | None = None) -> list[Game24Puzzle]:
    """The held-out puzzles, ranks 901 to 1000."""
    return [puzzle for puzzle in load_puzzles(path) if puzzle.rank in TEST_RANKS]


def _key(numbers: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted(int(n) for n in numbers))


@lru_cache(maxsize=1)
def test_multisets() -> frozenset[tuple[int, ...]]:
    """Sorted number tuples of the test slice: from the CSV when present, else the pasted copy."""
    try:
        return frozenset(_key(puzzle.numbers) for puzzle in test_slice())
    except FileNotFoundError:
        return frozenset(_TEST_SLICE_FALLBACK)


def is_test_puzzle(numbers: Iterable[int]) -> bool:
    """Whether these numbers, in any order, are one of the held-out puzzles."""
    return _key(numbers) in test_multisets()


# Their names start with "test"; keep pytest from collecting them when a test module imports them.
test_slice.__test__ = False  # type: ignore[attr-defined]
test_multisets.__test__ = False  # type: ignore[attr-defined]

#: Sorted numbers of ranks 901-1000 of game24.csv, in rank order (kept equal to the CSV by a test).
_TEST_SLICE_FALLBACK: tuple[tuple[int, int, int, int], ...] = (
    (4, 5, 6, 10),
    (1, 2, 4, 7),
    (2, 5, 8, 11),
    (3, 4, 4, 13),
    (6, 7, 8, 9),
    (1, 11, 11, 13),
    (1, 8, 10, 11),
    (2, 3, 6, 9),
    (1, 3, 5, 9),
    (3, 3, 7, 12),
    (4, 5, 7, 9),
    (1, 2, 8, 13),
    (4, 6, 6, 9),
    (1, 4, 4, 8),
    (1, 5, 10, 11),
    (3, 4, 6, 11),
    (2, 4, 8, 9),
    (1, 4, 5, 13),
    (2, 2, 7, 12),
    (3, 3, 6, 7),
    (1, 5, 9, 13),
    (5, 6, 7, 13),
    (5, 5, 8, 10),
    (2, 4, 6, 12),
    (6, 7, 8, 11),
    (7, 9, 9, 13),
    (3, 6, 9, 12),
    (6, 9, 12, 13),
    (4, 7, 9, 13),
    (5, 6, 8, 12),
    (2, 4, 6, 7),
    (2, 5, 10, 10),
    (6, 6, 7, 12),
    (6, 9, 9, 11),
    (5, 8, 11, 12),
    (5, 6, 8, 10),
    (6, 11, 12, 13),
    (2, 2, 8, 8),
    (2, 7, 12, 13),
    (2, 6, 8, 12),
    (3, 4, 9, 13),
    (4, 5, 10, 12),
    (1, 2, 7, 11),
    (4, 5, 6, 8),
    (6, 10, 12, 13),
    (1, 3, 9, 9),
    (1, 4, 4, 11),
    (2, 3, 9, 10),
    (1, 2, 3, 13),
    (1, 6, 6, 6),
    (1, 2, 2, 9),
    (1, 3, 6, 11),
    (5, 10, 12, 13),
    (2, 3, 6, 6),
    (6, 7, 10, 12),
    (7, 8, 8, 12),
    (3, 4, 6, 8),
    (1, 7, 9, 11),
    (2, 3, 6, 13),
    (2, 2, 5, 12),
    (2, 6, 8, 13),
    (8, 8, 10, 12),
    (1, 3, 8, 13),
    (4, 4, 7, 10),
    (1, 7, 10, 13),
    (1, 9, 10, 13),
    (3, 3, 4, 11),
    (2, 5, 7, 7),
    (3, 9, 10, 13),
    (2, 3, 4, 7),
    (4, 4, 8, 12),
    (1, 2, 6, 10),
    (1, 5, 12, 12),
    (5, 6, 6, 8),
    (7, 7, 8, 11),
    (1, 3, 7, 10),
    (3, 3, 9, 12),
    (3, 5, 7, 10),
    (4, 10, 12, 13),
    (2, 3, 10, 12),
    (3, 4, 6, 6),
    (5, 8, 8, 8),
    (6, 8, 8, 12),
    (2, 3, 4, 9),
    (2, 6, 7, 11),
    (5, 9, 12, 12),
    (1, 2, 7, 12),
    (2, 4, 5, 6),
    (5, 5, 8, 13),
    (2, 3, 3, 10),
    (3, 4, 8, 12),
    (2, 4, 6, 11),
    (2, 2, 8, 9),
    (1, 5, 6, 7),
    (5, 8, 10, 11),
    (4, 4, 9, 12),
    (2, 5, 6, 6),
    (2, 4, 9, 12),
    (4, 8, 11, 13),
    (4, 9, 10, 13),
)
