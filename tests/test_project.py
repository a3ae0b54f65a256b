"""Project rules: README commands match CI, generated docs are fresh, ruff is clean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from search.docs import SECTIONS, refresh
from search.events import EventKind
from search.registry import all_strategies

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    return [block.strip() for block in blocks]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = next(c for c in readme_commands() if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()


def test_readme_has_the_app_command() -> None:
    assert any("streamlit run app.py" in c and "pip install" in c for c in readme_commands())


def _section(readme: str, name: str) -> str:
    match = re.search(rf"<!-- begin:{name} -->\n(.*?)<!-- end:{name} -->", readme, re.DOTALL)
    assert match, f"README lost its {name} markers"
    return match.group(1)


def test_generated_readme_sections_are_fresh() -> None:
    readme = (ROOT / "README.md").read_text()
    assert refresh(readme) == readme, "run `python cli.py docs --write`"


def test_readme_lists_every_strategy_knob_and_event_kind() -> None:
    """Read the generated sections themselves: an empty or partial table fails here."""
    readme = (ROOT / "README.md").read_text()
    strategies, events = _section(readme, "strategies"), _section(readme, "events")
    for name, spec in all_strategies().items():
        assert f"`{name}`" in strategies, f"strategy {name} missing from the README"
        table = strategies.split(f"`{name}` —", 1)[1].split("#### ", 1)[0]
        for knob, _, _ in spec.config_cls.knobs():
            assert f"| `{knob}` |" in table, f"{name} knob {knob} missing from the README"
    for kind in EventKind:
        assert f"| `{kind.value}` |" in events, f"event {kind.value} missing from the README"


@pytest.mark.parametrize("between", ["", "stale line\n", "| old | table |\n|---|---|\n"])
def test_refresh_fills_empty_and_stale_sections(between: str) -> None:
    readme = "".join(f"<!-- begin:{n} -->\n{between}<!-- end:{n} -->\n" for n in SECTIONS)
    fresh = refresh(readme)
    assert "stale line" not in fresh and "| old |" not in fresh
    for name, render in SECTIONS.items():
        assert _section(fresh, name) == render() + "\n"
    assert refresh(fresh) == fresh


def test_refresh_refuses_a_readme_without_markers() -> None:
    with pytest.raises(ValueError, match="markers"):
        refresh("# no generated sections here\n")


def _ruff() -> str | None:
    """ruff beside the running interpreter (the venv the tests run in), else on PATH."""
    beside = Path(sys.executable).parent / "ruff"
    return str(beside) if beside.exists() else shutil.which("ruff")


def test_ruff_is_clean() -> None:
    ruff = _ruff()
    assert ruff, "ruff is in requirements-dev.txt: install it into the test venv"
    done = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
