"""Every strategy end to end from the CLI on tiny checkpoints, plus the CLI's error messages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from search import Tree, all_strategies, events_from_json

RUNNER = CliRunner()
PROBLEM = "Start with 17. Add 25. Multiply by 3. What is the result?"
SMALL = ["-k", "max_depth=3", "-k", "max_step_tokens=12"]
KNOBS = {
    "greedy": [],
    "sampling": [],
    "self_consistency": ["-k", "n=3"],
    "best_of_n": ["-k", "n=3"],
    "beam": ["-k", "n=4", "-k", "beam_width=2"],
    "dvts": ["-k", "n=4", "-k", "beam_width=2"],
    "mcts": ["-k", "simulations=4", "-k", "expand_width=2"],
    "tot_bfs": ["-k", "breadth=2", "-k", "proposals=2"],
}


def test_every_registered_strategy_has_a_cli_case() -> None:
    assert set(KNOBS) == set(all_strategies())


@pytest.mark.parametrize("strategy", sorted(KNOBS))
def test_run_every_strategy_on_tiny_checkpoints(strategy: str, checkpoints: dict[str, Path], tmp_path: Path) -> None:
    events_path = tmp_path / "events.json"
    args = ["run", PROBLEM, "--strategy", strategy, *KNOBS[strategy], *SMALL]
    args += ["--policy", str(checkpoints["gpt2"]), "--prm", str(checkpoints["gpt2"]), "--device", "cpu"]
    args += ["--events-json", str(events_path), "--seed", "3"]
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "status finished" in result.output
    assert "spent tokens_generated=" in result.output
    events = events_from_json(json.loads(events_path.read_text()))
    tree = Tree.from_events(events)
    assert tree.status == "finished" and len(tree) > 1
    assert tree.meta["models"]["policy"].endswith("gpt2")


def test_run_with_a_head_prm_and_qwen2_policy(checkpoints: dict[str, Path]) -> None:
    args = ["run", PROBLEM, "--strategy", "beam", "-k", "n=4", "-k", "beam_width=2", *SMALL]
    args += ["--policy", str(checkpoints["qwen2"]), "--prm", str(checkpoints["qwen2_head"])]
    args += ["--prm-preset", "head", "--step-separator", "<extra_0>", "--device", "cpu"]
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert re.search(r"#\d+ prm \d\.\d\d", result.output), result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "   "], "problem text is empty"),
        (["run", PROBLEM, "--strategy", "beam", "-k", "n=2", "-k", "beam_width=4"], "cannot be larger than n"),
        (["run", PROBLEM, "-k", "beam_size=3"], "has no knob 'beam_size'"),
        (["run", PROBLEM, "-k", "n=lots"], "not a valid int"),
        (["run", PROBLEM, "--strategy", "alphago"], "unknown strategy"),
        (["run", PROBLEM, "--max-nodes", "0"], "max_nodes must be positive"),
        (["run", PROBLEM, "--policy", "/nonexistent/model", "--prm", "/nonexistent/prm"], "no model at"),
        (["run", PROBLEM, "--prm-preset", "magic"], "unknown PRM preset 'magic'"),
        (["run", "What is love?", "--task", "arith"], "An arith problem looks like"),
        (["train", "policy", "--arch", "gpt3"], "arch must be qwen2 or gpt2 (got 'gpt3')"),
        (["train", "prm", "--labels", "vibes"], "labels must be mc or checker (got 'vibes')"),
        (["train", "prm", "--objective", "tags"], "objective must be likelihood or tag (got 'tags')"),
        (["eval-prm", "--kind", "head"], "--kind must be likelihood or tag (got 'head')"),
    ],
)
def test_bad_input_gets_a_clear_message_not_a_traceback(args: list[str], message: str) -> None:
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_help_lists_every_declared_choice() -> None:
    """Choices are declared once (presets, kinds, tasks, chat-template modes, devices, statuses, formats,
    training choices) and the help texts are made from those declarations, so none can go missing."""
    from models.bundle import PRM_PRESETS
    from models.prompting import CHAT_TEMPLATE_MODES
    from models.specs import DEVICE_CHOICES, PRM_KINDS
    from nano.config import ARCHITECTURES, PRM_LABELS, PRM_OBJECTIVES
    from search.tasks import GENERATING_TASKS, TASKS
    from storage.exchange import GRAPH_FORMATS
    from storage.schema import RUN_STATUSES

    cases = {
        ("run",): [*PRM_PRESETS, *PRM_KINDS, *TASKS, *CHAT_TEMPLATE_MODES, *DEVICE_CHOICES],
        ("runs", "list"): RUN_STATUSES,
        ("runs", "export"): ["json", *GRAPH_FORMATS],
        ("eval",): [*GENERATING_TASKS, *DEVICE_CHOICES],
        ("train", "policy"): ARCHITECTURES,
        ("train", "prm"): [*PRM_LABELS, *PRM_OBJECTIVES],
        ("eval-prm",): PRM_OBJECTIVES,
    }
    for command, names in cases.items():
        result = RUNNER.invoke(app, [*command, "--help"], env={"COLUMNS": "400"})
        assert result.exit_code == 0, result.output
        words = set(re.findall(r"[\w-]+", result.output))
        missing = [name for name in names if name not in words]
        assert not missing, f"{' '.join(command)} --help does not list {missing}"


def test_training_configs_refuse_choices_they_do_not_know() -> None:
    from nano.config import ModelSize, PRMTrainConfig

    for make in (lambda: ModelSize(arch="gpt3"), lambda: PRMTrainConfig(labels="vibes"),
                 lambda: PRMTrainConfig(objective="tags")):
        with pytest.raises(ValueError, match="must be"):
            make()


def test_strategies_lists_every_strategy_and_its_knobs() -> None:
    result = RUNNER.invoke(app, ["strategies"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name, spec in all_strategies().items():
        assert f"{name}:" in result.output
        for knob, _, _ in spec.config_cls.knobs():
            assert knob in result.output


def test_same_seed_gives_the_same_event_log_with_transformers_models(checkpoints: dict[str, Path]) -> None:
    from models.bundle import load_models
    from search import run_search
    from search.events import comparable

    models = load_models(str(checkpoints["gpt2"]), str(checkpoints["gpt2"]), device="cpu")
    config = {"simulations": 4, "expand_width": 2, "max_depth": 3, "max_step_tokens": 12}
    logs = [
        comparable(run_search(PROBLEM, task="arith", strategy="mcts", models=models, config=config, seed=11).events)
        for _ in range(2)
    ]
    assert logs[0] == logs[1]
    other = run_search(PROBLEM, task="arith", strategy="mcts", models=models, config=config, seed=12).events
    assert comparable(other) != logs[0]


def test_run_records_by_default_and_runs_commands_find_it(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    args = ["run", PROBLEM, "--strategy", "greedy", *SMALL, "--db", str(db), "--name", "first", "--tag", "demo"]
    args += ["--policy", str(checkpoints["gpt2"]), "--prm", str(checkpoints["gpt2"])]
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "saved run #1" in result.output
    listing = RUNNER.invoke(app, ["runs", "list", "--db", str(db)])
    assert listing.exit_code == 0 and "first" in listing.output
    cut = RUNNER.invoke(app, [*args[:-4], "--max-nodes", "2", "--name", "cut"])
    assert cut.exit_code == 0, cut.output
    line = next(row for row in RUNNER.invoke(app, ["runs", "list", "--db", str(db)]).output.splitlines()
                if "cut" in row)
    assert "stopped · node budget" in line, line  # as the app says, not "finished"
    shown = RUNNER.invoke(app, ["runs", "show", "1", "--db", str(db)])
    assert shown.exit_code == 0 and "greedy" in shown.output
    skipped = RUNNER.invoke(
        app, [*args[:-4], "--no-record", "--policy", str(checkpoints["gpt2"]), "--prm", str(checkpoints["gpt2"])]
    )
    assert skipped.exit_code == 0 and "saved" not in skipped.output


def test_a_corrupt_database_stops_run_with_a_clear_message(tmp_path: Path) -> None:
    db = tmp_path / "bad.db"
    db.write_bytes(b"garbage" * 1000)
    result = RUNNER.invoke(app, ["run", PROBLEM, "--db", str(db)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "error:" in result.output
    assert db.read_bytes() == b"garbage" * 1000


def test_docs_prints_both_generated_sections() -> None:
    from search.events import EventKind

    result = RUNNER.invoke(app, ["docs"])
    assert result.exit_code == 0, result.output
    for name in all_strategies():
        assert f"#### `{name}`" in result.output
    for kind in EventKind:
        assert f"| `{kind.value}` |" in result.output


def test_one_text_tree_renderer_for_run_and_runs_show() -> None:
    from cli import common, run, runs
    from search import run_search
    from tests.engine_cases import CASES, scripted_models
    from tests.engine_cases import PROBLEM as LONG_PROBLEM

    strategy, config = CASES["mcts_puct_prm"]
    tree = run_search(LONG_PROBLEM, task="arith", strategy=strategy, models=scripted_models(), config=config).tree
    lines = common.render_tree(tree, max_nodes=5, hint="raise --max-nodes")
    assert lines[0].startswith("#0 problem:") and len(lines) == 7
    assert lines[-1] == f"... {len(tree) - 6} more nodes (raise --max-nodes)"
    full = "\n".join(common.render_tree(tree, max_nodes=10_000))
    assert "visits=" in full and " n=" not in full and "★" in full
    assert run.render_tree is runs.render_tree is common.render_tree
