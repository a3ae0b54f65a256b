"""Where the Replay page's event slider stands as a run grows (pure, so it is tested without Streamlit)."""

from __future__ import annotations


def slider_position(k: int | None, seen_total: int | None, total: int, wanted: str | None) -> int:
    """Where the event slider stands when the run has `total` events (it had `seen_total`).

    First view: the deep link's event (`wanted`) or the end.  A run that grew while the slider
    sat at its old end follows to the new end (a live run keeps growing on screen); anywhere
    else the slider stays where the user put it.
    """
    if k is not None and seen_total == total:
        return k
    if k is not None and seen_total is not None and k == seen_total:
        return total
    if k is not None and seen_total is not None:
        return min(k, total)
    wanted = wanted if wanted is not None else str(total)
    return min(int(wanted), total) if wanted.isdigit() else total


def event_link_problem(wanted: str | None, total: int) -> str | None:
    """What is wrong with a link's `event=` for a run of `total` events, or None when it is one of
    0..total (or absent).  The page then shows the last event and says so."""
    if wanted is None or (wanted.isdigit() and int(wanted) <= total):
        return None
    return (f"Event {wanted} does not exist in this run: it has {total} events, numbered 1 to {total} "
            "(0 is the start). Showing the last one.")
