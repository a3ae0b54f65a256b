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


def test_run_records_its_model_choice_and_runs_show_lists_the_roles(cli: CliRunner, tmp_path: Path) -> None:  # noqa: F811
    """`cli.py run` saves the model choice it was given (an opened run restores it in the app);
    `runs show` still lists one entry per model role."""
    from cli import app
    from search.request import CHOICE_KEY
    from storage import Store

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    problem = sorted(REFERENCES)[0]
    args = ["run", problem, "--task", "freeform", "--strategy", "greedy", "--db", db, "--prm-preset", "math-shepherd"]
    assert cli.invoke(app, args).exit_code == 0
    with Store.open(db) as store:
        choice = store.get_run(1).models[CHOICE_KEY]
    assert (choice["policy"], choice["prm_preset"]) == (None, "math-shepherd")
    shown = cli.invoke(app, ["runs", "show", "1", "--db", db])
    models = next(line for line in shown.output.splitlines() if line.strip().startswith("models"))
    assert "policy=" in models and CHOICE_KEY not in models, models
