"""Replay timing and navigation: pure functions of the event log and a clock.

Why a clock instead of "one event per poll": each poll reruns the page, which takes longer
than a tick at 4 or 10 events/s, so stepping one event per poll played at 1-2 events/s
whatever rate was asked.  Instead the position is a function of the time since Play was
pressed, so a slow frame skips ahead and the replay keeps the asked rate on average.

Event numbers: the tables show an event's number as its position in the log counted from 1
(`event_number(seq) == seq + 1`), which is also the Replay slider value and the `?event=`
link that shows the tree right after that event.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from search.events import Event, EventKind

#: Shortest time between two frames; faster rates advance several events per frame.  A frame
#: is about 55 websocket messages: at 0.1 s a browser that stalled for a second on a busy
#: machine overflowed Streamlit's 500-message send queue and the server dropped it.
MIN_FRAME_S = 0.25


def event_number(seq: int) -> int:
    """The 1-based number shown for the event with 0-based `seq` (= slider / `?event=` value)."""
    return seq + 1


def playback_position(start: int, started_at: float, now: float, rate: float, total: int) -> int:
    """Slider position `elapsed * rate` events after `start`, capped at `total`.

    start: position when Play was pressed; started_at, now: seconds on one monotonic clock;
    rate: events per second (> 0).  Raises ValueError for a non-positive rate.
    """
    if rate <= 0:
        raise ValueError(f"replay rate must be positive (got {rate})")
    advanced = math.floor(max(0.0, now - started_at) * rate + 1e-9)
    return min(total, start + advanced)


def frame_interval(rate: float) -> float:
    """Seconds between polls for a rate in events/s: one event per frame up to 4 events/s."""
    return max(MIN_FRAME_S, 1.0 / rate)


def next_backtrack(events: Sequence[Event], position: int) -> int | None:
    """The slider position right after the first backtrack later than `position`, or None."""
    for seq in range(position, len(events)):
        if events[seq].kind is EventKind.BACKTRACKED:
            return event_number(seq)
    return None


def narrated_node(event: Event) -> int | None:
    """The node an event is about (the one its narration names first), for highlighting."""
    data = event.data
    for key in ("node", "to_node"):
        value = data.get(key)
        if isinstance(value, int):
            return value
    path = data.get("path")
    if isinstance(path, list) and path:
        return path[-1]
    return None
