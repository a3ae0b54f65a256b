"""Search and Replay pages under AppTest (issue 17): the live tree is laid out as a fresh load,
links open exactly their run, a loaded run shows its own settings, budgets say why they stopped."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest

from reasoning_viz.layout import tidy_layout
from search import Models
from search.fakes import ScriptedPolicy, ScriptedPRM
from tests.test_app import app, record, sidebar_button


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, checkpoints: dict[str, Path]) -> Path:
    """A fresh database and the tiny GPT-2 as default policy and PRM (as in test_app)."""
    db = tmp_path / "runs.db"
    monkeypatch.setenv("THOUGHTSCOPE_DB", str(db))
    monkeypatch.setenv("THOUGHTSCOPE_POLICY", str(checkpoints["gpt2"]))
    monkeypatch.setenv("THOUGHTSCOPE_PRM", str(checkpoints["gpt2"]))
    return db


@pytest.fixture(autouse=True)
def _no_jobs_from_other_tests() -> None:
    """AppTests share one process, so one job registry: a job of an earlier test (another
    database) must not answer for a run id of this test's database."""
    from reasoning_viz import resources

    resources.job_registry.clear()


def _array(value) -> list:
    if isinstance(value, dict) and "bdata" in value:  # plotly's typed-array encoding
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).tolist()
    return list(value)


def tree_positions(at) -> dict[int, tuple[float, float]]:
    """Node id -> (x, y) of every marker in the page's tree chart (the figure sent to the browser)."""
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    out = {}
    for trace in spec["data"]:
        if trace.get("mode") == "markers" and "customdata" in trace:
            for node, x, y in zip(_array(trace["customdata"]), _array(trace["x"]), _array(trace["y"]), strict=True):
                out[int(node)] = (x, y)
    return out


class PacedPolicy(ScriptedPolicy):
    """The scripted policy at a person's pace: each proposal call takes `pause` seconds, so a
    search spans several polls however fast the machine (a quiet CI machine once finished the
    whole search between two polls and the test saw no growth)."""

    def __init__(self, pause: float = 0.3) -> None:
        super().__init__()
        self.pause = pause

    def propose(self, prompts, k, **kwargs):
        time.sleep(self.pause)
        return super().propose(prompts, k, **kwargs)


def test_live_tree_is_laid_out_as_a_fresh_load_shows_it(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reasoning_viz import resources
    from search.request import LoadedModels

    monkeypatch.setattr(resources, "MODEL_LOADER", LoadedModels(Models(PacedPolicy(), ScriptedPRM())))
    at = app()
    at.sidebar.number_input(key="knob-beam-n").set_value(8).run()
    at = sidebar_button(at, "Start search")
    assert not at.exception, at.exception
    polls = 0
    for _ in range(240):
        status = {m.label: m.value for m in at.metric}.get("status")
        if status not in (None, "starting", "running"):
            break
        time.sleep(0.25)
        at.run()
        polls += at.get("plotly_chart") != []
    assert polls >= 2, "the test must see the tree grow"
    from storage import Store

    resources.job_registry().get(at.query_params["job"]).thread.join(60)  # the recorder has flushed
    at.run()
    run_id = int(at.query_params["run"])
    with Store.open(env) as store:
        fresh = tidy_layout(store.tree(run_id))
    assert tree_positions(at) == fresh
    reopened = app(run=str(run_id))
    assert tree_positions(reopened) == fresh


def test_links_open_exactly_their_run_or_say_it_does_not_exist(env: Path) -> None:
    models = Models(ScriptedPolicy(), ScriptedPRM())
    first = record(env, models, strategy="beam", n=4, beam_width=2)
    second = record(env, models, strategy="mcts", simulations=6)
    at = app(run=str(second))  # a saved run, no job in this server has it
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["status"] == "finished" and metrics["nodes"] != "0"
    at = app(job="job-1", run=str(first))  # an old link: after a restart job-1 may be another search
    assert at.query_params["run"] == str(first)
    assert {m.label: m.value for m in at.metric}["status"] == "finished"
    assert at.sidebar.selectbox(key="strategy").value == "beam"
    at = app(run="99999")
    assert not at.exception
    assert any("Run 99999 does not exist" in w.value for w in at.warning)
    assert not at.metric
    at = app("reasoning_viz/pages/replay.py", run="99999")
    assert not at.exception
    assert any("Run 99999 does not exist" in e.value for e in at.error)
    assert at.query_params.get("run") in (None, [], "99999"), "a missing run's link opens no other run"
    assert not at.slider, "no other run's events are shown under a missing run's message"
    at = app("reasoning_viz/pages/runs.py", run="99999")
    assert not at.exception
    assert any("Run 99999 does not exist" in e.value for e in at.error)
    for wanted in ("99999", "-5"):
        at = app("reasoning_viz/pages/replay.py", run=str(first), event=wanted)
        assert not at.exception
        assert any(f"event {wanted}" in w.value.lower() for w in at.warning), [w.value for w in at.warning]
    at = app("reasoning_viz/pages/replay.py", run=str(first))
    assert not at.exception and not at.error
    assert at.query_params["run"] == str(first)


def test_a_loaded_run_fills_the_sidebar_and_shows_its_problem(env: Path) -> None:
    problem = "Start with 17. Add 25. Multiply by 3. Subtract 12. Add 4. Multiply by 2. Subtract 9. What is the result?"
    run_id = record(env, Models(ScriptedPolicy(), ScriptedPRM()), strategy="mcts", problem=problem, simulations=5)
    at = app(run=str(run_id))
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="task").value == "arith"
    assert at.sidebar.selectbox(key="strategy").value == "mcts"
    assert at.sidebar.text_area(key="problem-arith").value == problem
    assert at.sidebar.number_input(key="knob-mcts-simulations").value == 5
    assert any(t.value == problem for t in at.text), "node 0 shows the problem text"
    at = app("reasoning_viz/pages/replay.py", run=str(run_id), event="1")
    assert problem in at.text[0].value, "the narration cut the problem"


def test_default_models_load_and_warm_in_the_background_at_start(env: Path) -> None:
    from reasoning_viz import resources

    at = app()
    assert not at.exception, at.exception
    warmup = resources.warm_default_models()
    warmup.thread.join(120)
    assert warmup.state == "ready", warmup.error
    assert "ready" in warmup.line() and warmup.seconds > 0


def test_a_problem_longer_than_the_policy_context_is_refused_before_the_search(env: Path) -> None:
    at = app()
    at.sidebar.selectbox(key="task").set_value("freeform").run()
    at.sidebar.text_area(key="problem-freeform").set_value("What is " + "one plus " * 300 + "one?").run()
    at = sidebar_button(at, "Start search")
    assert not at.exception, at.exception
    assert any("context of 256 tokens" in e.value for e in at.error), [e.value for e in at.error]
    assert "job" not in at.query_params, "no search started"


def test_replay_at_position_zero_and_after_start_shows_no_error(env: Path) -> None:
    """Found by a fresh user: `event=0` and the ⏮ start button raised KeyError: 0 (no node exists
    before the search_started event)."""
    run = record(env, Models(ScriptedPolicy(), ScriptedPRM()), strategy="beam", n=4, beam_width=2)
    at = app("reasoning_viz/pages/replay.py", run=str(run), event="0")
    assert not at.exception, at.exception
    assert any("before the search started" in i.value for i in at.info)
    at = app("reasoning_viz/pages/replay.py", run=str(run), event="7")
    at.button(key="replay-start").click().run()
    assert not at.exception, at.exception
    assert at.session_state["replay-k"] == 0

