"""The Search sidebar's widgets get their values from session state only (AppTest, scripted models).

A Preset, an opened run and "re-run with these settings" write the sidebar's widget keys; a widget
that also passes `value=`/`index=` makes Streamlit log "The widget with key ... was created with a
default value but also had its value set via the Session State API" (a fresh user saw it for
knob-beam-temperature).  These tests fail on any warning Streamlit logs while the page runs, and
check that the written values are the ones the widgets show.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from search import Budget, Models, run_search
from search.fakes import ScriptedPolicy, ScriptedPRM
from search.presets import PRESETS
from tests.engine_cases import PROBLEM

APP = str(Path(__file__).resolve().parents[1] / "app.py")


class _Collect(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        if "missing ScriptRunContext" not in record.getMessage():  # AppTest runs threads in bare mode
            self.messages.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture
def streamlit_warnings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every warning Streamlit logs during the test (its loggers do not propagate to the root)."""
    import streamlit.logger
    from streamlit.elements.lib import policies

    monkeypatch.setattr(policies, "_shown_default_value_warning", False)  # Streamlit says it once per process
    messages: list[str] = []
    handler = _Collect(messages)
    loggers = list(streamlit.logger._loggers.values())
    for logger in loggers:
        logger.addHandler(handler)
    yield messages
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh database and the scripted policy and PRM behind the Search page's model seam."""
    from reasoning_viz import resources
    from search.request import LoadedModels

    db = tmp_path / "runs.db"
    monkeypatch.setenv("THOUGHTSCOPE_DB", str(db))
    monkeypatch.setattr(resources, "MODEL_LOADER", LoadedModels(Models(ScriptedPolicy(), ScriptedPRM())))
    return db


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    return at


def _widget(at: AppTest, key: str):
    return next(w for w in [*at.sidebar.selectbox, *at.sidebar.number_input, *at.sidebar.checkbox] if w.key == key)


@pytest.mark.parametrize("preset", ["game24-tot", "game24-mcts", "countdown-beam", "countdown-best-of-n"])
def test_choosing_a_preset_logs_no_widget_warning(scripted: Path, streamlit_warnings: list[str], preset: str) -> None:
    at = _ok(AppTest.from_file(APP, default_timeout=90).run())
    at.sidebar.selectbox(key="preset").set_value(preset).run()
    strategy = PRESETS[preset].strategy
    assert _ok(at).sidebar.selectbox(key="strategy").value == strategy
    for knob, value in PRESETS[preset].knobs.items():
        assert _widget(at, f"knob-{strategy}-{knob}").value == value, knob
    _ok(at.run())  # drawn again from session state on the next rerun
    assert not streamlit_warnings, streamlit_warnings


def test_a_chosen_preset_explains_itself_and_the_help_names_tot_and_the_value_model(scripted: Path) -> None:
    at = _ok(AppTest.from_file(APP, default_timeout=90).run())
    at.sidebar.selectbox(key="preset").set_value("game24-tot").run()
    assert PRESETS["game24-tot"].summary in [c.value for c in _ok(at).sidebar.caption]
    from reasoning_viz.glossary import GLOSSARY

    assert {"Tree of Thoughts (BFS)", "value model"} <= set(GLOSSARY)


def _record(db: Path) -> int:
    """A saved MCTS run with settings unlike the sidebar's defaults (strategy, knobs, budget, seed)."""
    from storage import Store

    with Store.open(db) as store:
        recorder = store.recorder(name="settings test")
        run_search(PROBLEM, task="arith", strategy="mcts", models=Models(ScriptedPolicy(), ScriptedPRM()),
                   config={"simulations": 6, "temperature": 0.9, "expand_width": 2}, budget=Budget(max_nodes=40),
                   seed=7, sinks=[recorder])
        recorder.close()
        return recorder.run_id


def test_opening_a_run_and_rerunning_it_log_no_widget_warning(scripted: Path, streamlit_warnings: list[str]) -> None:
    run_id = _record(scripted)
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["run"] = str(run_id)
    _ok(at.run())
    assert at.sidebar.selectbox(key="strategy").value == "mcts"
    assert (_widget(at, "knob-mcts-simulations").value, _widget(at, "knob-mcts-temperature").value) == (6, 0.9)
    assert (_widget(at, "seed").value, _widget(at, "budget-max_nodes").value) == (7, 40)
    _ok(at.run())
    next(b for b in at.sidebar.button if "Re-run with these settings" in b.label).click()
    _ok(at.run())
    assert not at.error, [e.value for e in at.error]
    assert not streamlit_warnings, streamlit_warnings
