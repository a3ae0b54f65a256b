"""The CLI's hints stay whole at 80 columns (issue 17: `cli.py run` wrapped its replay command at
COLUMNS=80, so it could not be copied): the command a hint names and the files it names are each
printed on one line, whatever the length of the path before them (CliRunner, scripted models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.test_answer_front_doors import REFERENCES, cli  # noqa: F401 - `cli` is a fixture


@pytest.fixture(autouse=True)
def _eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


def _lines(output: str) -> list[str]:
    return output.splitlines()


@pytest.mark.parametrize("pad", [0, 5, 11, 17, 23, 29, 35])
def test_run_prints_its_replay_command_on_one_line(cli: CliRunner, tmp_path: Path, pad: int) -> None:  # noqa: F811
    from cli import app

    folder = tmp_path / ("d" * pad if pad else ".")
    folder.mkdir(exist_ok=True)
    db = f"sqlite:///{folder.resolve() / 'runs.db'}"
    problem = sorted(REFERENCES)[0]
    result = cli.invoke(app, ["run", problem, "--task", "freeform", "--strategy", "greedy", "--db", db])
    assert result.exit_code == 0, result.output
    assert any(line.endswith("python cli.py runs show 1") for line in _lines(result.output)), result.output
    assert any(str(folder.resolve() / "runs.db") in line for line in _lines(result.output)), result.output


@pytest.mark.parametrize("pad", [0, 9, 19, 29])
def test_eval_prints_its_rows_file_on_one_line(cli: CliRunner, tmp_path: Path, pad: int) -> None:  # noqa: F811
    from cli import app

    problem = sorted(REFERENCES)[0]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text(json.dumps({"task": "freeform", "problem": problem, "answer": REFERENCES[problem][0]}) + "\n")
    out = tmp_path / ("e" * pad) / "per-problem-rows.json"
    out.parent.mkdir(exist_ok=True)
    result = cli.invoke(app, ["eval", "--jsonl", str(jsonl), "--strategy", "greedy", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert any(str(out) in line for line in _lines(result.output)), result.output
