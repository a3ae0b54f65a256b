"""Per-search state on model objects that several searches share at once.

The app loads one model set and every browser session searches with it, so two searches may call
the same backend objects concurrently (each call is serialised by the backend's own lock).  What a
backend keeps *between* calls for one search — the prefix KV cache of the transformers backends,
the token usage an inference server reports, the stop event a slow HTTP request watches — must
then belong to that search, not to the object:

* `run_validated` opens a `search_scope(stop)` around each search (a `contextvars` value, so it is
  seen by every model call the search makes from its own thread, and by worker threads that run
  inside a copy of its context, see `run_in_context`).
* A backend keeps such state in a `PerSearch` holder: each running search gets a fresh value,
  created at its first use; calls outside any search (tests, warm-up, benchmarks) share one
  "idle" value, which is also where a search's value goes when the search ends (so counters and
  cache statistics stay readable afterwards, as before).
* `stop_requested()` tells a backend whether the search *calling it* asked to stop.

Why not clear a shared cache at each search's start: a second search would empty the first's
cache mid-run, and the first's scores would then depend on what ran beside it (a cached prefix
gives the same tokens as re-encoding but sums floats in another order).  Why not bind the stop
event onto the backend: the last search to start would own every search's Stop.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class SearchScope:
    """One running search as backends see it: its stop event and what to do when it ends."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self._on_close: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run `callback` (no arguments) once, when the search ends."""
        with self._lock:
            self._on_close.append(callback)

    def close(self) -> None:
        """Run the close callbacks in registration order (each at most once)."""
        with self._lock:
            callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            callback()


_CURRENT: contextvars.ContextVar[SearchScope | None] = contextvars.ContextVar("thoughtscope_search", default=None)


def current_scope() -> SearchScope | None:
    """The scope of the search running in this context, or None outside any search."""
    return _CURRENT.get()


@contextmanager
def search_scope(stop: threading.Event) -> Iterator[SearchScope]:
    """Make a new `SearchScope` current for the block; close it (callbacks run) on the way out."""
    scope = SearchScope(stop)
    token = _CURRENT.set(scope)
    try:
        yield scope
    finally:
        _CURRENT.reset(token)
        scope.close()


def stop_requested() -> bool:
    """True when the search calling us (if any) has its stop event set."""
    scope = _CURRENT.get()
    return scope is not None and scope.stop.is_set()


def run_in_context(fn: Callable[[T], R]) -> Callable[[T], R]:
    """Wrap `fn` so that, run in a worker thread, it sees the caller's search scope.

    Call this in the caller's thread; each call of the wrapper runs in its own copy of the
    caller's context (a `Context` cannot be entered by two threads at once).
    """
    context = contextvars.copy_context()
    return lambda item: context.copy().run(fn, item)


class PerSearch(Generic[T]):
    """One value of `factory()` per running search, plus an idle value for calls outside searches.

    `get()` returns the calling search's value (made fresh at its first `get`), or the idle value.
    When a search ends its value becomes the idle value, so what the last search left (cache
    statistics, usage counters) can still be read; `reset_idle()` replaces the idle value with a
    fresh one.  Thread-safe.
    """

    def __init__(self, factory: Callable[[], T]):
        self._factory = factory
        self._lock = threading.Lock()
        self._by_scope: dict[int, T] = {}
        self.idle: T = factory()

    def get(self) -> T:
        scope = _CURRENT.get()
        if scope is None:
            return self.idle
        with self._lock:
            value = self._by_scope.get(id(scope))
            if value is None:
                value = self._by_scope[id(scope)] = self._factory()
                scope.on_close(lambda: self._retire(id(scope)))
            return value

    def reset_idle(self) -> None:
        with self._lock:
            self.idle = self._factory()

    def running(self) -> int:
        """How many searches hold a value now."""
        with self._lock:
            return len(self._by_scope)

    def _retire(self, key: int) -> None:
        with self._lock:
            self.idle = self._by_scope.pop(key)
