"""Issue 17's analysis panels under AppTest (fast, scripted models): colour by, the exact checker
beside the PRM, re-deciding a finished run, and the in-app help, on Search and Replay."""

from __future__ import annotations

from pathlib import Path

from search import Models
from search.fakes import ScriptedPolicy, ScriptedPRM
from tests.test_app import app, record, scripted  # noqa: F401 - fixture


def markdown(at) -> str:
    return "\n".join(md.value for md in at.markdown)


def test_search_page_shows_checker_verdicts_summary_and_colour_by(scripted: Path) -> None:  # noqa: F811
    run_id = record(scripted, Models(ScriptedPolicy(), ScriptedPRM(noise=0.7)), strategy="best_of_n", n=8)
    at = app(run=str(run_id))
    assert not at.exception, at.exception
    text = markdown(at)
    assert "Exact checker vs PRM (good step = PRM ≥ 0.5)" in text and "missed" in text
    assert at.selectbox(key="colour-by").value == "prm"
    at.selectbox(key="colour-by").set_value("truth").run()
    assert not at.exception, at.exception
    assert any("green: PRM agrees" in c.value for c in at.caption)
    at.number_input(key=f"pick-run-{run_id}").set_value(2).run()
    assert "**Exact checker:**" in markdown(at)
    path_table = next(df.value for df in at.dataframe if "checker" in df.value.columns)
    assert set(path_table["checker"]) <= {"✓ right", "✗ wrong"}
    for key in ("prm", "q", "value", "visits", "self_eval", "rollout"):
        at.selectbox(key="colour-by").set_value(key).run()
        assert not at.exception, (key, at.exception)


def test_redecide_panel_changes_the_answer_without_models(scripted: Path) -> None:  # noqa: F811
    run_id = record(scripted, Models(ScriptedPolicy(), ScriptedPRM(noise=0.7)), strategy="best_of_n", n=8)
    at = app(run=str(run_id))
    assert any(e.label.startswith("Re-decide this run") for e in at.expander)
    assert "**Would choose:**" in markdown(at) and "same as the run's answer" in markdown(at)
    at.selectbox(key=f"redecide-run-{run_id}-rule").set_value("majority").run()
    assert not at.exception, at.exception
    assert "majority does not read the aggregated step scores" in " ".join(c.value for c in at.caption)
    grid = next(df.value for df in at.dataframe if "rule" in df.value.columns)
    assert list(grid["rule"]).count("argmax") == 4 and "majority" in set(grid["rule"])


def test_replay_has_the_same_panels_and_help(scripted: Path) -> None:  # noqa: F811
    run_id = record(scripted, Models(ScriptedPolicy(), ScriptedPRM()), strategy="beam", n=4, beam_width=2)
    at = app("reasoning_viz/pages/replay.py", run=str(run_id))
    assert not at.exception, at.exception
    assert at.selectbox(key="colour-by").value == "prm"
    assert any("UCT" in e.label for e in at.expander)
    assert "PUCT" in markdown(at) and "N and M" in markdown(at)
    assert "Exact checker vs PRM" in markdown(at)


def test_a_task_without_checker_says_so(scripted: Path) -> None:  # noqa: F811
    from search import run_search
    from storage import Store

    with Store.open(scripted) as store:
        recorder = store.recorder(name="freeform")
        run_search("What is 2+2?", task="freeform", strategy="greedy", models=Models(ScriptedPolicy(), ScriptedPRM()),
                   config={"max_depth": 2}, sinks=[recorder])
        recorder.close()
    at = app(run=str(recorder.run_id))
    assert not at.exception, at.exception
    assert any("no exact step checker" in c.value for c in at.caption)
