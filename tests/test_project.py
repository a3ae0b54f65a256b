"""Project rules: README commands match CI, generated docs are fresh, ruff is clean."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from search.docs import SECTIONS, refresh
from search.events import EVENT_SCHEMA, OPTIONAL_KEYS, EventKind
from search.registry import all_strategies

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    return [block.strip() for block in blocks]


def shell_steps(script: str) -> list[str]:
    """The commands of a shell script, one per line or `&&` part, comments and blank lines left out."""
    lines = [line.strip() for line in script.splitlines() if not line.strip().startswith("#")]
    return [part.strip() for line in lines for part in line.split("&&") if part.strip()]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    """Every step of the README's test command is a command of .ci/run, in the same order (CI starts
    its test servers in between, while the venv installs)."""
    test_command = next(c for c in readme_commands() if "pytest" in c)
    ci_steps = shell_steps((ROOT / ".ci" / "run").read_text())
    steps = shell_steps(test_command)
    missing = [step for step in steps if step not in ci_steps]
    assert not missing, f".ci/run does not run {missing}"
    at = [ci_steps.index(step) for step in steps]
    assert at == sorted(at), ".ci/run runs the README's test steps in another order"


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
        row = events.split(f"| `{kind.value}` |", 1)[1].split("\n", 1)[0]
        for key in [*EVENT_SCHEMA[kind], *OPTIONAL_KEYS.get(kind, {})]:
            assert f"`{key}" in row, f"event {kind.value} key {key} missing from the README"


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


# ---------------------------------------------------------------------- architecture
PACKAGES = ("app", "cli", "reasoning_viz", "search", "storage", "models", "nano")
MAX_MODULE_LINES = 500
#: Modules allowed over the limit, each by name (none: models/hf.py was split for issue 14).
OVER_LIMIT_ALLOWED: set[str] = set()


def _project_modules() -> dict[str, Path]:
    modules = {}
    paths = [ROOT / "app.py", *(p for package in PACKAGES[1:] for p in (ROOT / package).rglob("*.py"))]
    for path in paths:
        rel = path.relative_to(ROOT)
        if "migrations" in rel.parts:
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> project modules it imports anywhere in its body (top level, functions, TYPE_CHECKING).

    An import of a module's own parent package (`from storage import liveness` inside storage)
    is not an edge: Python runs the package's __init__ first in any case.
    """
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    import networkx as nx

    try:
        return [edge[0] for edge in nx.find_cycle(nx.DiGraph([(a, b) for a, bs in graph.items() for b in bs]))]
    except nx.NetworkXNoCycle:
        return None


def test_no_import_cycles() -> None:
    assert find_cycle(import_graph(_project_modules())) is None


def test_the_cycle_finder_sees_lazy_and_type_checking_imports() -> None:
    graph = {"storage.store": {"storage.replay"}, "storage.replay": {"storage.store"}, "search": set()}
    assert find_cycle(graph) is not None
    lazy = ast.parse("def f():\n    from storage.replay import Replay\nif TYPE_CHECKING:\n    import storage.store\n")
    names = {n.module if isinstance(n, ast.ImportFrom) else n.names[0].name for n in ast.walk(lazy)
             if isinstance(n, ast.Import | ast.ImportFrom)}
    assert names == {"storage.replay", "storage.store"}


def test_no_module_over_500_lines() -> None:
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in _project_modules().values()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert set(too_long) <= OVER_LIMIT_ALLOWED, too_long


def test_one_command_line_package() -> None:
    assert not (ROOT / "storage" / "cli.py").exists() and not (ROOT / "nano" / "cli.py").exists()
    assert (ROOT / "cli.py").read_text().count("\n") < 10, "cli.py only starts the cli/ package"
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0
    for command in ("run", "runs", "eval", "sweep", "train", "docs", "strategies"):
        assert command in done.stdout


def test_streamlit_skips_the_full_gc_after_each_script_run() -> None:
    """The live view reruns its fragment twice a second; Streamlit's default `gc.collect(2)` after
    each run held the GIL for half the process's time and made an app search ~10x slower than the
    same search from the CLI (default beam search: 85 s in the app, 8-12 s without it; py-spy)."""
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
