"""Named presets (search/presets.py): one declaration used by `run`, `eval` and the app's sidebar."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from search.config import ConfigError
from search.preset_examples import example_for
from search.presets import PRESETS, REPO, get_preset, resolve
from search.registry import get_strategy
from search.tasks import get_task

RUNNER = CliRunner()
#: Small knobs on top of a preset so a test search on the nano models takes seconds.
SMALL_TOT = ["-k", "breadth=2", "-k", "proposals=2", "-k", "max_depth=3"]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_runnable_setting(name: str) -> None:
    preset = get_preset(name)
    get_strategy(preset.strategy).make_config(dict(preset.knobs))  # its knobs fit its strategy
    task = get_task(preset.task)
    assert preset.example is None or task.validate(preset.example)
    from models.bundle import PRM_PRESETS

    assert preset.prm_preset in PRM_PRESETS
    for role in ("policy", "prm"):
        path = preset.model_path(role)
        assert path is None or (Path(path).is_absolute() and (Path(path) / "config.json").is_file()), path


def test_the_game24_presets_are_tot_breadth_5_and_mcts_on_the_value_model() -> None:
    tot, mcts = get_preset("game24-tot"), get_preset("game24-mcts")
    assert (tot.strategy, tot.knobs["breadth"], tot.task) == ("tot_bfs", 5, "countdown")
    assert (mcts.strategy, mcts.task) == ("mcts", "countdown")
    assert get_strategy("mcts").make_config(dict(mcts.knobs)).value_source == "prm"  # the value model is the leaf value
    for preset in (tot, mcts):
        assert preset.prm_preset == "nano-value"
        assert preset.model_path("prm") == str(REPO / "models/nano/value")
        assert preset.model_path("policy") == str(REPO / "models/nano/countdown_policy")


@pytest.mark.parametrize("name", ["countdown-best-of-n", "countdown-beam", "countdown-mcts"])
def test_held_out_countdown_searches_recheck_every_move_and_rank_whole_paths(name: str) -> None:
    """A chain with a move the policy's recheck failed must not win on its last step alone (nano/README.md)."""
    config = get_strategy(get_preset(name).strategy).make_config(dict(get_preset(name).knobs))
    assert (config.self_evaluate, config.self_check, config.score_source) == (True, "recompute", "prm_x_self_eval")
    assert config.doubt_below > 0 and config.aggregation in ("min", "prod")
    if name == "countdown-mcts":
        assert config.widen_c > 0  # a node it keeps returning to gets more proposals


def test_explicit_choices_win_over_the_preset_and_knobs_merge() -> None:
    setup = resolve("game24-tot", knobs={"breadth": "3"}, policy="/elsewhere/policy", prm_preset="head")
    assert setup.knobs["breadth"] == "3" and setup.knobs["proposals"] == PRESETS["game24-tot"].knobs["proposals"] == 32
    assert setup.policy == "/elsewhere/policy" and setup.prm == str(REPO / "models/nano/value")
    assert setup.prm_preset == "head" and (setup.task, setup.strategy) == ("countdown", "tot_bfs")
    other = resolve("game24-tot", strategy="beam")
    assert other.strategy == "beam" and other.knobs == {}  # ToT's knobs are not beam's
    plain = resolve(None)
    assert (plain.task, plain.strategy, plain.knobs, plain.policy, plain.prm_preset) == ("arith", "beam", {}, None,
                                                                                         "nano")


def test_an_unknown_preset_is_refused_with_the_names() -> None:
    with pytest.raises(ConfigError, match="game24-tot"):
        resolve("game42")
    result = RUNNER.invoke(app, ["run", "Use 1 2 3 4 to make 10.", "--preset", "game42", "--no-record"])
    assert result.exit_code == 1 and "unknown preset 'game42'" in result.output and "Traceback" not in result.output


def test_presets_command_and_help_list_every_preset() -> None:
    listing = RUNNER.invoke(app, ["presets"], env={"COLUMNS": "300"})
    assert listing.exit_code == 0, listing.output
    for command in (["run", "--help"], ["eval", "--help"]):
        words = set(re.findall(r"[\w-]+", RUNNER.invoke(app, command, env={"COLUMNS": "400"}).output))
        assert set(PRESETS) <= words, command
    for name, preset in PRESETS.items():
        assert name in listing.output and preset.strategy in listing.output


def test_presets_listing_is_readable_at_80_columns() -> None:
    """One block per preset: nothing cut ('…'), no line over 80, every knob and model path whole."""
    listing = RUNNER.invoke(app, ["presets"], env={"COLUMNS": "80"})
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert max(map(len, lines)) <= 80 and "…" not in listing.output
    words = set(listing.output.split())
    for name, preset in PRESETS.items():
        assert f"{name}  {preset.task} · {preset.strategy}" in lines
        assert {f"{k}={v}" for k, v in preset.knobs.items()} <= words, name
        assert {preset.policy, preset.prm} - {None} <= words, name
        summary = " ".join(" ".join(lines).split())
        assert preset.summary in summary, name


def test_run_with_a_preset_uses_its_strategy_and_models(tmp_path: Path) -> None:
    events = tmp_path / "events.json"
    args = ["run", "Use 2 3 4 to make 10.", "--preset", "game24-tot", *SMALL_TOT, "--device", "cpu",
            "--no-record", "--events-json", str(events)]
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = json.loads(events.read_text())[0]["data"]
    assert meta["strategy"] == "tot_bfs" and meta["task"] == "countdown"
    assert meta["config"]["breadth"] == 2 and meta["config"]["temperature"] == 1.0
    assert meta["models"]["policy"].endswith("countdown_policy") and meta["models"]["prm"].endswith("value")


def test_eval_with_a_preset_reports_nodes_and_greedy_beside(tmp_path: Path) -> None:
    out = tmp_path / "cd.json"
    args = ["eval", "--preset", "game24-tot", "--task", "countdown", "--exclude-target", "24", "-n", "2",
            *SMALL_TOT, "--with-greedy", "--device", "cpu", "--out", str(out)]
    result = RUNNER.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    greedy = json.loads(out.with_name("cd_greedy.json").read_text())
    assert len(rows) == len(greedy) == 2
    assert [r["problem"] for r in rows] == [r["problem"] for r in greedy]
    assert all(r["nodes"] > 1 and r["tokens_generated"] > 0 for r in rows)
    assert all("to make 24." not in r["problem"] for r in rows)
    assert "mean_nodes" in result.output and "tot_bfs" in result.output and "greedy" in result.output


def test_exclude_target_reads_on_along_the_held_out_stream() -> None:
    from cli.evaluate import load_problems
    from search.tasks.countdown import parse_problem

    plain = load_problems("countdown", 40)
    kept = load_problems("countdown", 40, exclude_targets=(24,))
    assert any(parse_problem(p.text).target == 24 for p in plain)  # the stream has Game-of-24-style problems
    assert len(kept) == 40 and all(parse_problem(p.text).target != 24 for p in kept)
    non24 = [p for p in plain if parse_problem(p.text).target != 24]
    assert kept[: len(non24)] == non24  # the same stream, read further
    with pytest.raises(ConfigError, match="countdown"):
        load_problems("arith", 3, exclude_targets=(24,))


def test_preset_form_state_fills_every_knob_and_the_models() -> None:
    from reasoning_viz.preset_form import BUNDLED, BUNDLED_MODELS, BUNDLED_SET, MODEL_SOURCE, preset_form_state

    state = preset_form_state("game24-tot")
    assert (state["task"], state["strategy"]) == ("countdown", "tot_bfs")
    knobs = {name for name, _, _ in get_strategy("tot_bfs").config_cls.knobs()}
    assert {key.removeprefix("knob-tot_bfs-") for key in state if key.startswith("knob-")} == knobs
    assert state["knob-tot_bfs-breadth"] == 5 and state["knob-tot_bfs-temperature"] == 1.0
    assert state[MODEL_SOURCE] == BUNDLED  # the bundled choice is kept, with the bundled set the preset needs
    chosen = BUNDLED_MODELS[state[BUNDLED_SET]].choice()
    assert chosen["policy"].endswith("countdown_policy") and chosen["prm"].endswith("value")
    assert chosen["preset"] == "nano-value"
    assert state["problem-countdown"] == example_for(get_preset("game24-tot"))
    assert not any(key.startswith("budget-") or key in ("seed", "reference") for key in state)  # the user's stay


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_preset_keeps_the_users_model_source_and_says_which_models(name: str) -> None:
    """Bundled stays bundled (the set the preset needs); the user's own models (paths or a server)
    stay; each case says so in the note under the Preset menu."""
    from reasoning_viz import preset_form as pf

    arith, countdown = pf.BUNDLED_MODELS
    for current in ({}, {pf.MODEL_SOURCE: pf.BUNDLED, pf.BUNDLED_SET: arith}, {pf.MODEL_SOURCE: pf.LOCAL}):
        state = pf.preset_form_state(name, current)
        assert (state[pf.MODEL_SOURCE], state[pf.BUNDLED_SET]) == (pf.BUNDLED, countdown)
        assert pf.POLICY_PATH not in state and "countdown policy + value model" in state[pf.PRESET_NOTE]
    again = pf.preset_form_state(name, {pf.MODEL_SOURCE: pf.BUNDLED, pf.BUNDLED_SET: countdown})
    assert "now shows" not in again[pf.PRESET_NOTE]  # nothing changed, nothing claimed
    for own in ({pf.MODEL_SOURCE: pf.LOCAL, pf.POLICY_PATH: "/my/policy", pf.PRM_PATH: "/my/prm"},
                {pf.MODEL_SOURCE: "Inference server"}):
        state = pf.preset_form_state(name, own)
        assert not {pf.MODEL_SOURCE, pf.BUNDLED_SET, pf.POLICY_PATH, pf.PRM_PATH} & set(state)
        assert "are kept" in state[pf.PRESET_NOTE] and own[pf.MODEL_SOURCE] in state[pf.PRESET_NOTE]


def test_a_preset_with_models_outside_the_pack_names_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from reasoning_viz import preset_form as pf
    from search import presets
    from search.presets import Preset

    hub = Preset("hub-beam", "Beam on hub models.", "arith", "beam", policy="org/policy", prm="org/prm",
                 prm_preset="math-shepherd")
    monkeypatch.setitem(presets.PRESETS, hub.name, hub)
    for current in ({pf.MODEL_SOURCE: pf.BUNDLED}, {pf.MODEL_SOURCE: pf.LOCAL, pf.POLICY_PATH: "/my/policy"}):
        state = pf.preset_form_state("hub-beam", current)
        assert (state[pf.MODEL_SOURCE], state[pf.POLICY_PATH], state[pf.PRM_PATH], state[pf.PRM_RECIPE]) == (
            pf.LOCAL, "org/policy", "org/prm", "math-shepherd")
        assert "not bundled" in state[pf.PRESET_NOTE]


def test_the_app_preset_menu_fills_the_sidebar_and_runs_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Choose game24-tot in the sidebar, shrink it, start: the page runs ToT on the preset's own models."""
    import time

    from streamlit.testing.v1 import AppTest

    from storage import Store

    db = tmp_path / "runs.db"
    monkeypatch.setenv("THOUGHTSCOPE_DB", str(db))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    at.sidebar.selectbox(key="preset").set_value("game24-tot").run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="task").value == "countdown"
    assert at.sidebar.selectbox(key="strategy").value == "tot_bfs"
    assert at.sidebar.number_input(key="knob-tot_bfs-breadth").value == 5
    assert at.sidebar.radio(key="model-source").value == "Bundled nano pack"  # the user's source is kept
    assert at.sidebar.selectbox(key="model-bundled").value.startswith("countdown")
    assert "countdown policy + value model" in " ".join(c.value for c in at.sidebar.caption)
    assert at.sidebar.text_area(key="problem-countdown").value == example_for(get_preset("game24-tot"))
    for knob, value in (("breadth", 1), ("proposals", 1), ("max_depth", 2)):
        at.sidebar.number_input(key=f"knob-tot_bfs-{knob}").set_value(value)
    next(b for b in at.sidebar.button if "Start search" in b.label).click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    for _ in range(600):
        if {m.label: m.value for m in at.metric}.get("status") == "finished":
            break
        time.sleep(0.1)
        at.run()
    with Store.open(str(db)) as store:
        run = store.get_run(1)
    assert (run.strategy, run.status, run.config["breadth"]) == ("tot_bfs", "finished", 1)
    assert run.models["policy"]["path"].endswith("countdown_policy") and run.models["prm"]["path"].endswith("value")


def test_find_example_returns_a_problem_search_solves_and_greedy_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from search import run_search
    from search.preset_examples import find_example
    from search.presets import Preset
    from search.tasks.arith import ArithTask
    from search.tasks.base import Problem
    from tests.engine_cases import scripted_models

    monkeypatch.setitem(PRESETS, "arith-beam", Preset("arith-beam", "", "arith", "beam", {"n": 8, "beam_width": 2}))
    monkeypatch.setitem(PRESETS, "arith-greedy", Preset("arith-greedy", "", "arith", "greedy", {}))
    candidates = [Problem("arith", ArithTask().generate(random.Random(i), 3).text, None) for i in range(12)]
    seen: list[dict] = []
    pick = find_example("arith-beam", candidates, scripted_models(), on_try=seen.append)
    assert pick is not None and pick["tried"] == len(seen)
    beam = run_search(pick["problem"], task="arith", strategy="beam", models=scripted_models(),
                      config={"n": 8, "beam_width": 2})
    greedy = run_search(pick["problem"], task="arith", strategy="greedy", models=scripted_models())
    assert beam.correct and not greedy.correct
    assert (pick["search_answer"], pick["greedy_answer"]) == (beam.answer, greedy.answer)
    assert all(not (row["search_correct"] and not row["greedy_correct"]) for row in seen[:-1])
    assert find_example("arith-greedy", candidates, scripted_models()) is None  # greedy never beats itself


def test_the_stored_example_is_shown_and_a_broken_file_falls_back(tmp_path: Path) -> None:
    from search.preset_examples import example_for, read_examples, write_example

    path = tmp_path / "examples.json"
    preset = get_preset("game24-tot")
    assert example_for(preset, path) == preset.example  # no file yet
    write_example({"preset": "game24-tot", "problem": "Use 1 1 4 6 to make 24."}, {"policy": {"name": "p"}}, path)
    write_example({"preset": "game24-mcts", "problem": "Use 1 1 3 8 to make 24."}, {}, path)
    assert example_for(preset, path) == "Use 1 1 4 6 to make 24."
    assert set(read_examples(path)) == {"game24-tot", "game24-mcts"}
    from search.presets import REPO

    write_example({"preset": "game24-tot", "problem": "Use 1 1 4 6 to make 24."},
                  {"policy": {"name": str(REPO / "models/nano/countdown_policy"), "path": "/elsewhere/policy"}}, path)
    assert read_examples(path)["game24-tot"]["models"]["policy"] == {  # portable: repo paths stay relative
        "name": "models/nano/countdown_policy", "path": "/elsewhere/policy"}
    for broken in ("{not json", "[1, 2]", '{"game24-tot": {"problem": 7}}'):
        path.write_text(broken)
        assert example_for(preset, path) == preset.example


def test_presets_sharing_an_example_share_its_stored_pick(tmp_path: Path) -> None:
    """game24-greedy has no pick of its own (greedy never beats itself): it shows ToT's puzzle, so a
    class switching presets sees greedy miss the very puzzle the search solved."""
    from search.preset_examples import write_example

    path = tmp_path / "examples.json"
    write_example({"preset": "game24-tot", "problem": "Use 1 1 4 6 to make 24."}, {}, path)
    assert example_for(get_preset("game24-greedy"), path) == "Use 1 1 4 6 to make 24."
    assert example_for(get_preset("game24-mcts"), path) == "Use 1 1 4 6 to make 24."
    write_example({"preset": "game24-mcts", "problem": "Use 1 1 3 8 to make 24."}, {}, path)
    assert example_for(get_preset("game24-mcts"), path) == "Use 1 1 3 8 to make 24."  # its own wins
    assert example_for(get_preset("countdown-greedy"), path) is None  # another task's pick is not borrowed


def test_the_shipped_game24_example_is_one_puzzle_the_searches_solve_and_greedy_misses() -> None:
    """What a workshop sees: every game24 preset opens the same puzzle; on the bundled weights (seed
    0) ToT and MCTS answer it correctly and the greedy chain does not."""
    from search.tasks.countdown import parse_problem
    from search.tasks.game24 import is_test_puzzle

    shown = {name: example_for(get_preset(name)) for name in ("game24-tot", "game24-mcts", "game24-greedy")}
    assert len(set(shown.values())) == 1, shown
    problem = shown["game24-tot"]
    assert not is_test_puzzle(parse_problem(problem).numbers)
    for name, correct in (("game24-tot", True), ("game24-mcts", True), ("game24-greedy", False)):
        result = RUNNER.invoke(app, ["run", problem, "--preset", name, "--no-record", "--seed", "0"])
        assert result.exit_code == 0, result.output
        assert ("[correct]" if correct else "[wrong]") in result.output, (name, result.output[-600:])


def test_the_default_game24_example_is_neither_a_test_nor_a_training_puzzle() -> None:
    from search.presets import GAME24_EXAMPLE
    from search.tasks.countdown import parse_problem
    from search.tasks.game24 import is_test_puzzle

    numbers = parse_problem(GAME24_EXAMPLE).numbers
    assert not is_test_puzzle(numbers)
    csv = game24_csv()
    if csv is not None:
        from nano.countdown_data import validation_multisets

        assert tuple(sorted(numbers)) in validation_multisets()


def game24_csv() -> Path | None:
    from search.tasks.game24 import csv_path

    return csv_path() if csv_path().is_file() else None
