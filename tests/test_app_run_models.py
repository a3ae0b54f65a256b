"""An opened run shows the models it ran with (issue 17): a run started in the app with the
bundled countdown set, a preset, Hugging Face paths or an inference server, opened by link in a
fresh session, shows that model choice in the sidebar, and "re-run with these settings" records
a run with exactly the same choice.  AppTest on scripted models (the loader seam ignores the
choice; the run record keeps it, as with real models).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from reasoning_viz.advanced_model_form import PRM_OPTION_KEYS, SYSTEM_PROMPT, from_visible, visible
from reasoning_viz.preset_form import BUNDLED_MODELS, BUNDLED_SET, MODEL_SOURCE, NO_PRESET
from reasoning_viz.run_models import run_model_state
from search import Models
from search.fakes import ScriptedPolicy, ScriptedPRM
from search.presets import REPO
from search.request import CHOICE_KEY, ModelChoice, choice_record
from tests.test_app import app, scripted, sidebar_button  # noqa: F401 - `scripted` is a fixture

ARITH, COUNTDOWN = list(BUNDLED_MODELS)


@pytest.fixture(autouse=True)
def _no_jobs_from_other_tests() -> None:
    from reasoning_viz import resources

    resources.job_registry.clear()


def _start(at: AppTest, db: Path, button: str = "Start search") -> int:
    """Press `button`, wait for the background search to be recorded; the new run's id."""
    from reasoning_viz import resources
    from storage import Store

    at = sidebar_button(at, button)
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    resources.job_registry().get(at.query_params["job"]).thread.join(60)
    with Store.open(db) as store:
        return store.list_runs(limit=1)[0].id


def _countdown_set(at: AppTest) -> None:
    at.sidebar.selectbox(key="task").set_value("countdown").run()
    at.sidebar.selectbox(key=BUNDLED_SET).set_value(COUNTDOWN).run()


def _preset(at: AppTest) -> None:
    at.sidebar.selectbox(key="preset").set_value("countdown-beam").run()


def _hub_paths(at: AppTest) -> None:
    at.sidebar.radio(key=MODEL_SOURCE).set_value("Hugging Face").run()
    at.sidebar.text_input(key="model-policy").set_value("org/policy-x")
    at.sidebar.text_input(key="model-prm").set_value("org/prm-y")
    at.sidebar.selectbox(key="model-prm-recipe").set_value("math-shepherd")
    at.sidebar.selectbox(key="model-chat-template").set_value("off").run()


def _hub_advanced(at: AppTest) -> None:
    """A PRM read with overrides and a system prompt (the CLI's --step-separator, --system-prompt...)."""
    _hub_paths(at)
    at.sidebar.text_area(key=SYSTEM_PROMPT).set_value("Reason step by step.")
    at.sidebar.selectbox(key=PRM_OPTION_KEYS["kind"]).set_value("tag")
    at.sidebar.text_input(key=PRM_OPTION_KEYS["step_separator"]).set_value("\\n\\n")
    at.sidebar.text_input(key=PRM_OPTION_KEYS["good_token"]).set_value("+").run()


def _server(at: AppTest) -> None:
    at.sidebar.radio(key=MODEL_SOURCE).set_value("Inference server").run()
    at.sidebar.text_input(key="model-policy-url").set_value("http://127.0.0.1:8001")
    at.sidebar.text_input(key="model-served-policy").set_value("org/served-policy")
    at.sidebar.text_input(key="model-prm-url").set_value("http://127.0.0.1:8002")
    at.sidebar.text_input(key="model-served-prm").set_value("org/served-prm")
    at.sidebar.selectbox(key="model-served-prm-recipe").set_value("qwen-prm").run()


#: setup, then the sidebar values (by widget key) the opened run must show
CASES: dict[str, tuple[Callable[[AppTest], None], dict]] = {
    "countdown set": (_countdown_set, {"task": "countdown", MODEL_SOURCE: "Bundled nano pack", BUNDLED_SET: COUNTDOWN,
                                       "preset": NO_PRESET}),
    # a fresh user: a run made with a preset reopened with Preset "(none)"
    "preset": (_preset, {"task": "countdown", "strategy": "beam", MODEL_SOURCE: "Bundled nano pack",
                         BUNDLED_SET: COUNTDOWN, "preset": "countdown-beam"}),
    "hub paths": (_hub_paths, {MODEL_SOURCE: "Hugging Face", "model-policy": "org/policy-x", "model-prm": "org/prm-y",
                               "model-prm-recipe": "math-shepherd", "model-chat-template": "off"}),
    "hub paths, system prompt, PRM overrides": (_hub_advanced, {
        MODEL_SOURCE: "Hugging Face", "model-prm-recipe": "math-shepherd", SYSTEM_PROMPT: "Reason step by step.",
        PRM_OPTION_KEYS["kind"]: "tag", PRM_OPTION_KEYS["step_separator"]: "\\n\\n",
        PRM_OPTION_KEYS["good_token"]: "+", PRM_OPTION_KEYS["bad_token"]: ""}),
    "server": (_server, {MODEL_SOURCE: "Inference server", "model-policy-url": "http://127.0.0.1:8001",
                         "model-served-policy": "org/served-policy", "model-prm-url": "http://127.0.0.1:8002",
                         "model-served-prm": "org/served-prm", "model-served-prm-recipe": "qwen-prm"}),
}


def _shown(at: AppTest, key: str):
    widgets = [*at.sidebar.selectbox, *at.sidebar.radio, *at.sidebar.text_input, *at.sidebar.text_area]
    return next(w for w in widgets if w.key == key).value


@pytest.mark.parametrize("case", list(CASES))
def test_an_opened_run_shows_and_reruns_its_models(scripted: Path, case: str) -> None:  # noqa: F811
    from storage import Store

    setup, expected = CASES[case]
    at = app()
    setup(at)
    run_id = _start(at, scripted)
    opened = app(run=str(run_id))  # a fresh session, as a link opens it
    assert not opened.exception, opened.exception
    assert {key: _shown(opened, key) for key in expected} == expected
    panel = json.loads(opened.sidebar.json[0].proto.body)  # "This run": the recorded models, choice included
    assert CHOICE_KEY in panel["models"]
    rerun_id = _start(opened, scripted, "Re-run with these settings")
    with Store.open(scripted) as store:
        first, again = store.get_run(run_id), store.get_run(rerun_id)
    assert again.id != run_id
    assert again.models[CHOICE_KEY] == first.models[CHOICE_KEY]
    assert (again.task, again.strategy, again.problem) == (first.task, first.strategy, first.problem)


def test_the_overrides_reach_the_run_record(scripted: Path) -> None:  # noqa: F811
    """What the advanced inputs say is what the run is launched with: the record keeps it."""
    from storage import Store

    at = app()
    _hub_advanced(at)
    run_id = _start(at, scripted)
    with Store.open(scripted) as store:
        choice = store.get_run(run_id).models[CHOICE_KEY]
    assert choice["system_prompt"] == "Reason step by step."
    assert choice["prm_options"] == {"kind": "tag", "step_separator": "\n\n", "good_token": "+"}


@pytest.mark.parametrize("text", ["\n\n", "ки", "a\\nb", "\t\r\\", "\\", "", "x\\"])
def test_separators_are_shown_with_escapes_and_read_back(text: str) -> None:
    assert from_visible(visible(text)) == text
    assert "\n" not in visible(text)  # a one-line text box can hold it


def test_an_unknown_escape_is_kept_as_written() -> None:
    assert from_visible("a\\qb\\") == "a\\qb\\"
    assert from_visible("\\n\\n") == "\n\n"


def test_a_run_recorded_without_its_choice_is_recognised_by_its_paths() -> None:
    """Runs saved before the choice was recorded: names (paths) and URLs per role."""
    countdown = {"policy": {"name": str(REPO / "models/nano/countdown_policy")},
                 "prm": {"name": str(REPO / "models/nano/value")}}
    assert run_model_state(countdown) == {MODEL_SOURCE: "Bundled nano pack", BUNDLED_SET: COUNTDOWN}
    arith = {"policy": "models/nano/policy", "prm": "models/nano/prm"}  # a SEARCH_STARTED event's names
    assert run_model_state(arith) == {MODEL_SOURCE: "Bundled nano pack", BUNDLED_SET: ARITH}
    served = {"policy": {"name": "q", "url": "http://h:1"}, "prm": {"name": "p"}}
    assert run_model_state(served)["model-policy-url"] == "http://h:1"
    assert run_model_state({"policy": {"name": "a/b"}, "prm": {"name": "c/d"}})["model-policy"] == "a/b"
    assert run_model_state({}) == {}


@pytest.mark.parametrize(("choice", "expected"), [
    (ModelChoice(), {MODEL_SOURCE: "Bundled nano pack", BUNDLED_SET: ARITH}),  # `cli.py run`'s default
    (ModelChoice("models/nano/countdown_policy", "models/nano/value", prm_preset="nano-value"),  # a preset, relative
     {MODEL_SOURCE: "Bundled nano pack", BUNDLED_SET: COUNTDOWN}),
    (ModelChoice(prm_preset="nano", device="cpu"), {MODEL_SOURCE: "Hugging Face", "model-policy": "",
                                                    "model-device": "cpu"}),  # not what the bundled source loads
    (ModelChoice("p", "q", orm="o", orm_preset="orm-seq", policy_url="http://h:1"),
     {MODEL_SOURCE: "Inference server", "model-served-policy": "p", "model-orm": "o", "model-orm-recipe": "orm-seq"}),
])
def test_a_recorded_choice_becomes_the_sidebar_that_loads_it(choice: ModelChoice, expected: dict) -> None:
    state = run_model_state({"policy": {"name": "x"}, "prm": {"name": "y"}, CHOICE_KEY: choice_record(choice)})
    assert {key: state.get(key) for key in expected} == expected


def test_scripted_names_are_not_bundled() -> None:
    names = Models(ScriptedPolicy(), ScriptedPRM()).names()
    assert run_model_state(names)[MODEL_SOURCE] == "Hugging Face"


def test_replay_shows_the_run_models_and_opens_it_on_the_search_page(scripted: Path) -> None:  # noqa: F811
    at = app()
    _countdown_set(at)
    run_id = _start(at, scripted)
    replay = app("reasoning_viz/pages/replay.py", run=str(run_id))
    assert not replay.exception, replay.exception
    shown = json.loads(replay.sidebar.json[0].proto.body)
    assert shown["task"] == "countdown"
    assert shown["models"][CHOICE_KEY]["policy"].endswith("countdown_policy")
    link = next(e.proto for e in replay.get("page_link") if "Search page" in e.proto.label)
    assert link.query_string == f"run={run_id}"
    assert link.page_script_hash  # the Search page, resolved by Streamlit


def test_the_bundled_models_follow_the_task_and_a_mismatch_is_named(scripted) -> None:  # noqa: F811
    """A fresh user: after the game24-tot preset, Preset (none) and Task arith ran the countdown
    policy on arith problems (every step wrong, no word why).  Changing the task now switches the
    bundled set; a set chosen for another task afterwards gets a warning; own models stay."""
    at = app()
    at.sidebar.selectbox(key="preset").set_value("game24-tot").run()
    assert at.sidebar.selectbox(key=BUNDLED_SET).value == COUNTDOWN
    at.sidebar.selectbox(key="task").set_value("arith").run()
    assert at.sidebar.selectbox(key=BUNDLED_SET).value == ARITH
    assert not [w.value for w in at.sidebar.warning if "trained for" in w.value]
    at.sidebar.selectbox(key=BUNDLED_SET).set_value(COUNTDOWN).run()  # on purpose: allowed, but named
    assert any("trained for countdown, not arith" in w.value for w in at.sidebar.warning)
    at.sidebar.selectbox(key="task").set_value("countdown").run()
    assert at.sidebar.selectbox(key=BUNDLED_SET).value == COUNTDOWN
    assert not [w.value for w in at.sidebar.warning if "trained for" in w.value]
    _hub_paths(at)
    at.sidebar.selectbox(key="task").set_value("arith").run()
    assert at.sidebar.radio(key=MODEL_SOURCE).value == "Hugging Face", "the user's own models were replaced"
