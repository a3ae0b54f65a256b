"""Numbers from models are checked where they enter the engine.

Why here: a reward model that returns NaN for one step used to end a run late, in the JSON
encoder, with "Out of range float values are not JSON compliant" and no word of which model
or step.  Every score, log-probability and P(yes) now passes `bad_number` as it arrives; a
NaN or infinite value is refused with the model's name, the path and the step.  The
strategy knob `on_bad_number` chooses what then happens: ``fail`` ends the run as failed with
that sentence; ``unscored`` leaves the score out, records an ``unscored`` event (the app and
the CLI summary count them) and values the node 0, like a rollout that found no answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

ON_BAD_NUMBER = ("fail", "unscored")


class ModelOutputError(ValueError):
    """A model returned a number the engine cannot use (NaN, infinite, or not a number)."""


def bad_number(values: Iterable[object]) -> tuple[int, object] | None:
    """(index, value) of the first value that is not a finite real number, or None when all are.

    Booleans count as bad (a backend returning True for a score is a bug, not a probability).
    """
    for index, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                number = float(value)  # numpy / torch scalars
            except (TypeError, ValueError):
                return index, value
        else:
            number = float(value)
        if not math.isfinite(number):
            return index, value
    return None


def describe_value(value: object) -> str:
    """``nan``, ``inf``, ``-inf`` or the repr of a non-number, for messages and events."""
    try:
        return str(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return repr(value)[:80]
