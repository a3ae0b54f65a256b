"""Project rules: README commands match CI, generated docs are fresh, ruff is clean."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from search.docs import refresh

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


def test_generated_readme_sections_are_fresh() -> None:
    readme = (ROOT / "README.md").read_text()
    assert refresh(readme) == readme, "run `python cli.py docs --write`"


@pytest.mark.skipif(shutil.which("ruff") is None and not (ROOT / ".venv/bin/ruff").exists(), reason="ruff missing")
def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff") or str(ROOT / ".venv/bin/ruff")
    done = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
