"""`Store`: the run database with its users on top (the CLI and the app go through it).

`RunDatabase` (storage.store) holds the rows; this class adds what is built on them — a
recorder for the next search, a replay of a saved one, JSON / graph export and import — so
`store.py` never imports the modules that use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from storage.exchange import export_graph, export_run, import_run
from storage.recorder import Recorder
from storage.replay import Replay
from storage.store import RunDatabase


class Store(RunDatabase):
    """A run database.  Use `Store.open(...)`; close it (or use ``with``) when done.

    Opening resolves the location (see `storage.db`), refuses anything that is not a
    ThoughtScope database of a schema it knows without touching it, applies pending
    migrations, and marks runs whose recording process died as `interrupted`.  Every method
    raises `StorageError` with a readable message, never a driver exception.
    """

    def recorder(
        self,
        name: str | None = None,
        tags: Iterable[str] = (),
        models_info: Mapping[str, Any] | None = None,
        sweep_id: int | None = None,
    ) -> Recorder:
        """A sink that records the next search into this store (see `storage.recorder`)."""
        return Recorder(self, name=name, tags=tags, models_info=models_info, sweep_id=sweep_id)

    def replay(self, run_id: int) -> Replay:
        """Shorthand for ``Replay.load(store, run_id)``."""
        return Replay.load(self, run_id)

    def export_json(self, run_id: int) -> dict[str, Any]:
        """A versioned, self-contained JSON document of one run (metadata and events)."""
        return export_run(self, run_id)

    def import_json(self, source: Mapping[str, Any] | str | Path) -> int:
        """Validate and import an export (dict or file path) as a new run; returns its id."""
        return import_run(self, source)

    def export_graph(self, run_id: int, fmt: str = "graphml") -> str:
        """The run's final tree as GraphML or networkx node-link JSON."""
        return export_graph(self, run_id, fmt)
