"""Runs management in the app: the run list's columns, rename, tag, delete (confirmed), export and links.

The pure parts (reasoning_viz.runs_table) are tested directly; the Runs page under AppTest on a
real SQLite file with runs recorded from the scripted models.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import networkx as nx
import pytest

from reasoning_viz.runs_table import (
    base_url,
    delete_refusal,
    export_files,
    parse_tags,
    run_label,
    run_link,
    run_rows,
    tag_changes,
    verdict,
)
from search import Models
from search.events import comparable
from search.fakes import ScriptedPolicy, ScriptedPRM
from storage import Store
from tests.test_app import app, record

RUNS_PAGE = "reasoning_viz/pages/runs.py"


def _summary(db: Path, run_id: int):
    with Store.open(db) as store:
        return store.get_run(run_id)


@pytest.fixture
def two_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A database with a right and a wrong run (the same problem, two strategies)."""
    db = tmp_path / "runs.db"
    monkeypatch.setenv("THOUGHTSCOPE_DB", str(db))
    record(db, Models(ScriptedPolicy(), ScriptedPRM()), strategy="beam")
    record(db, Models(ScriptedPolicy(), ScriptedPRM()), strategy="greedy")
    with Store.open(db) as store:
        store.rename(2, "second <b>run</b>")
    return db


# -- pure functions ---------------------------------------------------------------------------------


def test_rows_show_date_problem_strategy_and_verdict(two_runs: Path) -> None:
    run = _summary(two_runs, 1)
    wrong = replace(run, correct=False, tags=("b", "a"))
    unchecked = replace(run, correct=None, problem="x " * 100)
    running = replace(run, correct=None, status="running")
    rows = run_rows([run, wrong, unchecked, running])
    assert set(rows[0]) >= {"run", "date (UTC)", "problem", "strategy", "status", "answer", "result", "tags", "name"}
    assert list(rows[0])[:4] == ["run", "result", "status", "strategy"], "visible without scrolling at 1280 px"
    assert rows[0]["date (UTC)"] == run.created.strftime("%Y-%m-%d %H:%M") and rows[0]["strategy"] == "beam"
    assert [r["result"] for r in rows] == [verdict(run.correct), "✗ wrong", "— not checked", "… running"]
    assert rows[1]["tags"] == "b, a"
    assert len(rows[2]["problem"]) == 70 and rows[2]["problem"].endswith("…") and "\n" not in rows[2]["problem"]
    assert verdict(True) == "✓ correct"


def test_a_run_a_budget_stopped_says_so_in_the_list_and_its_label(two_runs: Path) -> None:
    run = replace(_summary(two_runs, 1), end_reason="budget max_nodes=1000 reached")
    assert run_rows([run])[0]["status"] == "stopped · node budget"
    assert "stopped · node budget" in run_label(run)
    done = replace(run, end_reason="completed")
    assert run_rows([done])[0]["status"] == "finished" and "stopped" not in run_label(done)


@pytest.mark.parametrize(
    ("have", "text", "add", "remove"),
    [
        ((), "a, b ,, a", ["a", "b"], []),
        (("a", "b"), "b, c", ["c"], ["a"]),
        (("a",), "   ", [], ["a"]),
        (("x y",), "x y, z", ["z"], []),
    ],
)
def test_typed_tags_become_additions_and_removals(have, text, add, remove) -> None:
    assert tag_changes(have, text) == (add, remove)
    assert parse_tags(text) == [t for t in dict.fromkeys(s.strip() for s in text.split(",")) if t]


def test_links_open_the_run_or_one_moment_of_its_replay() -> None:
    base = base_url("http://127.0.0.1:8501/replay?run=3&event=4")
    assert base == "http://127.0.0.1:8501"
    assert run_link(base, 3) == "http://127.0.0.1:8501/?run=3"
    assert run_link(base, 3, event=17) == "http://127.0.0.1:8501/replay?run=3&event=17"
    assert base_url(None) == "" and base_url("not a url") == ""
    assert run_link("", 5, event=0) == "/replay?run=5&event=0"


def test_exports_are_an_importable_json_and_a_graphml_of_the_tree(two_runs: Path) -> None:
    with Store.open(two_runs) as store:
        document, graph = export_files(store, 1)
        assert document.name == "thoughtscope-run-1.json" and graph.name.endswith(".graphml")
        copy = store.import_json(json.loads(document.data))
        assert comparable(store.events(copy)) == comparable(store.events(1))
        tree = store.tree(1)
    ET.fromstring(graph.data)  # well-formed XML
    loaded = nx.read_graphml(__import__("io").BytesIO(graph.data))
    assert loaded.number_of_nodes() == len(tree)
    # #17: the export counts events from 0 and the app from 1; the JSON button says how they map
    seqs = [event["seq"] for event in json.loads(document.data)["events"]]
    assert seqs[0] == 0 and "seq` n − 1" in document.help and "from 1" in document.help


def test_a_running_run_may_not_be_deleted(two_runs: Path) -> None:
    run = _summary(two_runs, 1)
    assert delete_refusal(run, []) is None
    assert "still running" in delete_refusal(run, [1])
    assert "still running" in delete_refusal(replace(run, status="running"), [])


# -- the page ---------------------------------------------------------------------------------------


def test_runs_page_lists_every_run_with_its_columns(two_runs: Path) -> None:
    at = app(RUNS_PAGE)
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["run"]) == [2, 1]
    assert {"date (UTC)", "problem", "strategy", "result"} <= set(table.columns)
    assert list(table["strategy"]) == ["greedy", "beam"]
    assert table["name"][0] == "second <b>run</b>"  # shown as text in the grid, never as HTML
    assert any("/?run=2" in code.value for code in at.code)


def test_rename_and_tag_from_the_page(two_runs: Path) -> None:
    at = app(RUNS_PAGE, run="1")
    name = next(t for t in at.text_input if t.label == "Name")
    name.set_value("workshop demo")
    at = next(b for b in at.button if b.label == "Rename").click().run()
    assert not at.exception, at.exception
    assert _summary(two_runs, 1).name == "workshop demo"
    tags = next(t for t in at.text_input if t.label.startswith("Tags"))
    tags.set_value("class 3, prm-caught-slip")
    at = next(b for b in at.button if b.label == "Save tags").click().run()
    assert _summary(two_runs, 1).tags == ("class 3", "prm-caught-slip")
    tags = next(t for t in at.text_input if t.label.startswith("Tags"))
    tags.set_value("class 3")
    at = next(b for b in at.button if b.label == "Save tags").click().run()
    assert _summary(two_runs, 1).tags == ("class 3",)
    assert _summary(two_runs, 2).tags == () and _summary(two_runs, 2).name == "second <b>run</b>"


def test_delete_asks_first_and_cancel_keeps_the_run(two_runs: Path) -> None:
    at = app(RUNS_PAGE, run="1")
    at = next(b for b in at.button if "Delete" in b.label).click().run()
    assert _summary(two_runs, 1).id == 1, "one click must not delete"
    assert any("cannot be undone" in w.value for w in at.warning)
    at = next(b for b in at.button if b.label == "Cancel").click().run()
    assert _summary(two_runs, 1).id == 1
    at = next(b for b in at.button if "Delete" in b.label).click().run()
    at = next(b for b in at.button if b.label == "Yes, delete it").click().run()
    assert not at.exception, at.exception
    with Store.open(two_runs) as store:
        assert [r.id for r in store.list_runs()] == [2]
    assert list(at.dataframe[0].value["run"]) == [2]


def test_replay_page_offers_a_link_to_the_moment_shown(two_runs: Path) -> None:
    at = app("reasoning_viz/pages/replay.py", run="1", event="5")
    assert not at.exception, at.exception
    assert any(code.value.endswith("/replay?run=1&event=5") for code in at.code), [c.value for c in at.code]


def test_created_times_are_utc_in_the_list(two_runs: Path) -> None:
    run = replace(_summary(two_runs, 1), created=datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    assert run_rows([run])[0]["date (UTC)"] == "2026-01-02 03:04"
