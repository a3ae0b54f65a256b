"""The Scaling page's logic (reasoning_viz.scaling) and its background sweep (reasoning_viz.sweep_job):
settings checks, the figure, the runs behind a point, and a sweep run by the app on scripted models
into a real SQLite database (every search recorded under the sweep; Stop keeps the finished points).
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from reasoning_viz.jobs import JobRegistry
from reasoning_viz.scaling import (
    SweepSettings,
    clicked_point,
    parse_sizes,
    parse_specs,
    point_runs,
    progress_line,
    sweep_figure,
    sweep_status,
)
from reasoning_viz.sweep_job import held_out, start_sweep, sweep_job
from search.config import ConfigError
from search.evaluate import run_sweep
from search.fakes import ScriptedPolicy, ScriptedPRM
from search.models import Models
from storage import Store

#: Point fields measured by wall clock (they differ between two runs of the same sweep).
CLOCK = ("mean_seconds",)


def point(spec: str, size: int, accuracy: float, tokens: float, run_ids=(), problems: int = 3) -> dict:
    return {"spec": spec, "size": size, "accuracy": accuracy, "mean_tokens": tokens, "problems": problems,
            "run_ids": list(run_ids)}


@pytest.mark.parametrize(("text", "sizes"), [("1,4", (1, 4)), (" 1, 4 ,16,", (1, 4, 16)), ("4,4,1", (4, 1))])
def test_sizes_parse(text: str, sizes: tuple[int, ...]) -> None:
    assert parse_sizes(text) == sizes


@pytest.mark.parametrize(("text", "message"), [
    ("", "at least one size"), (" , ", "at least one size"), ("1,two", "'two'"), ("0,4", "'0'"),
    ("1,-4", "'-4'"), ("1.5", "'1.5'"), ("99999", "'99999'"),
])
def test_bad_sizes_are_refused_with_the_bad_part_named(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_sizes(text)


def test_specs_are_the_picked_then_the_typed_ones_without_repeats() -> None:
    assert parse_specs(["greedy", "beam"], "\n beam:beam_width=2 \n\ngreedy\n") == (
        "greedy", "beam", "beam:beam_width=2")


@pytest.mark.parametrize(("settings", "message"), [
    (SweepSettings(task="chess"), "Task must be one of"),
    (SweepSettings(specs=()), "at least one strategy"),
    (SweepSettings(specs=("greedy", "nonsense")), "nonsense"),
    (SweepSettings(specs=("beam:beam_width=8",), sizes=(4,)), "cannot be larger than n"),
    (SweepSettings(specs=("best_of_n:self_evaluate=maybe",)), "not a valid bool"),
    (SweepSettings(problems=0), "Problems must be"),
    (SweepSettings(specs=("best_of_n",), sizes=tuple(range(1, 101)), problems=100), "at most"),
])
def test_impossible_settings_are_refused_before_anything_runs(settings: SweepSettings, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings.plan()


def test_the_default_plan_is_small() -> None:
    plan = SweepSettings().plan()
    assert [(p.spec, p.size) for p in plan] == [
        ("greedy", 1), ("self_consistency", 1), ("self_consistency", 4), ("best_of_n", 1), ("best_of_n", 4)]
    assert SweepSettings().problems * len(plan) <= 15


def test_figure_draws_one_line_per_strategy_whose_markers_name_their_points() -> None:
    points = [point("greedy", 1, 1 / 3, 0.0), point("best_of_n", 1, 0.0, 50.0), point("best_of_n", 4, 2 / 3, 200.0),
              point("<b>x</b>", 1, 1.0, 10.0)]
    fig = sweep_figure(points, selected=2)
    lines = [t for t in fig.data if t.name != "selected"]
    assert [t.name for t in lines] == ["greedy", "best_of_n", "&lt;b&gt;x&lt;/b&gt;"]
    assert list(lines[0].x) == [1.0]  # floored at 1 on the log axis, as the CLI's figure
    assert list(lines[1].x) == [50.0, 200.0] and list(lines[1].y) == [0.0, 2 / 3]
    assert [list(t.customdata) for t in lines] == [[0], [1, 2], [3]]
    assert "<b>" not in "".join(text for t in lines for text in t.text)
    ring = [t for t in fig.data if t.name == "selected"]
    assert len(ring) == 1 and (list(ring[0].x), list(ring[0].y)) == ([200.0], [2 / 3])
    assert fig.layout.xaxis.type == "log"
    assert not [t for t in sweep_figure(points).data if t.name == "selected"]


def test_a_line_that_ties_another_is_moved_right_so_it_stays_visible_and_clickable() -> None:
    points = [point("best_of_n", 1, 0.0, 52.0), point("best_of_n", 4, 1 / 3, 205.0),
              point("self_consistency", 1, 0.0, 52.0), point("self_consistency", 4, 1 / 3, 205.0)]
    fig = sweep_figure(points, selected=3)
    bon, sc = (t for t in fig.data if t.name != "selected")
    assert list(bon.x) == [52.0, 205.0]
    assert all(b < s_ < b * 1.2 for b, s_ in zip(bon.x, sc.x, strict=True)), (bon.x, sc.x)
    assert bon.marker.symbol != sc.marker.symbol
    ring = next(t for t in fig.data if t.name == "selected")
    assert list(ring.x) == [sc.x[1]], "the ring sits on the point as drawn"
    assert "205" in sc.text[1]  # the hover keeps the true tokens


@pytest.mark.parametrize(("event", "index"), [
    ({"selection": {"points": [{"customdata": 2}]}}, 2),
    ({"selection": {"points": [{"customdata": [1]}]}}, 1),
    ({"selection": {"points": [{"customdata": 9}]}}, None),
    ({"selection": {"points": []}}, None),
    (None, None),
])
def test_a_click_names_its_point(event, index) -> None:
    assert clicked_point(event, 3) == index


def run(run_id: int, correct, answer="7", status="finished"):
    return SimpleNamespace(id=run_id, correct=correct, answer=answer, reference="9", problem=f"p{run_id}",
                           status=status)


def test_the_runs_behind_a_point_list_wrong_ones_first() -> None:
    runs = {10: run(10, True), 11: run(11, False), 12: run(12, None, answer=None), 14: run(14, True)}
    rows = point_runs(point("beam", 4, 0.4, 9, run_ids=[10, 11, 12, 13, 14, None]), runs)
    assert [(r["run"], r["problem"], r["verdict"]) for r in rows] == [
        (11, 2, "✗"), (12, 3, "no answer"), (None, 4, "deleted"), (None, 6, "not saved"), (10, 1, "✓"), (14, 5, "✓")]
    assert [r["wrong"] for r in rows] == [True, True, True, True, False, False]


def test_status_says_when_a_sweep_was_interrupted_or_stopped() -> None:
    meta = {"status": "running", "planned_points": 5, "points": [{}, {}]}
    assert sweep_status(meta, job_running=True)[0] == "running"
    status, sentence = sweep_status(meta, job_running=False)
    assert status == "interrupted" and "2 of 5 points" in sentence
    assert sweep_status({**meta, "status": "stopped"}, False)[0] == "stopped"
    assert "boom" in sweep_status({**meta, "status": "failed", "error": "boom"}, False)[1]
    assert progress_line(3, 12, "beam @ 4") == (0.25, "3 of 12 searches · now beam @ 4")


class SlowPolicy(ScriptedPolicy):
    def propose(self, *args, **kwargs):
        time.sleep(0.01)
        return super().propose(*args, **kwargs)


def scripted() -> Models:
    return Models(ScriptedPolicy(), ScriptedPRM())


def wait(job, timeout: float = 60) -> None:
    job.thread.join(timeout=timeout)
    assert not job.running and job.error is None, job.error


def test_an_app_sweep_records_every_search_and_plots_what_the_cli_engine_measures(tmp_path: Path) -> None:
    settings = SweepSettings(specs=("greedy", "best_of_n", "beam"), sizes=(1, 4), problems=3)
    with Store.open(tmp_path / "runs.db") as store:
        registry = JobRegistry()
        job = start_sweep(registry, store, settings, lambda: (scripted(), {"policy": {"name": "scripted"}}))
        assert sweep_job(registry, store.key, job.progress.sweep_id) is job
        wait(job)
        sweep = store.get_sweep(job.progress.sweep_id)
        meta = sweep["meta"]
        assert meta["status"] == "finished" and job.progress.done_runs == job.progress.total_runs == 15
        runs = {r.id: r for r in store.list_runs(sweep_id=sweep["id"], limit=None)}
        assert sweep["runs"] == len(runs) == 15
        # the CLI's engine, unsaved, on the same problems measures the same points
        cli = run_sweep(held_out(settings), settings.specs, settings.sizes, scripted(), settings.seed)
        strip = lambda p: {k: v for k, v in p.items() if k not in (*CLOCK, "run_ids")}  # noqa: E731
        assert [strip(p) for p in meta["points"]] == [strip(p) for p in cli]
        assert all("run_ids" not in p for p in cli)
        for saved in meta["points"]:  # each point's runs are its problems' searches, in order
            behind = [runs[i] for i in saved["run_ids"]]
            assert [r.problem for r in behind] == [p["problem"] for p in meta["problems"]]
            assert {r.strategy for r in behind} == {saved["spec"]}
            assert sum(bool(r.correct) for r in behind) / 3 == saved["accuracy"]
            assert sum(r.spend["tokens_generated"] for r in behind) / 3 == saved["mean_tokens"]
            assert all(r.name.startswith(f"sweep {sweep['id']} · {saved['spec']} @ {saved['size']}") for r in behind)
            assert all(r.models["policy"]["name"] == "scripted" for r in behind)
        assert store.tree(behind[0].id).meta["problem"] == behind[0].problem  # it opens in Replay


def test_stop_keeps_the_finished_points_and_drops_the_one_in_flight(tmp_path: Path) -> None:
    settings = SweepSettings(specs=("best_of_n",), sizes=(1, 2, 4, 8, 16), problems=3)
    with Store.open(tmp_path / "runs.db") as store:
        job = start_sweep(JobRegistry(), store, settings, lambda: (Models(SlowPolicy(), ScriptedPRM()), {}))
        sweep_id = job.progress.sweep_id
        deadline = time.monotonic() + 60
        while not store.get_sweep(sweep_id)["meta"]["points"] and time.monotonic() < deadline:
            time.sleep(0.02)
        asked = time.monotonic()
        job.cancel()
        wait(job, timeout=10)
        assert time.monotonic() - asked < 5
        meta = store.get_sweep(sweep_id)["meta"]
        assert meta["status"] == "stopped"
        assert 1 <= len(meta["points"]) < 5
        assert all(len(p["run_ids"]) == 3 for p in meta["points"])
        runs = store.list_runs(sweep_id=sweep_id, limit=None)
        assert "cancelled" in {r.status for r in runs}  # the search in flight, saved but not plotted
        assert sweep_status(meta, job_running=False)[0] == "stopped"


def test_a_sweep_whose_models_fail_to_load_says_so(tmp_path: Path) -> None:
    def broken():
        raise OSError("no weights at /nowhere")

    with Store.open(tmp_path / "runs.db") as store:
        job = start_sweep(JobRegistry(), store, SweepSettings(specs=("greedy",), problems=1), broken)
        job.thread.join(timeout=10)
        meta = store.get_sweep(job.progress.sweep_id)["meta"]
        assert meta["status"] == "failed" and "no weights at /nowhere" in meta["error"]
        assert "no weights" in sweep_status(meta, job_running=False)[1]


def test_bad_settings_save_no_sweep(tmp_path: Path) -> None:
    with Store.open(tmp_path / "runs.db") as store:
        with pytest.raises(ConfigError):
            start_sweep(JobRegistry(), store, SweepSettings(specs=("nonsense",)), lambda: (scripted(), {}))
        assert store.list_sweeps() == []
