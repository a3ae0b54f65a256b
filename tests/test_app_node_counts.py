"""Every place that counts a run's nodes says the same number (issue 17: the tree caption said
"Showing all 129 nodes" beside a nodes metric of 128): the nodes metric, the tree caption on the
Search page and on Replay, the run list, Compare, `cli.py runs show` and the run record all count
the steps, not the root (the problem itself).  AppTest on a saved scripted run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from search import Models
from search.fakes import ScriptedPolicy, ScriptedPRM
from tests.test_app import app, record, scripted  # noqa: F401 - `scripted` is a fixture


@pytest.fixture
def saved(scripted: Path) -> tuple[int, int]:  # noqa: F811
    """(run id, node count of its record) of a saved beam run, and a second run to compare with."""
    from storage import Store

    run_id = record(scripted, Models(ScriptedPolicy(), ScriptedPRM()), strategy="beam", n=8, beam_width=2)
    record(scripted, Models(ScriptedPolicy(), ScriptedPRM()), strategy="greedy")
    with Store.open(scripted) as store:
        run, tree = store.get_run(run_id), store.tree(run_id)
    assert run.node_count == len(tree) - 1 > 0
    return run_id, run.node_count


def _caption_count(at) -> int:
    caption = next(c.value for c in at.caption if c.value.startswith("Showing all "))
    return int(re.match(r"Showing all ([\d,]+) nodes", caption).group(1).replace(",", ""))


def test_search_page_caption_and_metric_agree(saved: tuple[int, int]) -> None:
    run_id, nodes = saved
    at = app(run=str(run_id))
    assert not at.exception, at.exception
    metric = int({m.label: m.value for m in at.metric}["nodes"])
    assert _caption_count(at) == metric == nodes


def test_replay_caption_at_the_last_event_agrees(saved: tuple[int, int]) -> None:
    run_id, nodes = saved
    at = app("reasoning_viz/pages/replay.py", run=str(run_id))
    at.slider[0].set_value(at.slider[0].max).run()
    assert not at.exception, at.exception
    assert _caption_count(at) == nodes


def test_runs_and_compare_pages_agree(saved: tuple[int, int]) -> None:
    run_id, nodes = saved
    runs = app("reasoning_viz/pages/runs.py")
    table = runs.dataframe[0].value
    assert int(table.loc[table["run"] == run_id, "nodes"].iloc[0]) == nodes
    compare = app("reasoning_viz/pages/compare.py", runs=f"{run_id},{run_id + 1}")
    summary = compare.dataframe[0].value
    assert int(summary.loc[summary["run"] == run_id, "nodes"].iloc[0]) == nodes


def test_cli_runs_show_agrees(saved: tuple[int, int], scripted: Path) -> None:  # noqa: F811
    from typer.testing import CliRunner

    from cli import app as cli

    run_id, nodes = saved
    shown = CliRunner().invoke(cli, ["runs", "show", str(run_id), "--db", str(scripted)])
    assert shown.exit_code == 0, shown.output
    assert re.search(rf"\bnodes {nodes}\b", shown.output), shown.output
    assert len([line for line in shown.output.splitlines() if line.lstrip().startswith("#")]) == nodes + 1  # + root
