"""Every page of the Streamlit app under streamlit.testing.v1.AppTest, with real SQLite files.

The live Search page runs on the scripted models (search/fakes.py) through the page's model
seam (`reasoning_viz.resources.MODEL_LOADER`): fast and deterministic.  Model loading itself is
tested on real (tiny) transformers checkpoints, and the browser tests use the nano pack.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from search import Budget, Models, all_strategies, run_search
from search.fakes import ScriptedPolicy, ScriptedPRM
from search.models import Proposal
from tests.engine_cases import PROBLEM

APP = str(Path(__file__).resolve().parents[1] / "app.py")
EVIL = "<script>alert(1)</script> <img src=x onerror=alert(2)> [click](javascript:alert(3)) **bold** # head"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, checkpoints: dict[str, Path]) -> Path:
    """A fresh database and the tiny GPT-2 as default policy and PRM."""
    db = tmp_path / "runs.db"
    monkeypatch.setenv("THOUGHTSCOPE_DB", str(db))
    monkeypatch.setenv("THOUGHTSCOPE_POLICY", str(checkpoints["gpt2"]))
    monkeypatch.setenv("THOUGHTSCOPE_PRM", str(checkpoints["gpt2"]))
    return db


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh database and the scripted policy and PRM behind the Search page's model seam."""
    from reasoning_viz import resources
    from search.request import LoadedModels

    db = tmp_path / "runs.db"
    monkeypatch.setenv("THOUGHTSCOPE_DB", str(db))
    monkeypatch.setattr(resources, "MODEL_LOADER", LoadedModels(Models(ScriptedPolicy(), ScriptedPRM())))
    return db


def record(db: Path, models: Models, strategy: str = "mcts", problem: str = PROBLEM, **config) -> int:
    from storage import Store

    with Store.open(db) as store:
        recorder = store.recorder(name=f"{strategy} test")
        run_search(problem, task="arith", strategy=strategy, models=models, config=config, sinks=[recorder])
        recorder.close()
        return recorder.run_id


def app(page: str | None = None, **params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()  # pages registered with a url_path can only be switched to after a first run
    if page:
        at.switch_page(page)
        at.run()
    return at


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if label in b.label).click()
    return at.run()


def sidebar_button(at: AppTest, label: str) -> AppTest:
    next(b for b in at.sidebar.button if label in b.label).click()
    return at.run()


def test_about_page_lists_every_strategy(env: Path) -> None:
    at = app("reasoning_viz/pages/home.py")
    assert not at.exception
    labels = [expander.label for expander in at.expander]
    for name in all_strategies():
        assert any(label.startswith(f"{name}:") for label in labels)


def test_search_page_runs_a_search_in_the_background_and_records_it(scripted: Path) -> None:
    from search.events import comparable
    from storage import Store

    at = app()
    assert not at.exception and not at.error
    at.sidebar.expander[0]  # knobs exist
    at = sidebar_button(at, "Start search")
    assert not at.exception, at.exception
    assert at.query_params["job"]
    for _ in range(200):
        metrics = {m.label: m.value for m in at.metric}
        if metrics.get("status") == "finished":
            break
        time.sleep(0.05)
        at.run()
    assert metrics["status"] == "finished"
    assert int(metrics["nodes"]) > 1
    assert at.query_params["run"] == "1"
    assert any(md.value.startswith("**Answer:**") for md in at.markdown)
    with Store.open(scripted) as store:
        run = store.get_run(1)
        saved = store.events(1)
    assert run.status == "finished" and run.strategy == "beam"
    # Deterministic: the page's run is exactly the engine's run of the same request.
    direct = run_search(run.problem, task="arith", strategy="beam", models=Models(ScriptedPolicy(), ScriptedPRM()),
                        config=run.config, seed=0, budget=Budget(**run.limits))
    assert comparable(saved) == comparable(direct.events)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda at: at.sidebar.text_area[0].set_value("   "), "The problem text is empty"),
        (lambda at: at.sidebar.number_input(key="knob-beam-beam_width").set_value(64), "cannot be larger than n"),
    ],
)
def test_search_page_explains_bad_input(scripted: Path, setup, message: str) -> None:
    at = app()
    setup(at)
    at = sidebar_button(at.run(), "Start search")
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]


def test_missing_model_path_is_an_error_not_a_traceback(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THOUGHTSCOPE_POLICY", "/nonexistent/policy")
    at = sidebar_button(app(), "Start search")
    assert not at.exception
    assert any("Cannot load the models" in e.value and "no model at" in e.value for e in at.error)


def test_corrupt_database_is_reported_and_left_alone(env: Path) -> None:
    env.write_bytes(b"this is not a database" * 100)
    before = env.read_bytes()
    at = app()
    assert not at.exception
    assert any("Runs will not be saved" in e.value for e in at.error)
    at = app("reasoning_viz/pages/replay.py")
    assert not at.exception
    assert any("Cannot open the run database" in e.value for e in at.error)
    assert env.read_bytes() == before


def test_replay_deep_link_slider_and_narration(env: Path) -> None:
    run_id = record(env, Models(ScriptedPolicy(), ScriptedPRM()), simulations=10)
    at = app("reasoning_viz/pages/replay.py", run=str(run_id), event="12")
    assert not at.exception, at.exception
    assert at.slider[0].value == 12
    assert at.text[0].value.startswith("[12/")
    at.slider[0].set_value(30).run()
    assert at.text[0].value.startswith("[30/")
    assert at.query_params["event"] == "30"
    at = click(at, "play")
    assert at.session_state["playing"] is True
    at.run()
    assert at.session_state["replay-k"] > 30


class EvilPolicy(ScriptedPolicy):
    """Writes steps full of HTML and markdown tricks (and says them when judging)."""

    def propose(self, prompts, k, **kwargs):
        out = super().propose(prompts, k, **kwargs)
        return [[Proposal(EVIL + " " + p.text, p.token_count, p.token_logprobs) for p in group] for group in out]


def test_model_text_renders_as_inert_text(env: Path) -> None:
    run_id = record(env, Models(EvilPolicy(), ScriptedPRM()), strategy="greedy", max_depth=2)
    at = app("reasoning_viz/pages/replay.py", run=str(run_id))
    at.number_input(key=f"replay-pick-{run_id}").set_value(1).run()
    assert not at.exception
    markdown = " ".join(md.value for md in at.markdown)
    assert "<script>" not in markdown and "](javascript:" not in markdown and "**bold**" not in markdown
    for md in at.markdown:
        assert not md.allow_html
    cells = [str(cell) for df in at.dataframe for cell in df.value.astype(str).to_numpy().ravel()]
    assert any(EVIL in cell for cell in cells), "the step text is shown verbatim, as data"


def test_search_page_reattaches_to_a_saved_run_from_the_url(env: Path) -> None:
    run_id = record(env, Models(ScriptedPolicy(), ScriptedPRM()), strategy="beam", n=4, beam_width=2)
    at = app(run=str(run_id))
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["status"] == "finished" and int(metrics["nodes"]) > 4
    at = app(run="999")
    assert not at.exception
    assert any("Run 999 does not exist" in w.value for w in at.warning)


def test_a_search_still_loading_its_models_shows_starting_not_a_crash(env: Path) -> None:
    """Between Start and the first event (models loading) the job has no tree yet; the page
    must say so rather than draw (or fail to draw) an empty tree.  CI once caught this race."""
    import threading

    from reasoning_viz import resources

    release = threading.Event()

    def slow_search(sinks, stop):
        release.wait(30)
        return run_search(PROBLEM, task="arith", strategy="greedy", models=Models(ScriptedPolicy(), ScriptedPRM()),
                          sinks=sinks, stop=stop)

    job = resources.job_registry().start("slow start", slow_search)
    try:
        at = app(job=job.id)
        assert not at.exception, at.exception
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["status"] == "starting" and metrics["nodes"] == "0"
        assert any("Loading the models" in i.value for i in at.info)
    finally:
        release.set()
        job.thread.join(30)
    at = app(job=job.id)
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["status"] == "finished"
