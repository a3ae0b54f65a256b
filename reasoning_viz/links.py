"""Which search or saved run a page link opens: pure rules, shared by the Search and Replay pages.

A link opens exactly its run, or says plainly that it cannot.  `?run=N` names a row in the
run database, which outlives the server; `?job=job-K` names a search in this server's
memory, whose ids restart at job-1 after a restart.  So the run id is the authority: a job
is used only when it is still running (no run id yet) with no run asked for, or when it
records exactly the run asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class LinkTarget:
    """What a link resolved to: a live job, a saved run, nothing asked, or a plain message.

    Exactly one of `job_id`, `run_id`, `message` is set, or none when the link names nothing.
    """

    job_id: str | None = None
    run_id: int | None = None
    message: str | None = None


def parse_run_id(raw: str | None) -> int | None:
    """The run id in a `run=` parameter; None when absent.  Raises ValueError on anything but
    a positive whole number (e.g. `run=abc`, `run=-1`)."""
    if raw is None or raw == "":
        return None
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ValueError(f"`run={raw}` is not a run number (runs are numbered 1, 2, 3, …).")
    return int(raw)


def resolve_link(
    params: Mapping[str, str],
    job_runs: Mapping[str, int | None],
    run_exists: Callable[[int], bool],
) -> LinkTarget:
    """Resolve `?job=` / `?run=` query parameters.

    job_runs: every job this server knows -> the run id it records (None while it has none).
    run_exists: whether the run database has that run (may raise; the caller shows it).
    """
    try:
        run_id = parse_run_id(params.get("run"))
    except ValueError as exc:
        return LinkTarget(message=str(exc))
    job_id = params.get("job")
    if run_id is None:
        if job_id is None:
            return LinkTarget()
        if job_id in job_runs:
            return LinkTarget(job_id=job_id)
        return LinkTarget(
            message=f"Search {job_id} is not running in this server (the app may have restarted). "
            "Open its saved run from the Replay page, or start a new search."
        )
    if not run_exists(run_id):  # before any job: a job of this server may hold a run deleted since
        return LinkTarget(message=f"Run {run_id} does not exist in this run database.")
    if job_id is not None and job_runs.get(job_id, -1) == run_id:
        return LinkTarget(job_id=job_id)
    owner = next((job for job, run in job_runs.items() if run == run_id), None)
    return LinkTarget(job_id=owner) if owner is not None else LinkTarget(run_id=run_id)


def replay_choice(wanted: str | None, listed: Iterable[int], run_exists: Callable[[int], bool]) -> LinkTarget:
    """The run the Replay page opens: the one in the URL (even when the sidebar filters hide it),
    the newest listed one when the URL names none, or a message when the URL's run is missing."""
    listed = list(listed)
    try:
        run_id = parse_run_id(wanted)
    except ValueError as exc:
        return LinkTarget(message=str(exc))
    if run_id is None:
        return LinkTarget(run_id=listed[0]) if listed else LinkTarget()
    if run_id in listed or run_exists(run_id):
        return LinkTarget(run_id=run_id)
    return LinkTarget(message=f"Run {run_id} does not exist in this run database.")
