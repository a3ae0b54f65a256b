"""One pipeline from request to search: cheap checks first, then store, then models, then recorder;
the same request gives the same events from every front door (CLI, app, eval)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from search import Budget, ConfigError, Models, ProblemError, run_search
from search.evaluate import parse_spec, run_eval, run_sweep
from search.events import comparable
from search.request import LoadedModels, ModelChoice, Recording, RunRequest, launch, prepare
from search.tasks.base import Problem
from storage import Store
from tests.engine_cases import PROBLEM, scripted_models


class SpyLoader(LoadedModels):
    """LoadedModels that writes down what launch asked of it, in order."""

    def __init__(self, models: Models, calls: list[str], bad_choice: bool = False) -> None:
        super().__init__(models)
        object.__setattr__(self, "calls", calls)
        object.__setattr__(self, "bad_choice", bad_choice)

    def check(self, choice: ModelChoice) -> None:
        self.calls.append("check")
        if self.bad_choice:
            raise ValueError("unknown PRM preset 'magic'")

    def load(self, choice: ModelChoice) -> Models:
        self.calls.append("load")
        return self.models


def _launch(request: RunRequest, calls: list[str], store: Any = None, bad_choice: bool = False):
    def open_store():
        calls.append("store")
        return store

    return launch(request, loader=SpyLoader(scripted_models(), calls, bad_choice), open_store=open_store)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"problem": "   "}, ProblemError, "empty"),
        ({"problem": "x" * 5000}, ProblemError, "limit is"),
        ({"problem": "What is love?"}, ProblemError, "An arith problem looks like"),
        ({"task": "chess"}, ProblemError, "Unknown task"),
        ({"strategy": "alphago"}, ConfigError, "unknown strategy"),
        ({"knobs": {"self_evaluate": "maybe"}}, ConfigError, "not a valid bool"),
        ({"knobs": {"n": "2", "beam_width": "4"}}, ConfigError, "cannot be larger than n"),
        ({"knobs": {"beam_size": 3}}, ConfigError, "has no knob 'beam_size'"),
    ],
)
def test_cheap_checks_fail_before_store_or_models_are_touched(changes: dict, error: type, message: str) -> None:
    calls: list[str] = []
    fields = {"problem": PROBLEM, "recording": Recording(enabled=True)} | changes
    with pytest.raises(error, match=message):
        _launch(RunRequest(**fields), calls)
    assert calls == []


def test_a_bad_model_choice_fails_before_the_store_opens_or_models_load() -> None:
    calls: list[str] = []
    with pytest.raises(ValueError, match="magic"):
        _launch(RunRequest(PROBLEM, recording=Recording(enabled=True)), calls, bad_choice=True)
    assert calls == ["check"]


def test_launch_orders_check_store_load_and_records_the_run(tmp_path: Path) -> None:
    calls: list[str] = []
    request = RunRequest(
        PROBLEM,
        strategy="mcts",
        knobs={"simulations": "6", "backup": "max"},
        reference="100",
        seed=3,
        recording=Recording(enabled=True, name="pipeline", tags=("t",)),
    )
    with Store.open(tmp_path / "runs.db") as store:
        launched = _launch(request, calls, store=store)
        assert calls == ["check", "store", "load"]
        result = launched.run()
        run = store.get_run(launched.recorder.run_id)
        assert (run.name, run.tags, run.strategy, run.status) == ("pipeline", ("t",), "mcts", "finished")
        assert run.event_count == len(result.events)
    direct = run_search(
        PROBLEM,
        task="arith",
        strategy="mcts",
        models=scripted_models(),
        config={"simulations": 6, "backup": "max"},
        seed=3,
        reference="100",
    )
    assert comparable(result.events) == comparable(direct.events)


def test_recording_off_never_opens_the_store() -> None:
    calls: list[str] = []
    launched = _launch(RunRequest(PROBLEM, strategy="greedy"), calls)
    assert calls == ["check", "load"] and launched.recorder is None
    assert launched.run().status == "finished"


def test_prepare_cleans_the_problem_once_and_builds_the_config() -> None:
    prepared = prepare(RunRequest(f"  {PROBLEM}  ", strategy="beam", knobs={"n": "4", "beam_width": "2"}))
    assert prepared.problem == PROBLEM
    assert (prepared.config.n, prepared.config.beam_width) == (4, 2)


def test_eval_and_sweep_go_through_the_same_checks() -> None:
    problems = [Problem("arith", PROBLEM, "100")]
    with pytest.raises(ConfigError, match="not a valid bool"):
        run_eval(problems, "best_of_n", scripted_models(), {"self_evaluate": "maybe"})
    with pytest.raises(ConfigError, match="not a valid bool"):
        parse_spec("best_of_n:self_evaluate=maybe")
    summary, rows = run_eval(problems, "best_of_n", scripted_models(), {"n": "3"}, budget=Budget(max_nodes=50))
    assert summary.problems == 1 and rows[0]["status"] == "finished"
    points = run_sweep(problems, ["greedy", "beam"], [1, 2], scripted_models())
    assert [(p["spec"], p["size"]) for p in points] == [("greedy", 1), ("beam", 1), ("beam", 2)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "-s", "best_of_n", "-k", "self_evaluate=maybe"], "not a valid bool"),
        (["eval", "-s", "beam", "-k", "n=2", "-k", "beam_width=4"], "cannot be larger than n"),
        (["sweep", "-s", "best_of_n:self_evaluate=maybe"], "not a valid bool"),
        (["sweep", "--budgets", "1,two"], "comma-separated whole numbers"),
        (["run", PROBLEM, "-k", "self_evaluate=maybe", "--no-record"], "not a valid bool"),
    ],
)
def test_cli_refuses_bad_knobs_before_loading_models(args: list[str], message: str) -> None:
    """The model paths do not exist: reaching the loader would give another message."""
    from cli import app

    result = CliRunner().invoke(app, [*args, "--policy", "/nonexistent/policy", "--prm", "/nonexistent/prm"])
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
