"""References are read once, where they enter, by `Task.parse_reference`; never first after the search."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli import app
from search import Models, run_search
from search.fakes import ScriptedPolicy, ScriptedPRM
from search.models import Proposal, StepScores
from search.tasks import ReferenceAnswerError, get_task

ARITH = get_task("arith")
COUNTDOWN = get_task("countdown")
G24 = "Use 4 5 6 10 to make 24."


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("8.0", "8"),
        ("1,500", "1500"),
        (8.0, "8"),
        (1500, "1500"),
        ("+7", "7"),
        ("-1,234,567", "-1234567"),
        ("1 500", "1500"),
        ("8.00", "8"),
        ("  12 ", "12"),
        ("Answer: 5", "5"),
        ("", None),
        (None, None),
    ],
)
def test_arith_reads_integers_as_people_write_them(written, canonical) -> None:
    assert ARITH.parse_reference(written) == canonical


@pytest.mark.parametrize(
    "bad", ["8.5", "1,50", "abc", "1,5000", 8.5, True, float("nan"), float("inf"), [8], "x" * 2000]
)
def test_arith_refuses_what_is_not_a_whole_number_with_a_sentence(bad) -> None:
    with pytest.raises(ReferenceAnswerError, match=r"(?i)answer"):
        ARITH.parse_reference(bad)


def test_countdown_reads_expressions_and_refuses_ones_that_miss_the_target() -> None:
    assert COUNTDOWN.parse_reference("(10-4)*5-6", G24) == "(10 - 4) * 5 - 6"
    assert COUNTDOWN.parse_reference("(10 - 4) * 5 - 6 = 24", G24) == "(10 - 4) * 5 - 6 = 24"
    assert COUNTDOWN.parse_reference(24, G24) == "24"
    for bad in ("(10-4)*5", "10-4+", "25", "4+5+6+10"):
        with pytest.raises(ReferenceAnswerError):
            COUNTDOWN.parse_reference(bad, G24)


def test_freeform_accepts_numeric_json_references() -> None:
    assert get_task("freeform").parse_reference(0.5) == "0.5"
    assert get_task("freeform").parse_reference(12.0) == "12"


@pytest.mark.parametrize(
    ("problem", "reference"),
    [
        ("Start with 1000. Add 500. What is the result?", "1,500"),
        ("Start with 1000. Add 500. What is the result?", 1500.0),
        ("Start with 4. Multiply by 2. What is the result?", "8.0"),
        ("Start with 4. Multiply by 2. What is the result?", " +8 "),
    ],
)
@pytest.mark.parametrize("strategy", ["greedy", "beam", "mcts"])
def test_written_integer_references_grade_the_search_instead_of_crashing_it(problem, reference, strategy) -> None:
    models = Models(policy=ScriptedPolicy(greedy_slip_rate=0.0, slip_rate=0.0), prm=ScriptedPRM())
    config = {"n": 4, "beam_width": 2} if strategy == "beam" else {"simulations": 4} if strategy == "mcts" else {}
    result = run_search(problem, task="arith", strategy=strategy, models=models, config=config, reference=reference)
    assert result.status == "finished", result.error
    assert result.correct is True
    assert result.events[0].data["reference"] in ("1500", "8")


class _CountingPolicy(ScriptedPolicy):
    calls = 0

    def propose(self, *args, **kwargs):
        type(self).calls += 1
        return super().propose(*args, **kwargs)


@pytest.mark.parametrize("bad", ["8.5", "eight", "1,50"])
def test_a_bad_reference_is_refused_before_any_event_or_model_call(bad) -> None:
    seen: list = []
    _CountingPolicy.calls = 0
    with pytest.raises(ReferenceAnswerError, match="whole number"):
        run_search(
            "Start with 4. Multiply by 2. What is the result?",
            task="arith",
            strategy="greedy",
            models=Models(policy=_CountingPolicy(), prm=ScriptedPRM()),
            reference=bad,
            sinks=[seen.append],
        )
    assert seen == [] and _CountingPolicy.calls == 0


def test_cli_refuses_a_bad_reference_before_loading_models() -> None:
    result = CliRunner().invoke(
        app,
        [
            "run",
            "Start with 4. Multiply by 2. What is the result?",
            "--reference",
            "8.5",
            "--policy",
            "/nonexistent/model",
            "--prm",
            "/nonexistent/prm",
        ],
    )
    assert result.exit_code == 1
    assert "whole number" in result.output and "no model at" not in result.output


class _StuckPolicy(ScriptedPolicy):
    """Never writes an answer: every step is a thought."""

    def propose(self, prompts, k, **kwargs):
        return [[Proposal("let me think", 3, (-0.1,) * 3) for _ in range(k)] for _ in prompts]


class _FlatPRM:
    name = "flat-prm"

    def score(self, problem, paths):
        return [StepScores(tuple(0.5 for _ in steps), 1) for steps in paths]


@pytest.mark.parametrize("task", ["arith", "countdown"])
def test_a_finished_search_without_an_answer_is_graded_wrong_and_found_by_runs_list_wrong(task, tmp_path) -> None:
    from storage import Store

    problem = {"arith": "Start with 17. Add 25. Multiply by 3. Subtract 14. What is the result?", "countdown": G24}[
        task
    ]
    policy = _StuckPolicy()
    db = tmp_path / "runs.db"
    with Store.open(db) as store:
        recorder = store.recorder(name="no answer")
        result = run_search(
            problem,
            task=task,
            strategy="greedy",
            models=Models(policy=policy, prm=_FlatPRM()),
            config={"max_depth": 1},
            sinks=[recorder],
        )
        recorder.close()
        assert result.status == "finished" and result.answer is None
        assert result.correct is False
        assert [r.name for r in store.list_runs(correct=False)] == ["no answer"]
    listed = CliRunner().invoke(app, ["runs", "list", "--wrong", "--db", str(db)])
    assert "no answer" in listed.output, listed.output


@pytest.mark.parametrize(("known", "shown"), [("8.5", "whole number"), ("eight", "whole number"), ("1,50", "1,50")])
def test_the_apps_known_answer_box_refuses_a_bad_reference_before_the_search(known, shown, tmp_path, monkeypatch):
    from tests.test_app import app, sidebar_button

    monkeypatch.setenv("THOUGHTSCOPE_DB", str(tmp_path / "runs.db"))
    monkeypatch.setenv("THOUGHTSCOPE_POLICY", "/nonexistent/policy")  # a search would fail to load it
    at = app()
    at.sidebar.selectbox(key="task").set_value("arith").run()
    next(t for t in at.sidebar.text_input if t.label.startswith("Known answer")).set_value(known)
    at = sidebar_button(at.run(), "Start search")
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("Cannot start" in e and shown in e for e in errors), errors
    assert not any("Cannot load the models" in e for e in errors)
