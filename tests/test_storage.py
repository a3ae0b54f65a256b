"""Storage API on real databases: recording, replay, runs, export/import, graphs, CLI.

Every test runs on a SQLite file in tmp_path, and again on PostgreSQL when
``THOUGHTSCOPE_TEST_PG_URL`` points at a server (its tables are dropped before each test).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from sqlalchemy import create_engine, func, select, text
from typer.testing import CliRunner

from cli.runs import runs_app
from search import Budget, Models, all_strategies, run_search
from search.events import Event, EventKind, comparable
from search.fakes import ScriptedPolicy, ScriptedPRM
from search.runner import SearchResult
from search.tree import Tree
from storage import Replay, StorageError, Store
from storage.schema import EventRow, NodeRow, Run, RunTag, Sweep
from tests.engine_cases import CASES, PROBLEM, scripted_models

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("THOUGHTSCOPE_TEST_PG_URL")
ANSWER = "112"
TABLES = (Run, EventRow, NodeRow, RunTag, Sweep)


def _reset_postgres(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(
            text("DROP TABLE IF EXISTS run_tags, nodes, events, runs, sweeps, alembic_version CASCADE")
        )
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    if not PG_URL:
        pytest.skip("set THOUGHTSCOPE_TEST_PG_URL to run the storage tests on PostgreSQL")
    _reset_postgres(PG_URL)
    return PG_URL


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as opened:
        yield opened


def record(store: Store, strategy: str = "mcts", config: dict | None = None, seed: int = 7, **kwargs: Any):
    """Run a scripted search into the store; returns (result, run_id)."""
    budget = kwargs.pop("budget", None)
    with store.recorder(**kwargs) as recorder:
        result = run_search(
            PROBLEM,
            task="arith",
            strategy=strategy,
            models=scripted_models(),
            config=config if config is not None else {"simulations": 6},
            seed=seed,
            reference=ANSWER,
            budget=budget,
            sinks=[recorder],
        )
    assert recorder.run_id is not None
    return result, recorder.run_id


def row_counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            table.__tablename__: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in TABLES
        }


# ---------------------------------------------------------------------- recording & replay
def test_cases_cover_every_registered_strategy() -> None:
    assert set(all_strategies()) <= {strategy for strategy, _ in CASES.values()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_replay_equals_the_live_search_for_every_strategy(store: Store, case: str) -> None:
    strategy, config = CASES[case]
    result, run_id = record(store, strategy, config, name=case)
    replay = Replay.load(store, run_id)
    assert len(replay) == len(result.events)
    assert comparable(replay.events) == comparable(result.events)
    assert replay.tree_at(len(replay)) == result.tree
    run = store.get_run(run_id)
    assert (run.status, run.answer, run.correct) == ("finished", result.answer, result.correct)
    assert run.spend == result.tree.spend and run.event_count == len(result.events)
    assert run.node_count == len(result.tree) - 1 and run.strategy == strategy and run.name == case
    with store.engine.connect() as conn:
        nodes = conn.execute(select(NodeRow).where(NodeRow.run_id == run_id)).all()
    assert len(nodes) == len(result.tree)
    dense = Replay(replay.events, every=5)  # many snapshot boundaries, every prefix checked
    tree = Tree()
    for k, event in enumerate([None, *replay.events]):
        if event is not None:
            tree.apply(event)
        assert dense.tree_at(k) == tree, (case, k)


def test_replay_seek_matches_a_fold_of_the_prefix(store: Store) -> None:
    result, run_id = record(store, config={"simulations": 120, "distinct": False})  # copies: a long log
    events = result.events
    assert len(events) > 900
    for every in (1, 7, 500):
        replay = Replay.load(store, run_id, every=every)
        for k in sorted({0, 1, 2, 6, 7, 8, 499, 500, 501, len(events) // 2, len(events) - 1, len(events)}):
            assert replay.tree_at(k) == Tree.from_events(events[:k]), (every, k)
    with pytest.raises(IndexError):
        replay.tree_at(len(events) + 1)


def test_seek_returns_independent_trees(store: Store) -> None:
    result, run_id = record(store, config={"simulations": 40})
    replay = Replay.load(store, run_id, every=10)
    k = 95
    tree = replay.tree_at(k)
    for event in result.events[k:]:
        tree.apply(event)  # the live UI keeps folding onto a replayed tree
    assert tree == result.tree
    assert replay.tree_at(k) == Tree.from_events(result.events[:k])


def test_events_are_committed_while_the_search_runs(store: Store) -> None:
    seen: dict[str, Any] = {}
    recorder = store.recorder(name="live")

    def probe(event: Event) -> None:
        if event.seq == 150:
            time.sleep(0.8)  # more than the 0.25 s flush interval
            seen["run"] = store.get_run(recorder.run_id)

    run_search(
        PROBLEM,
        task="arith",
        strategy="mcts",
        models=scripted_models(),
        config={"simulations": 60},
        sinks=[recorder, probe],
    )
    recorder.close()
    assert seen["run"].status == "running"
    assert seen["run"].event_count >= 150
    assert store.get_run(recorder.run_id).status == "finished"


def test_cancelled_failed_and_unfinished_runs(store: Store) -> None:
    stop = threading.Event()
    stop.set()
    with store.recorder() as recorder:
        run_search(
            PROBLEM, task="arith", strategy="beam", models=scripted_models(), sinks=[recorder], stop=stop
        )
    cancelled = store.get_run(recorder.run_id)
    assert (cancelled.status, cancelled.end_reason) == ("cancelled", "stop requested")

    class Broken(ScriptedPolicy):
        def propose(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("GPU on fire")

    with store.recorder() as recorder:
        run_search(
            PROBLEM, task="arith", strategy="beam", models=Models(Broken(), ScriptedPRM()), sinks=[recorder]
        )
    failed = store.get_run(recorder.run_id)
    assert failed.status == "failed" and "GPU on fire" in (failed.error or "")

    full = run_search(
        PROBLEM, task="arith", strategy="beam", models=scripted_models(), config={"n": 4, "beam_width": 2}
    )
    recorder = store.recorder()
    for event in full.events[:20]:
        recorder(event)
    recorder.close()
    partial = store.get_run(recorder.run_id)
    assert partial.status == "interrupted" and partial.event_count == 20
    assert Replay.load(store, recorder.run_id).tree_at(20) == Tree.from_events(full.events[:20])


def test_models_info_is_merged_with_the_event_names(store: Store) -> None:
    info = {
        "policy": {"path": "models/nano/policy", "weights_hash": "sha256:abc"},
        "prm": {"path": "org/prm-7b"},
    }
    _, run_id = record(store, models_info=info)
    models = store.get_run(run_id).models
    assert models["policy"] == {
        "name": "scripted-policy",
        "path": "models/nano/policy",
        "weights_hash": "sha256:abc",
    }
    assert models["prm"] == {"name": "scripted-prm", "path": "org/prm-7b", "weights_hash": None}
    assert "orm" not in models


# ---------------------------------------------------------------------- runs: list, edit, delete
def test_list_filters_rename_tag_and_delete(store: Store) -> None:
    _, beam = record(store, "beam", {"n": 4, "beam_width": 2}, name="Beam 100% run", tags=["workshop"])
    _, greedy = record(store, "greedy", {}, name="greedy one")
    _, mcts = record(store, tags=["mcts", "workshop"])
    ids = lambda runs: sorted(run.id for run in runs)  # noqa: E731
    assert ids(store.list_runs()) == sorted([beam, greedy, mcts])
    assert [run.id for run in store.list_runs()] == [mcts, greedy, beam]  # newest first
    assert ids(store.list_runs(strategy="beam")) == [beam]
    assert ids(store.list_runs(task="countdown")) == []
    assert ids(store.list_runs(status="finished")) == ids(store.list_runs())
    verdicts = {run.id: run.correct for run in store.list_runs()}
    assert ids(store.list_runs(correct=True)) == sorted(i for i, ok in verdicts.items() if ok is True)
    assert ids(store.list_runs(correct=False)) == sorted(i for i, ok in verdicts.items() if ok is False)
    assert ids(store.list_runs(text="BEAM 100%")) == [beam]
    assert ids(store.list_runs(text="100_")) == []  # LIKE wildcards are literal
    assert ids(store.list_runs(text="workshop")) == [beam, mcts]
    assert ids(store.list_runs(tag="mcts")) == [mcts]
    assert ids(store.list_runs(since="2000-01-01", until="2999-12-31")) == sorted([beam, greedy, mcts])
    assert store.list_runs(until="2000-01-01") == []
    assert len(store.list_runs(limit=2)) == 2
    with pytest.raises(StorageError, match="status must be one of"):
        store.list_runs(status="done")
    with pytest.raises(StorageError, match="ISO date"):
        store.list_runs(since="last tuesday")

    store.rename(greedy, "  renamed  ")
    assert store.get_run(greedy).name == "renamed"
    assert store.tag(greedy, add=["b", "a", "a"]) == ("a", "b")
    assert store.tag(greedy, add=["c"], remove=["a"]) == ("b", "c")

    before = row_counts(store)
    events = len(store.events(beam))
    store.delete(beam)
    after = row_counts(store)
    assert before["runs"] - after["runs"] == 1 and before["events"] - after["events"] == events
    assert before["run_tags"] - after["run_tags"] == 1
    for action in (lambda: store.get_run(beam), lambda: store.events(beam), lambda: store.delete(beam)):
        with pytest.raises(StorageError, match=f"no run {beam}"):
            action()


def test_sweeps_group_their_runs(store: Store) -> None:
    sweep = store.create_sweep("beam widths", {"widths": [2, 4]})
    _, first = record(store, "beam", {"n": 4, "beam_width": 2}, sweep_id=sweep)
    _, second = record(store, "beam", {"n": 4, "beam_width": 4}, sweep_id=sweep)
    record(store)
    assert sorted(run.id for run in store.list_runs(sweep_id=sweep)) == [first, second]
    listed = store.list_sweeps()
    assert [(s["id"], s["name"], s["meta"], s["runs"]) for s in listed] == [
        (sweep, "beam widths", {"widths": [2, 4]}, 2)
    ]


# ---------------------------------------------------------------------- concurrency
WRITER = """
import sys, threading
from search import run_search
from tests.engine_cases import PROBLEM, scripted_models
from storage import Store

store = Store.open(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()

def one(seed):
    with store.recorder(name=f"proc{sys.argv[2]}-{seed}") as rec:
        run_search(PROBLEM, task="arith", strategy="mcts", models=scripted_models(),
                   config={"simulations": 250}, seed=seed, sinks=[rec])

threads = [threading.Thread(target=one, args=(int(s),)) for s in sys.argv[3:]]
for t in threads: t.start()
for t in threads: t.join()
store.close()
print("done", flush=True)
"""


def _expected(seed: int) -> SearchResult:
    return run_search(
        PROBLEM,
        task="arith",
        strategy="mcts",
        models=scripted_models(),
        config={"simulations": 250},
        seed=seed,
    )


@pytest.mark.slow
def test_threads_and_processes_write_one_database_at_once(db_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    plan = {0: [100, 101], 1: [102, 103], 2: [104, 105]}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, db_url, str(proc), *map(str, seeds)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for proc, seeds in plan.items()
    ]
    try:
        for child in children:  # each child opened (and maybe created and migrated) the same database
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
        store = Store.open(db_url)
        errors: list[BaseException] = []

        def local(seed: int) -> None:
            try:
                with store.recorder(name=f"thread-{seed}") as recorder:
                    run_search(
                        PROBLEM,
                        task="arith",
                        strategy="mcts",
                        models=scripted_models(),
                        config={"simulations": 250},
                        seed=seed,
                        sinks=[recorder],
                    )
            except BaseException as exc:  # noqa: BLE001 - reported to the caller
                errors.append(exc)

        threads = [threading.Thread(target=local, args=(seed,)) for seed in (200, 201, 202, 203)]
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0 and "done" in out, err
            assert "locked" not in err
        assert errors == []
        runs = {run.name: run for run in store.list_runs(limit=None)}
        names = {f"proc{p}-{s}": s for p, seeds in plan.items() for s in seeds} | {
            f"thread-{s}": s for s in (200, 201, 202, 203)
        }
        assert set(runs) == set(names)
        total = 0
        for name, seed in names.items():
            expected = _expected(seed)
            run = runs[name]
            assert run.status == "finished" and run.event_count == len(expected.events)
            assert comparable(store.events(run.id)) == comparable(expected.events)
            total += len(expected.events)
        assert row_counts(store)["events"] == total
        store.close()
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


# ---------------------------------------------------------------------- export / import
def test_export_import_round_trip(store: Store, tmp_path: Path) -> None:
    result, run_id = record(store, "mcts", CASES["mcts_uct_rollout"][1], name="round trip", tags=["x", "y"])
    exported = store.export_json(run_id)
    assert (exported["format"], exported["version"]) == ("thoughtscope-run", 1)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(exported))
    for source in (path, str(path), json.loads(path.read_text())):
        new_id = store.import_json(source)
        assert new_id != run_id
        events = store.events(new_id)
        assert comparable(events) == comparable(result.events)
        assert [e.t for e in events] == [e.t for e in result.events]
        assert Tree.from_events(events) == result.tree
        again = store.export_json(new_id)
        assert again["events"] == exported["events"]
        keep = lambda run: {k: v for k, v in run.items() if k not in ("id", "created", "finished_at")}  # noqa: E731
        assert keep(again["run"]) == keep(exported["run"])
        assert store.get_run(new_id).created == store.get_run(run_id).created


def test_import_of_an_interrupted_run_keeps_its_partial_tree(store: Store) -> None:
    full = run_search(
        PROBLEM, task="arith", strategy="dvts", models=scripted_models(), config={"n": 8, "beam_width": 2}
    )
    recorder = store.recorder()
    for event in full.events[:30]:
        recorder(event)
    recorder.close()
    new_id = store.import_json(store.export_json(recorder.run_id))
    assert store.get_run(new_id).status == "interrupted"
    assert Replay.load(store, new_id).tree_at(30) == Tree.from_events(full.events[:30])


def _broken_exports(good: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """Each malformed document (or raw file text) and a fragment of the error it must give."""
    text_good = json.dumps(good)

    def edited(path: str, value: Any) -> dict[str, Any]:
        doc = json.loads(text_good)
        target = doc
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        last = keys[-1]
        if value is KeyError:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value
        return doc

    events = good["events"]
    swapped = json.loads(text_good)
    swapped["events"][3], swapped["events"][4] = swapped["events"][4], swapped["events"][3]
    no_end = json.loads(text_good)
    no_end["events"] = no_end["events"][:-1]
    orphan = json.loads(text_good)
    added = next(i for i, e in enumerate(events) if e["kind"] == "node_added")
    orphan["events"][added]["data"]["parent"] = 999
    return {
        "malformed": ("{not json", "not valid JSON"),
        "truncated file": (text_good[: len(text_good) // 2], "truncated"),
        "empty file": ("", "not valid JSON"),
        "foreign object": ({"nodes": [], "links": []}, "not a ThoughtScope run export"),
        "foreign list": ([1, 2, 3], "not a ThoughtScope run export"),
        "newer version": (edited("version", 2), "newer ThoughtScope"),
        "missing field": (edited("run.task", KeyError), "run.task"),
        "bad type": (edited("run.seed", "seven"), "run.seed"),
        "broken seq": (swapped, "sequence broken"),
        "unknown kind": (edited("events.2.kind", "teleported"), "invalid events"),
        "missing payload key": (edited("events.1.data.text", KeyError), "missing ['text']"),
        "no events": (edited("events", []), "events"),
        "truncated log": (no_end, "truncated"),
        "does not fold": (orphan, "do not rebuild a tree"),
        "edited metadata": (edited("run.problem", "Start with 1. What is the result?"), "disagrees"),
    }


def test_bad_imports_raise_and_write_nothing(store: Store, tmp_path: Path) -> None:
    _, run_id = record(store, "beam", {"n": 4, "beam_width": 2})
    good = store.export_json(run_id)
    before = row_counts(store)
    for label, (document, message) in _broken_exports(good).items():
        path = tmp_path / f"{label.replace(' ', '_')}.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        with pytest.raises(StorageError, match=re.escape(message)):
            store.import_json(path)
        if not isinstance(document, str):
            with pytest.raises(StorageError, match=re.escape(message)):
                store.import_json(document)
        assert row_counts(store) == before, label
    with pytest.raises(StorageError, match="cannot read"):
        store.import_json(tmp_path / "missing.json")


def test_graph_exports(store: Store) -> None:
    result, run_id = record(store, "mcts", CASES["mcts_mix_max_selfeval"][1])
    graph = nx.parse_graphml(store.export_graph(run_id, "graphml"), node_type=int)
    assert graph.number_of_nodes() == len(result.tree) and graph.number_of_edges() == len(result.tree) - 1
    node = result.tree.nodes[1]
    attrs = graph.nodes[1]
    assert (
        attrs["text"] == node.text
        and attrs["visits"] == node.visits
        and attrs["score_prm"] == node.scores["prm"]
    )
    assert all(
        isinstance(v, bool | int | float | str) for _, data in graph.nodes(data=True) for v in data.values()
    )
    linked = json.loads(store.export_graph(run_id, "node-link"))
    assert len(linked["nodes"]) == len(result.tree) and len(linked["edges"]) == len(result.tree) - 1
    assert linked["graph"]["strategy"] == "mcts"
    with pytest.raises(StorageError, match="graph format"):
        store.export_graph(run_id, "dot")


# ---------------------------------------------------------------------- CLI
def test_runs_cli(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Any:  # noqa: A002
        return runner.invoke(runs_app, [*args, "--db", db_url], input=input)

    with Store.open(db_url) as store:
        result, run_id = record(store, "beam", {"n": 4, "beam_width": 2}, name="cli run")
    listed = invoke("list")
    assert listed.exit_code == 0 and "cli run" in listed.output and "arith/beam" in listed.output
    assert json.loads(invoke("list", "--json").output)[0]["id"] == run_id
    verdict = "--correct" if result.correct else "--wrong"
    assert invoke("list", verdict).output.count("cli run") == 1
    assert "no runs match" in invoke("list", "--strategy", "mcts").output
    shown = invoke("show", str(run_id))
    assert shown.exit_code == 0 and "strategy beam" in shown.output and "#1 prm" in shown.output
    assert any(line.startswith("    #") for line in shown.output.splitlines())  # indented by depth
    assert "★" in shown.output
    assert invoke("rename", str(run_id), "renamed").exit_code == 0
    assert "a, b" in invoke("tag", str(run_id), "--add", "a", "--add", "b").output
    assert "tags: b" in invoke("tag", str(run_id), "--remove", "a").output
    out = tmp_path / "export.json"
    exported = invoke("export", str(run_id), "--out", str(out))
    assert exported.exit_code == 0 and json.loads(out.read_text())["run"]["name"] == "renamed"
    assert "<graphml" in invoke("export", str(run_id), "--format", "graphml").output
    assert '"edges"' in invoke("export", str(run_id), "-f", "node-link").output
    imported = invoke("import", str(out))
    assert imported.exit_code == 0 and "as run" in imported.output
    refused = invoke("delete", str(run_id), input="n\n")
    assert refused.exit_code == 1
    assert invoke("delete", str(run_id), "--yes").exit_code == 0
    for args in (
        ("show", str(run_id)),
        ("export", str(run_id), "--format", "svg"),
        ("list", "--status", "done"),
    ):
        failed = invoke(*args)
        assert failed.exit_code == 1 and "error:" in failed.output and "Traceback" not in failed.output
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    failed = invoke("import", str(bad))
    assert failed.exit_code == 1 and "not valid JSON" in failed.output


def test_cli_reports_a_bad_database_without_a_traceback(tmp_path: Path) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello\n" * 100)
    for db in (str(text_file), str(tmp_path), str(tmp_path / "missing" / "x.db")):
        result = CliRunner().invoke(runs_app, ["list", "--db", db])
        assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_budget_limited_runs_record_their_reason(store: Store) -> None:
    _, run_id = record(store, config={"simulations": 500}, budget=Budget(max_nodes=10))
    run = store.get_run(run_id)
    assert run.status == "finished" and "max_nodes" in (run.end_reason or "")
    assert run.limits["max_nodes"] == 10 and run.spend["nodes"] <= 10
    assert [e.kind for e in store.events(run_id)][-1] is EventKind.FINISHED


def test_an_export_written_before_the_spend_rename_imports(store: Store) -> None:
    """Exports from before the rename: run block `budget`, events of kind `budget`."""
    result, run_id = record(store, "beam", CASES["beam"][1])
    old = json.loads(json.dumps(store.export_json(run_id)).replace('"kind": "spend"', '"kind": "budget"'))
    old["run"]["budget"] = old["run"].pop("spend")
    new_id = store.import_json(old)
    assert store.get_run(new_id).spend == result.spend
    assert comparable(store.events(new_id)) == comparable(result.events)
