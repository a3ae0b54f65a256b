"""Background search jobs for the app: the script thread starts a job and never waits on it.

A job runs `run_search` in a daemon thread; its events land in a list that page fragments
poll, and (when a recorder is given) in the database.  The registry lives in
`st.cache_resource`, so a page reload re-attaches to a running search by its id.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from search.events import Event, EventSink
from search.runner import SearchResult
from search.tree import Tree


@dataclass
class Job:
    """One search running (or finished) in the background."""

    id: str
    label: str
    stop: threading.Event = field(default_factory=threading.Event)
    events: list[Event] = field(default_factory=list)
    result: SearchResult | None = None
    error: str | None = None
    run_id: int | None = None
    #: The sink recording this job, whose run id appears once the first event is stored.
    recorder: Any = None
    #: What a non-search job reports while it runs (a sweep's `SweepProgress`); None for searches.
    progress: Any = None
    started: float = field(default_factory=time.monotonic)
    thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _tree: Tree = field(default_factory=Tree, repr=False)

    def sink(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def sync_run_id(self) -> int | None:
        """Pick the run id up from the recorder once it has one (never waits)."""
        if self.run_id is None and self.recorder is not None:
            self.run_id = getattr(self.recorder, "run_id", None)
        return self.run_id

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)

    def tree(self) -> Tree:
        """The live tree, folded incrementally from the events that arrived since the last call."""
        events = self.snapshot()
        with self._lock:
            for event in events[self._tree.events_applied :]:
                self._tree.apply(event)
            return self._tree

    def cancel(self) -> None:
        self.stop.set()


class JobRegistry:
    """Thread-safe map of job id -> Job, shared by every browser session of one server."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def start(
        self,
        label: str,
        search: Callable[[list[EventSink], threading.Event], SearchResult],
        *,
        recorder: EventSink | None = None,
        on_done: Callable[[Job], Any] | None = None,
        progress: Any = None,
    ) -> Job:
        """Start `search(sinks, stop)` in a daemon thread and return its job at once.

        `search` feeds its events to `sinks` (the job's list); `recorder` is the sink that saves
        the run, which `search` already feeds (a `LaunchedRun` does): the job only reads its run id.
        `progress` is kept on the job for pages to read (a sweep's progress; see `sweep_job`).
        """
        job = Job(id=f"job-{next(self._ids)}", label=label, recorder=recorder, progress=progress)

        def target() -> None:
            try:
                job.result = search([job.sink], job.stop)
            except Exception as exc:  # noqa: BLE001 - surfaced in the UI as the job's error
                job.error = f"{type(exc).__name__}: {exc}"
            finally:
                if on_done:
                    on_done(job)

        job.thread = threading.Thread(target=target, name=job.id, daemon=True)
        with self._lock:
            self._jobs[job.id] = job
        job.thread.start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def by_run(self, run_id: int) -> Job | None:
        with self._lock:
            return next((job for job in self._jobs.values() if job.sync_run_id() == run_id), None)

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def running(self) -> int:
        """How many jobs (searches and sweeps, of every session) are running now."""
        return sum(job.running for job in self.all())


def poll_seconds(running: int, base: float = 0.5, busiest: float = 2.0) -> float:
    """How often a live view polls (seconds) while `running` searches share this server.

    `base` while at most two run; beyond that each running search adds a quarter of a second,
    up to `busiest`: eight people watching eight searches then ask for 4 redraws a second in all
    instead of 16, and the CPU goes to the searches (every poll reruns a page and redraws its
    tree in the browser). Raises nothing; `running` below 0 counts as 0.
    """
    if running <= 2:
        return base
    return min(busiest, max(base, 0.25 * running))
