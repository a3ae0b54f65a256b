"""SQLite files: where the database lives, refusing bad files untouched, migrations, and a
search killed with SIGKILL mid-run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from search import run_search
from search.events import comparable
from search.tree import Tree
from storage import (
    ENV_VAR,
    Replay,
    StorageError,
    Store,
    liveness,
    migrate,
    resolve_url,
)
from storage.db import make_engine
from storage.schema import Base
from tests.engine_cases import PROBLEM, scripted_models

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------- location rules
def test_default_location_is_thoughtscope_db_in_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    with Store.open() as store:
        assert store.where == str(tmp_path / "thoughtscope.db")
    assert (tmp_path / "thoughtscope.db").exists()


def test_env_var_path_and_url_override_the_default(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "from_env.db"))
    with Store.open() as store:
        assert store.where.endswith("from_env.db")
    with Store.open(tmp_path / "explicit.db") as store:  # an explicit argument wins over the env var
        assert store.where.endswith("explicit.db")
    monkeypatch.setenv(ENV_VAR, f"sqlite:///{tmp_path / 'url.db'}")
    with Store.open() as store:
        assert store.where == str(tmp_path / "url.db")
    assert not (tmp_path / "thoughtscope.db").exists()


def test_url_resolution() -> None:
    assert resolve_url("postgresql://u:p@db/ts").drivername == "postgresql+psycopg"
    assert resolve_url("postgres://u:p@db/ts").drivername == "postgresql+psycopg"
    assert resolve_url("postgresql+psycopg://u:p@db/ts").database == "ts"
    assert resolve_url("runs.db").database == str(Path("runs.db").absolute())
    for bad in ("sqlite://", "sqlite:///:memory:", "   "):
        with pytest.raises(StorageError):
            resolve_url(bad)


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    with Store.open(tmp_path / "p.db") as store, store.engine.connect() as conn:
        pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") >= 5000


# ---------------------------------------------------------------------- refusing bad files
def _snapshot(path: Path) -> tuple[bytes, int] | None:
    return (path.read_bytes(), path.stat().st_mtime_ns) if path.is_file() else None


def _newer_schema(path: Path) -> None:
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    conn.close()


def _foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    conn.close()


BAD_FILES = {
    "random bytes": (lambda p: p.write_bytes(os.urandom(8192)), "not a SQLite database"),
    "text file": (lambda p: p.write_text("name,score\nalice,3\n" * 50), "not a SQLite database"),
    "corrupt sqlite": (
        lambda p: p.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16),
        "not a usable SQLite",
    ),
    "foreign sqlite": (_foreign_sqlite, "another application"),
    "newer schema": (_newer_schema, "newer ThoughtScope"),
    "directory": (lambda p: p.mkdir(), "is a directory"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_database_files_are_refused_untouched(tmp_path: Path, case: str) -> None:
    make, message = BAD_FILES[case]
    path = tmp_path / "bad.db"
    make(path)
    before = _snapshot(path)
    listing = _listing(tmp_path)
    time.sleep(0.01)
    with pytest.raises(StorageError, match=message) as error:
        Store.open(path)
    assert str(path) in str(error.value)
    assert _snapshot(path) == before
    assert _listing(tmp_path) == listing


def _listing(folder: Path) -> list[str]:
    """Files in a folder, ignoring SQLite's -wal/-shm sidecars (a read-only look may create them)."""
    return sorted(name for name in os.listdir(folder) if not name.endswith(("-wal", "-shm")))


def test_unwritable_locations_are_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    places = {
        tmp_path / "no" / "such" / "dir" / "x.db": "does not exist",
        blocker / "x.db": "does not exist",
    }
    if Path("/proc").is_dir():
        places[Path("/proc/thoughtscope-test.db")] = "cannot"  # not creatable, even as root
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        places[locked / "x.db"] = "cannot write"
    for path, message in places.items():
        with pytest.raises(StorageError, match=message):
            Store.open(path)
    assert blocker.read_text() == "x"


# ---------------------------------------------------------------------- migrations
def test_migrations_upgrade_an_empty_database_to_the_model(tmp_path: Path) -> None:
    with Store.open(tmp_path / "fresh.db") as store, store.engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
        assert (
            compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
            == []
        )
        assert {"runs", "events", "nodes", "sweeps", "run_tags"} <= set(inspect(conn).get_table_names())
    assert migrate.known_revisions()[:2] == ["0001", "0002"]


def test_migrations_upgrade_a_first_revision_database_with_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    result = run_search(
        PROBLEM, task="arith", strategy="beam", models=scripted_models(), config={"n": 4, "beam_width": 2}
    )
    engine = make_engine(resolve_url(path))
    migrate.upgrade(engine, "0001")
    with engine.begin() as conn:
        assert migrate.current_revision(conn) == "0001"
        assert "sweeps" not in inspect(conn).get_table_names()
        started = result.events[0].data
        conn.exec_driver_sql(
            "INSERT INTO runs (id, created, name, task, problem, strategy, config, seed, limits, models,"
            " status, event_count, node_count) VALUES (7, '2024-05-01 12:00:00', 'old run', 'arith', ?,"
            " 'beam', '{}', 0, '{}', '{}', 'finished', ?, 0)",
            (started["problem"], len(result.events)),
        )
        rows = [(7, e.seq, e.t, e.kind.value, __import__("json").dumps(e.data)) for e in result.events]
        conn.exec_driver_sql("INSERT INTO events (run_id, seq, t, kind, data) VALUES (?, ?, ?, ?, ?)", rows)
    engine.dispose()
    with Store.open(path) as store:  # applies 0002 (which rebuilds `runs` in batch mode)
        with store.engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.head_revision()
        run = store.get_run(7)
        assert (run.name, run.status, run.tags, run.sweep_id) == ("old run", "finished", (), None)
        assert run.created.isoformat().startswith("2024-05-01T12:00:00")
        assert comparable(store.events(7)) == comparable(result.events)  # the rebuild cascaded nothing
        assert Replay.load(store, 7).tree_at(len(result.events)) == result.tree
        assert store.tag(7, add=["migrated"]) == ("migrated",)
        sweep = store.create_sweep("after", {})
        assert sweep >= 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


def test_opening_twice_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "twice.db"
    Store.open(path).close()
    before = _snapshot(path)
    Store.open(path).close()
    assert _snapshot(path)[0] == before[0]


# ---------------------------------------------------------------------- crash safety
CHILD = """
import sys
from search import Budget, run_search
from tests.engine_cases import PROBLEM, scripted_models
from storage import Store

store = Store.open(sys.argv[1])
recorder = store.recorder(name="doomed")
run_search(PROBLEM, task="arith", strategy="mcts", models=scripted_models(),
           config={"simulations": 10_000_000}, budget=Budget(max_seconds=60), sinks=[recorder])
recorder.close()
"""


@pytest.mark.slow
def test_sigkill_mid_run_leaves_a_clean_database_and_an_interrupted_run(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    Store.open(path).close()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
    )
    try:
        store = Store.open(path)
        committed, deadline = 0, time.monotonic() + 60
        while committed < 3000 and time.monotonic() < deadline:
            time.sleep(0.05)
            runs = store.list_runs()
            committed = runs[0].event_count if runs else 0
        assert committed >= 3000, child.stderr.read() if child.poll() is not None else "child too slow"
        assert store.mark_interrupted() == []  # the writer is alive: its run is left alone
        assert store.get_run(runs[0].id).status == "running"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        store.close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL

    with Store.open(path) as store:  # the next open notices the writer is gone
        run = store.list_runs()[0]
        assert run.status == "interrupted" and "ended without closing" in (run.end_reason or "")
        events = store.events(run.id)
        assert len(events) >= committed and run.event_count == len(events)
        assert [event.seq for event in events] == list(range(len(events)))
        tree = Tree.from_events(events)
        assert tree.status == "running" and len(tree) > 1
        assert Replay.load(store, run.id).tree_at(len(events)) == tree
        assert run.node_count == len(tree) - 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


# ---------------------------------------------------------------------- liveness & weights
def test_liveness_rule() -> None:
    now = datetime.now(UTC)
    fresh, stale = now - timedelta(seconds=5), now - timedelta(seconds=liveness.STALE_S + 1)
    host, pid, token = liveness.me()
    alive = lambda *args: liveness.writer_alive("db", 1, *args, now=now)  # noqa: E731
    assert not alive(host, pid, token, fresh)  # this process, but no open recorder for run 1
    liveness.register("db", 1)
    try:
        assert alive(host, pid, token, stale)
    finally:
        liveness.unregister("db", 1)
    parent = os.getppid()
    assert alive(host, parent, liveness.process_token(parent), stale)  # a live process on this host
    assert not alive(host, parent, "123", fresh)  # same pid, other start time: the pid was recycled
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    assert not alive(host, int(dead.stdout), None, fresh)
    assert alive("another-host", 1, None, fresh) and not alive("another-host", 1, None, stale)
    assert not alive("another-host", 1, None, None)


def test_weights_hash_follows_the_bytes(tmp_path: Path) -> None:
    """The one weights hash runs record (models' backends; storage keeps no second format)."""
    from models import weights_hash

    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 1000)
    (tmp_path / "config.json").write_text("{}")
    first = weights_hash(tmp_path)
    assert first and len(first) == 64
    (tmp_path / "config.json").write_text('{"changed": true}')  # not a weight file
    assert weights_hash(tmp_path) == first
    (tmp_path / "model.safetensors").write_bytes(b"\x01" * 1000)
    assert weights_hash(tmp_path) != first
    assert weights_hash(Path("Qwen/Qwen2.5-Math-PRM-7B")) is None
