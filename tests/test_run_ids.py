"""Run ids are never reused (SQLite AUTOINCREMENT via migration 0003), and replay caches follow a run's changes."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from search import run_search
from search.events import comparable
from storage import Replay, Store, migrate
from storage.db import make_engine, resolve_url
from storage.replay import run_version
from tests.engine_cases import PROBLEM, scripted_models


def _search(**config):
    return run_search(PROBLEM, task="arith", strategy="beam", models=scripted_models(), config=config or None)


def _record(store: Store, name: str, events=None) -> int:
    recorder = store.recorder(name=name)
    for event in events if events is not None else _search().events:
        recorder(event)
    recorder.close()
    return recorder.run_id


@pytest.mark.parametrize("deletions", [[3], [3, 2], [3, 2, 1], [2, 3]])
def test_deleting_the_newest_runs_never_frees_their_ids(tmp_path: Path, deletions: list[int]) -> None:
    with Store.open(tmp_path / "runs.db") as store:
        ids = [_record(store, f"run {i}") for i in range(3)]
        assert ids == [1, 2, 3]
        for run_id in deletions:
            store.delete(run_id)
        new = _record(store, "after")
        assert new == 4
        assert store.get_run(new).name == "after"
        assert comparable(store.events(new)) == comparable(_search().events)


def test_sweep_ids_are_never_reused_either(tmp_path: Path) -> None:
    with Store.open(tmp_path / "runs.db") as store:
        first = store.create_sweep("a", {})
        second = store.create_sweep("b", {})
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM sweeps WHERE id = ?", (second,))
        assert store.create_sweep("c", {}) == second + 1 > first


def test_migration_0003_keeps_an_old_database_and_stops_reusing_its_ids(tmp_path: Path) -> None:
    """A database created by the old schema (revision 0002) keeps every run, event and tag."""
    path = tmp_path / "old.db"
    result = _search(n=4, beam_width=2)
    engine = make_engine(resolve_url(path))
    migrate.upgrade(engine, "0002")
    started = result.events[0].data
    with engine.begin() as conn:
        for run_id in (1, 2, 5):
            conn.exec_driver_sql(
                "INSERT INTO runs (id, created, name, task, problem, strategy, config, seed, limits, models,"
                " status, event_count, node_count) VALUES (?, '2024-05-01 12:00:00', ?, 'arith', ?,"
                " 'beam', '{}', 0, '{}', '{}', 'finished', ?, 0)",
                (run_id, f"old {run_id}", started["problem"], len(result.events)),
            )
            rows = [(run_id, e.seq, e.t, e.kind.value, json.dumps(e.data)) for e in result.events]
            conn.exec_driver_sql("INSERT INTO events (run_id, seq, t, kind, data) VALUES (?, ?, ?, ?, ?)", rows)
        conn.exec_driver_sql("INSERT INTO run_tags (run_id, tag) VALUES (5, 'kept')")
    engine.dispose()
    with Store.open(path) as store:  # applies 0003 (rebuilds runs and sweeps with AUTOINCREMENT)
        with store.engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.head_revision() == "0003"
        assert [r.id for r in store.list_runs()] == [5, 2, 1]
        assert store.get_run(5).tags == ("kept",)
        for run_id in (1, 2, 5):
            assert comparable(store.events(run_id)) == comparable(result.events)
            assert Replay.load(store, run_id).final == result.tree
        store.delete(5)
        assert _record(store, "new") == 6
    with sqlite3.connect(path) as conn:
        assert "AUTOINCREMENT" in conn.execute("SELECT sql FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"ix_runs_created", "ix_runs_status", "ix_runs_task_strategy", "ix_runs_sweep_id"} <= indexes
    conn.close()


def test_run_version_changes_whenever_the_run_does(tmp_path: Path) -> None:
    events = _search().events
    cuts = [10, 28, len(events) - 1, len(events)]
    with Store.open(tmp_path / "runs.db") as store:
        recorder = store.recorder(name="growing")
        versions, done = [], 0
        for cut in cuts:
            for event in events[done:cut]:
                recorder(event)
            done = cut
            deadline = time.monotonic() + 20
            while store.get_run(recorder.run_id).event_count < cut and time.monotonic() < deadline:
                time.sleep(0.05)
            versions.append(run_version(store.get_run(recorder.run_id)))
        recorder.close()
        assert [v[3] for v in versions] == cuts
        assert [v[2] for v in versions] == ["running", "running", "running", "finished"]
        assert len(set(versions)) == 4
        store.delete(recorder.run_id)
        again = _record(store, "again", events)
        assert run_version(store.get_run(again)) not in versions


def test_slider_follows_a_growing_run_only_from_its_end() -> None:
    from reasoning_viz.replay_position import slider_position

    assert slider_position(None, None, 57, None) == 57  # first view: the end
    assert slider_position(None, None, 57, "12") == 12  # deep link
    assert slider_position(28, 28, 57, "28") == 57  # sat at the end of a live run: follows it
    assert slider_position(10, 28, 57, "10") == 10  # the user scrubbed back: stays
    assert slider_position(30, 57, 57, "30") == 30
    assert slider_position(40, 50, 20, None) == 20  # another, shorter run: clamped


def _wait_for(store: Store, run_id: int, count: int) -> None:
    deadline = time.monotonic() + 20
    while store.get_run(run_id).event_count < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_replay_page_follows_a_run_that_is_still_recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The field report: a run opened in Replay while recording stayed at 28 of 57 events after it finished."""
    from tests.test_app import app

    db = tmp_path / "runs.db"
    monkeypatch.setenv("THOUGHTSCOPE_DB", str(db))
    events = _search().events
    with Store.open(db) as store:
        recorder = store.recorder(name="live")
        for event in events[:28]:
            recorder(event)
        _wait_for(store, recorder.run_id, 28)
        at = app("reasoning_viz/pages/replay.py", run=str(recorder.run_id))
        assert not at.exception, at.exception
        assert at.text[0].value.startswith("[28/28]")
        for event in events[28:]:
            recorder(event)
        recorder.close()
        at.run()
        assert not at.exception, at.exception
        assert at.text[0].value.startswith(f"[{len(events)}/{len(events)}]"), at.text[0].value
        store.delete(recorder.run_id)
        other = _record(store, "another run", _search(n=4, beam_width=2).events)
    at.query_params["run"] = str(other)
    at.run()
    total = len(_search(n=4, beam_width=2).events)
    assert at.text[0].value.startswith(f"[{total}/{total}]"), at.text[0].value


def test_postgresql_never_reuses_run_ids_either() -> None:
    """PostgreSQL's SERIAL sequence already never hands an id out twice; migration 0003 keeps it so."""
    import os

    url = os.environ.get("THOUGHTSCOPE_TEST_PG_URL")
    if not url:
        pytest.skip("set THOUGHTSCOPE_TEST_PG_URL to run the storage tests on PostgreSQL")
    from tests.test_storage import _reset_postgres

    _reset_postgres(url)
    with Store.open(url) as store:
        ids = [_record(store, f"run {i}") for i in range(3)]
        store.delete(ids[-1])
        assert _record(store, "after") == ids[-1] + 1
        with store.engine.connect() as conn:
            assert migrate.current_revision(conn) == "0003"
