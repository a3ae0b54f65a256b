"""Free-form answers judged by math-verify at every front door: `cli.py run`, `cli.py eval --jsonl`
(search/evaluate.py run_eval) and the app's threaded search (tests/test_math_answers.py) (issue 15, item 4).

The answers are driven by a scripted policy (engine-level fake, as in tests/test_math_answers.py);
the judging is the real math-verify package behind search/math_equivalence.py.  Every reference
here differs from the answer as text, so a text comparison grades them all wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from search.models import Models, Proposal, StepScores

#: problem -> the chains a self-consistency search writes for it (chain j: scripts[j], one step per call)
SCRIPTS: dict[str, list[list[str]]] = {
    "What is one half as a decimal?": [["Half is 1 over 2.", r"\boxed{0.5}"],
                                       ["Divide.", r"**Answer:** $\frac{1}{2}$"], ["Guess.", r"\boxed{3}"]],
    "How many are one thousand?": [["Write it out.", r"\boxed{1,000}"], ["Count.", "Answer: 1000"],
                                   ["Miscount.", r"\boxed{100}"]],
    "What is the square root of twelve?": [["Simplify.", r"$\boxed{2\sqrt{3}}$"], ["Again.", r"\boxed{2\sqrt3}"],
                                           ["Wrong.", r"\boxed{}"]],
    "Name a prime.": [["Think.", r"\boxed{}"], ["Think again.", "**Answer:**"], ["Give up.", r"\boxed{}"]],
}
#: problem -> (a reference written differently from the chains' answer, the answer the vote picks)
REFERENCES = {"What is one half as a decimal?": ("1/2", "0.5"), "How many are one thousand?": ("1000.0", "1,000"),
              "What is the square root of twelve?": (r"\sqrt{12}", r"2\sqrt{3}")}


class ChainPolicy:
    """Chain j of a problem writes `scripts[problem][j]` one step per call (freeform plain prompts)."""

    name = "chain-script"

    def __init__(self, scripts: Mapping[str, Sequence[Sequence[str]]]) -> None:
        self.scripts = scripts

    def propose(self, prompts: Sequence[str], k: int, **_: object) -> list[list[Proposal]]:
        out = []
        for prompt in prompts:
            match = re.search(r"Problem: (.*?)\n\n(.*)\Z", prompt, re.S)
            assert match, prompt
            problem, steps = match.group(1), match.group(2).split("\n\n")[:-1]
            if not steps:
                out.append([self._step(f"Chain {j}: let us work it out.") for j in range(k)])
                continue
            chain = int(steps[0].split()[1].rstrip(":"))
            out.append([self._step(self.scripts[problem][chain][len(steps) - 1])] * k)
        return out

    @staticmethod
    def _step(text: str) -> Proposal:
        return Proposal(text=text, token_count=len(text.split()), token_logprobs=(-0.1,) * len(text.split()))

    def complete(self, prompts: Sequence[str], **_: object) -> list[Proposal]:
        raise NotImplementedError

    def judge(self, questions: Sequence[str]) -> list:
        raise NotImplementedError


class FlatPRM:
    name = "flat-prm"

    def score(self, problem: str, paths: Sequence[Sequence[str]]) -> list[StepScores]:
        return [StepScores(tuple(0.5 for _ in steps), 1) for steps in paths]


class ScriptedLoader:
    """Stands in for models.bundle.TransformersLoader: the CLI's own path with scripted models."""

    def check(self, choice: object) -> None:
        pass

    def load(self, choice: object) -> Models:
        return Models(policy=ChainPolicy(SCRIPTS), prm=FlatPRM())

    def describe(self, models: Models) -> dict[str, dict[str, object]]:
        return {"policy": {"name": models.policy.name}, "prm": {"name": models.prm.name}}


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    import models.bundle

    monkeypatch.setattr(models.bundle, "TransformersLoader", ScriptedLoader)
    return CliRunner()


@pytest.mark.parametrize("problem", sorted(REFERENCES))
def test_cli_run_grades_freeform_answers_with_math_verify(cli: CliRunner, problem: str, tmp_path: Path) -> None:
    from cli import app

    reference, answer = REFERENCES[problem]
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    args = ["run", problem, "--task", "freeform", "--strategy", "self_consistency", "-k", "n=3", "-k",
            "temperature=1.0", "--reference", reference, "--db", db]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("answer "))
    assert line.startswith(f"answer {answer}  [correct]"), result.output
    listed = cli.invoke(app, ["runs", "list", "--db", db])
    wrong = cli.invoke(app, ["runs", "list", "--db", db, "--wrong"])
    assert listed.exit_code == wrong.exit_code == 0, listed.output + wrong.output
    assert "freeform" in listed.output and "✓" in listed.output  # saved, graded correct
    assert "freeform" not in wrong.output


def test_cli_eval_jsonl_grades_freeform_rows_with_math_verify(cli: CliRunner, tmp_path: Path) -> None:
    from cli import app

    rows = [{"task": "freeform", "problem": p, "answer": REFERENCES[p][0]} for p in sorted(REFERENCES)]
    rows.append({"task": "freeform", "problem": "What is one half as a decimal?", "answer": 0.5})  # a JSON number
    rows.append({"task": "freeform", "problem": "How many are one thousand?", "answer": "10^3"})
    rows.append({"task": "freeform", "problem": "What is the square root of twelve?", "answer": r"3\sqrt{2}"})
    jsonl, out = tmp_path / "freeform.jsonl", tmp_path / "rows.json"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    args = ["eval", "--jsonl", str(jsonl), "--strategy", "self_consistency", "-k", "n=3", "-k", "temperature=1.0",
            "--out", str(out)]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    graded = [(r["problem"], r["answer"], r["correct"]) for r in saved]
    picked = [REFERENCES[p][1] for p in sorted(REFERENCES)] + ["0.5", "1,000", r"2\sqrt{3}"]
    assert graded == [(r["problem"], a, c) for r, a, c in zip(rows, picked, [True] * 5 + [False], strict=True)]


def test_cli_run_with_no_answer_says_so_and_grades_it_wrong(cli: CliRunner, tmp_path: Path) -> None:
    """Only empty boxes / an empty Answer: line: no answer, graded wrong against the reference, never 'None'."""
    from cli import app

    args = ["run", "Name a prime.", "--task", "freeform", "--strategy", "self_consistency", "-k", "n=3", "-k",
            "temperature=1.0", "--reference", "2", "--no-record"]
    result = cli.invoke(app, args)
    line = next(x for x in result.output.splitlines() if x.startswith("answer "))
    assert line.startswith("answer (no answer)  [wrong]"), result.output
    assert "None" not in line
