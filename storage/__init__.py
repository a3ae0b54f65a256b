"""Run storage: every search recorded to SQLite (or PostgreSQL) while it runs, then listed,
replayed, exported and imported.

This is the only package that imports SQLAlchemy; the engine (`search/`) knows nothing of it
and is followed through its event stream::

    from storage import Store
    with Store.open() as store:                      # $THOUGHTSCOPE_DB or ./thoughtscope.db
        with store.recorder(name="demo", tags=["workshop"]) as recorder:
            result = run_search(problem, task="arith", strategy="beam", models=models, sinks=[recorder])
        replay = Replay.load(store, recorder.run_id)
        replay.tree_at(10)                           # the tree after the first 10 events

See `storage.db` for the database location rules and PostgreSQL URLs, and
`storage.liveness` for when a run is marked `interrupted`.
"""

from storage.db import ENV_VAR, resolve_url
from storage.errors import StorageError
from storage.facade import Store
from storage.recorder import Recorder
from storage.replay import Replay
from storage.store import RunDatabase, RunSummary

__all__ = [
    "ENV_VAR",
    "Recorder",
    "Replay",
    "RunDatabase",
    "RunSummary",
    "StorageError",
    "Store",
    "resolve_url",
]
