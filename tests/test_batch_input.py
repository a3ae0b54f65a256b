"""Batch input is read and checked whole before any search; one problem's failure stays in its row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from search import Models
from search.batch import BatchInputError, RowsFile, interrupt_keeps, read_problems_jsonl, run_rows
from search.config import ConfigError
from search.evaluate import run_eval, run_sweep
from search.fakes import ScriptedPolicy, ScriptedPRM
from search.tasks.base import Problem

GOOD = {"task": "arith", "problem": "Start with 1000. Add 500. What is the result?", "answer": "1,500"}


def _jsonl(path: Path, lines: list[object]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


BAD_LINES = {
    2: ({"problem": "What is love?"}, "An arith problem looks like"),
    3: ("{not json", "not JSON"),
    4: ({**GOOD, "answer": "8.5"}, "whole number"),
    5: ([1, 2], "expected a JSON object"),
    6: ({**GOOD, "task": "chess"}, "Unknown task 'chess'"),
    7: ({"answer": 3}, 'missing "problem"'),
    8: ({**GOOD, "problem": "   "}, "empty"),
    9: ({"task": "countdown", "problem": "Use 4 5 6 10 to make 24.", "answer": "(10-4)*5"}, "does not make 24"),
}


def test_every_bad_line_is_reported_with_its_number_before_anything_runs(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "mixed.jsonl", [GOOD, *(row for row, _ in BAD_LINES.values()), "", GOOD])
    with pytest.raises(BatchInputError) as caught:
        read_problems_jsonl(path)
    problems = caught.value.problems
    assert [int(p.split(":")[0].removeprefix("line ")) for p in problems] == list(BAD_LINES)
    for (number, (_, why)), problem in zip(BAD_LINES.items(), problems, strict=True):
        assert problem.startswith(f"line {number}: ") and why in problem, problem
    assert "nothing was run" in str(caught.value)


@pytest.mark.parametrize("content", ["", "\n\n", b"\xff\xfe\x00bad"])
def test_empty_or_unreadable_files_are_refused(tmp_path: Path, content) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(BatchInputError):
        read_problems_jsonl(path)


def test_answers_are_normalised_as_they_are_read(tmp_path: Path) -> None:
    rows = [GOOD, {**GOOD, "answer": 1500.0}, {**GOOD, "answer": 1500}, {"problem": GOOD["problem"]}]
    problems = read_problems_jsonl(_jsonl(tmp_path / "ok.jsonl", rows))
    assert [p.answer for p in problems] == ["1500", "1500", "1500", None]


class FailsOn(ScriptedPolicy):
    """Raises `error` when asked about the problem containing `marker`."""

    def __init__(self, marker: str, error: BaseException) -> None:
        super().__init__()
        self.marker, self.error = marker, error

    def propose(self, prompts, k, **kwargs):
        if any(self.marker in p for p in prompts):
            raise self.error
        return super().propose(prompts, k, **kwargs)


PROBLEMS = [Problem("arith", f"Start with {n}. Add 2. Multiply by 3. What is the result?", None) for n in (5, 7, 9, 11)]


@pytest.mark.parametrize("error", [RuntimeError("CUDA out of memory"), ValueError("tokenizer broke")])
def test_a_failure_inside_one_problem_is_recorded_in_its_row_and_the_eval_goes_on(error) -> None:
    models = Models(FailsOn("Start with 7.", error), ScriptedPRM())
    summary, rows = run_eval(PROBLEMS, "greedy", models)
    assert [r["status"] for r in rows] == ["finished", "failed", "finished", "finished"]
    assert str(error) in rows[1]["error"] and summary.errors == 1 and summary.problems == 4


class FailingTemplate:
    """A chat format whose template fails on one problem: run_search raises while it renders the
    prompt for SEARCH_STARTED, before the strategy runs (outside it)."""

    def __init__(self, problem: str):
        self.problem = problem

    def prompt(self, task, problem: str, steps) -> str:
        if problem == self.problem:
            raise OSError("chat template file vanished")
        return task.prompt(problem, steps)

    def judge(self, task, problem: str, steps, step: str) -> str:
        return task.self_eval_question(problem, steps, step)


@pytest.mark.parametrize("case", ["bad reference", "raises before the search"])
def test_an_error_outside_the_strategy_is_recorded_in_its_row_too(case: str) -> None:
    problems = list(PROBLEMS)
    policy = ScriptedPolicy()
    if case == "bad reference":
        problems[1] = Problem("arith", problems[1].text, "eight")
    else:
        policy.chat = FailingTemplate(problems[1].text)
    summary, rows = run_eval(problems, "greedy", Models(policy, ScriptedPRM()))
    assert [r["status"] for r in rows] == ["finished", "failed", "finished", "finished"]
    assert rows[1]["error"] and rows[1]["correct"] is False and summary.errors == 1


def test_run_rows_records_exceptions_raised_outside_the_search() -> None:
    def one(i, item):
        if item == "b":
            raise KeyError("no such thing")
        return {"i": i, "error": None}

    rows = run_rows(["a", "b", "c"], one, lambda i, item, error: {"i": i, "error": error})
    assert rows == [{"i": 0, "error": None}, {"i": 1, "error": "KeyError: 'no such thing'"}, {"i": 2, "error": None}]


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_ctrl_c_keeps_every_finished_row_on_disk(tmp_path: Path, suffix: str, capsys) -> None:
    out = tmp_path / f"rows{suffix}"
    saved = RowsFile(out)
    models = Models(FailsOn("Start with 9.", KeyboardInterrupt()), ScriptedPRM())
    with pytest.raises(SystemExit) as stopped, interrupt_keeps(saved):
        run_eval(PROBLEMS, "greedy", models, on_problem=saved.add)
    assert stopped.value.code == 130
    assert "2 finished row(s) are saved" in capsys.readouterr().err
    text = out.read_text()
    assert (len(json.loads(text)) if suffix == ".json" else len(text.strip().splitlines()) - 1) == 2
    assert not out.with_name(out.name + ".partial").exists()


@pytest.mark.parametrize("bad", ["beam:beam_width=8", "mcts:c=-1", "best_of_n:ranker=magic"])
def test_a_bad_sweep_spec_fails_before_any_search(bad: str) -> None:
    seen: list[int] = []

    class Counting(ScriptedPolicy):
        def propose(self, prompts, k, **kwargs):
            seen.append(1)
            return super().propose(prompts, k, **kwargs)

    with pytest.raises(ConfigError):
        run_sweep(PROBLEMS, ["greedy", bad], [1, 4], Models(Counting(), ScriptedPRM()))
    assert seen == []


def test_eval_cli_lists_bad_lines_and_loads_no_model(tmp_path: Path) -> None:
    from cli import app

    path = _jsonl(tmp_path / "bad.jsonl", [GOOD, BAD_LINES[2][0], {**GOOD, "answer": "1,50"}])
    out = tmp_path / "rows.json"
    res = CliRunner().invoke(app, ["eval", "--jsonl", str(path), "--policy", "/nonexistent", "--out", str(out)])
    assert res.exit_code == 1
    text = " ".join(res.output.split())
    assert "line 2:" in text and "line 3:" in text and "line 1:" not in text and "no model at" not in text
    assert not out.exists()


def test_runs_import_of_several_files_checks_all_first(tmp_path: Path) -> None:
    from cli.runs import runs_app
    from search import run_search
    from storage import Store
    from tests.engine_cases import PROBLEM, scripted_models

    db = tmp_path / "runs.db"
    with Store.open(db) as store:
        recorder = store.recorder(name="source")
        run_search(PROBLEM, task="arith", strategy="greedy", models=scripted_models(), sinks=[recorder])
        recorder.close()
        good = store.export_json(recorder.run_id)
    files = [tmp_path / f"{name}.json" for name in ("a", "b", "truncated", "foreign")]
    files[0].write_text(json.dumps(good))
    files[1].write_text(json.dumps(good))
    files[2].write_text(json.dumps(good)[:200])
    files[3].write_text(json.dumps({"nodes": []}))
    runner = CliRunner()
    res = runner.invoke(runs_app, ["import", *map(str, files), "--db", str(db)])
    assert res.exit_code == 1
    text = " ".join(res.output.split())
    assert "2 of 4 file(s) cannot be imported; nothing was imported" in text
    assert "truncated.json" in text and "foreign.json" in text and "a.json:" not in text
    with Store.open(db) as store:
        assert len(store.list_runs()) == 1
    res = runner.invoke(runs_app, ["import", str(files[0]), str(files[1]), "--db", str(db)])
    assert res.exit_code == 0, res.output
    assert "as run 2" in res.output and "as run 3" in res.output
