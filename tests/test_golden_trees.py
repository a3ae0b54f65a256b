"""Golden trees: every strategy's event log on the scripted models, compared exactly.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 python -m pytest tests/test_golden_trees.py``
and review the diff of tests/golden/ like any other code change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from search import run_search
from search.events import comparable
from tests.engine_cases import CASES, PROBLEM, scripted_models

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("case", sorted(CASES))
def test_event_log_matches_golden(case: str) -> None:
    strategy, config = CASES[case]
    result = run_search(PROBLEM, task="arith", strategy=strategy, models=scripted_models(), config=config, seed=7)
    assert result.status == "finished", result.error
    got = comparable(result.events)
    path = GOLDEN / f"{case}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(path.read_text())
    assert got == expected
