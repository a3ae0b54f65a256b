"""Engine behaviour on the scripted models: rebuild, determinism, budgets, cancellation, failure."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search import Budget, EventKind, Models, Tree, events_from_json, run_search
from search.config import ConfigError
from search.events import EVENT_SCHEMA, EventError, EventLog, comparable, make_event
from search.fakes import ScriptedPolicy, ScriptedPRM
from search.registry import get_strategy
from search.tasks.arith import ArithTask
from tests.engine_cases import CASES, PROBLEM, scripted_models

ARITH = ArithTask()


def run_case(case: str, seed: int = 0, **kwargs):
    strategy, config = CASES[case]
    return run_search(
        PROBLEM, task="arith", strategy=strategy, models=scripted_models(), config=config, seed=seed, **kwargs
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=st.sampled_from(sorted(CASES)), seed=st.integers(0, 10_000), max_nodes=st.one_of(st.none(), st.integers(1, 40))
)
def test_from_events_rebuilds_the_live_tree_exactly(case: str, seed: int, max_nodes: int | None) -> None:
    result = run_case(case, seed, budget=Budget(max_nodes=max_nodes))
    wire = json.loads(json.dumps([event.to_json() for event in result.events]))
    rebuilt = Tree.from_events(events_from_json(wire))
    assert rebuilt == result.tree
    # Every prefix folds too (replay scrubbing relies on it).
    k = len(result.events) // 2
    assert Tree.from_events(result.events[:k]).events_applied == k


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_seed_same_log_other_seed_other_tree(case: str) -> None:
    first, second = run_case(case, seed=3), run_case(case, seed=3)
    assert comparable(first.events) == comparable(second.events)
    if CASES[case][1].get("temperature", 1) and case not in ("greedy",):
        differs = any(comparable(run_case(case, seed=s).events) != comparable(first.events) for s in (4, 5, 6))
        assert differs, "sampling strategies must depend on the seed"


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_log_is_well_formed(case: str) -> None:
    events = run_case(case).events
    assert [e.seq for e in events] == list(range(len(events)))
    assert events[0].kind is EventKind.SEARCH_STARTED
    assert events[-1].kind is EventKind.FINISHED
    assert [e.t for e in events] == sorted(e.t for e in events)
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.ANSWER_CHOSEN) == 1
    assert EventKind.SPEND in kinds and EventKind.NODE_SCORED in kinds


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("limit", ["max_nodes", "max_tokens"])
def test_every_strategy_stops_cleanly_at_its_budget(case: str, limit: str) -> None:
    budget = Budget(**{limit: 7})
    result = run_case(case, budget=budget)
    assert result.status == "finished"
    spent = result.tree.spend
    if limit == "max_nodes":
        assert spent["nodes"] <= 7
    else:  # the call that crosses the limit finishes, so at most one batch over
        assert spent["tokens_generated"] >= 7 or result.tree.end_reason == "completed"
    kinds = [e.kind for e in result.events]
    assert kinds[-3:] == [EventKind.ANSWER_CHOSEN, EventKind.SPEND, EventKind.FINISHED]
    if result.tree.end_reason != "completed":
        assert result.tree.end_reason == f"budget {limit}=7 reached"


def test_wall_time_budget_uses_the_clock() -> None:
    ticks = iter(range(0, 10_000))
    result = run_case("beam", budget=Budget(max_seconds=5), clock=lambda: float(next(ticks)))
    assert result.tree.end_reason == "budget max_seconds=5 reached"
    assert result.status == "finished"


def test_budget_reports_spend_that_adds_up() -> None:
    result = run_case("beam")
    added = [e for e in result.events if e.kind is EventKind.NODE_ADDED]
    assert result.tree.spend["nodes"] == len(added) == len(result.tree) - 1
    assert result.tree.spend["tokens_generated"] == sum(e.data["token_count"] for e in added)
    assert result.tree.spend["prm_tokens"] > 0 and result.tree.spend["model_calls"] > 0


def test_stop_flag_is_honoured_within_one_model_call() -> None:
    stop = threading.Event()
    calls_at_stop: list[int] = []

    class CountingPolicy(ScriptedPolicy):
        calls = 0

        def propose(self, *args, **kwargs):
            CountingPolicy.calls += 1
            if CountingPolicy.calls == 3:
                stop.set()
                calls_at_stop.append(CountingPolicy.calls)
            return super().propose(*args, **kwargs)

    models = Models(CountingPolicy(), ScriptedPRM())
    result = run_search(PROBLEM, task="arith", strategy="mcts", models=models, config={"simulations": 50}, stop=stop)
    assert result.status == "cancelled"
    assert result.events[-1].kind is EventKind.CANCELLED
    assert CountingPolicy.calls == calls_at_stop[0], "no policy call may start after the flag is set"
    assert Tree.from_events(result.events) == result.tree


def test_a_failing_model_ends_the_search_as_failed_with_the_error() -> None:
    class BrokenPRM(ScriptedPRM):
        def score(self, problem, paths):
            raise RuntimeError("CUDA out of memory (simulated)")

    result = run_search(PROBLEM, task="arith", strategy="beam", models=Models(ScriptedPolicy(), BrokenPRM()))
    assert result.status == "failed"
    assert "CUDA out of memory" in result.events[-1].data["error"]
    assert result.error and "RuntimeError" in result.error


def test_the_log_is_closed_and_documented() -> None:
    assert set(EVENT_SCHEMA) == set(EventKind)
    with pytest.raises(EventError, match="missing"):
        make_event(0, 0.0, EventKind.PRUNED, {"node": 1})
    with pytest.raises(EventError, match="unexpected"):
        make_event(0, 0.0, EventKind.PRUNED, {"node": 1, "reason": "x", "mood": "sad"})
    log = EventLog()
    log.emit(EventKind.FAILED, error="boom")
    with pytest.raises(EventError, match="already ended"):
        log.emit(EventKind.PRUNED, node=1, reason="late")


def test_events_from_json_rejects_broken_sequences_and_foreign_objects() -> None:
    events = [e.to_json() for e in run_case("greedy").events]
    with pytest.raises(EventError, match="sequence"):
        events_from_json(events[:2] + events[3:])
    with pytest.raises(EventError, match="not a ThoughtScope event"):
        events_from_json([{"hello": "world"}])


def test_mcts_backtracks_carry_the_breakdown_that_won() -> None:
    result = run_case("mcts_puct_prm")
    backtracks = [e for e in result.events if e.kind is EventKind.BACKTRACKED]
    assert backtracks, "PUCT over 12 simulations should leave a path at least once"
    for event in backtracks:
        chosen, previous = event.data["breakdown"]["chosen"], event.data["breakdown"]["previous"]
        assert chosen["score"] >= previous["score"]
        assert chosen["node"] != previous["node"]
        assert f"node {chosen['node']}" in event.data["reason"]
    selected = [e for e in result.events if e.kind is EventKind.SELECTED]
    for event in selected:
        scores = [c["score"] for c in event.data["candidates"]]
        assert scores == sorted(scores, reverse=True)
        assert event.data["candidates"][0]["node"] == event.data["node"]


def test_mcts_merges_duplicate_steps_and_widens_nodes_whose_children_all_look_bad() -> None:
    result = run_case("mcts_widen")
    events = result.events
    merged = [e for e in events if e.kind is EventKind.PRUNED and "merged into it" in e.data["reason"]]
    assert merged, "the scripted policy repeats steps; copies must be pruned as duplicates"
    for event in merged:
        node = result.tree.nodes[event.data["node"]]
        twin = int(event.data["reason"].split("sibling ")[1].split(":")[0])
        kept = result.tree.nodes[twin]
        assert kept.text.strip() == node.text.strip() and kept.parent == node.parent
        assert not any(e.kind is EventKind.SELECTED and e.data["node"] == node.id for e in events)
    expansions = Counter(e.data["node"] for e in events if e.kind is EventKind.EXPANDED)
    widened = [node for node, times in expansions.items() if times > 1]
    assert widened, "some node should be expanded again when all its children score below widen_below"
    for node in widened:
        assert len(result.tree.nodes[node].children) <= 16  # max_children
    plain = run_search(PROBLEM, task="arith", strategy="mcts", models=scripted_models(),
                       config={"simulations": 16, "expand_width": 3, "distinct": False}, seed=0)
    assert all(times == 1 for times in Counter(
        e.data["node"] for e in plain.events if e.kind is EventKind.EXPANDED).values())


def test_mcts_widens_by_visits_a_node_it_keeps_returning_to() -> None:
    """widen_c: a node visited n times is expanded again while it has fewer than widen_c * n**alpha children."""
    config = {"simulations": 24, "expand_width": 2, "widen_c": 1.0, "widen_alpha": 0.5, "max_children": 8,
              "distinct": False}
    result = run_search(PROBLEM, task="arith", strategy="mcts", models=scripted_models(), config=config, seed=0)
    expansions = Counter(e.data["node"] for e in result.events if e.kind is EventKind.EXPANDED)
    root = result.tree.nodes[0]
    assert expansions[0] > 1 and len(root.children) > 2, "the root, visited every simulation, must get more children"
    for node_id, times in expansions.items():
        node = result.tree.nodes[node_id]
        assert len(node.children) <= 8  # max_children
        if times > 1:  # widened only while below its allowance: before the last widening it had < sqrt(visits)
            assert len(node.children) - 2 < node.visits**0.5
    plain = run_search(PROBLEM, task="arith", strategy="mcts", models=scripted_models(),
                       config={**config, "widen_c": 0.0}, seed=0)
    assert all(times == 1 for times in Counter(
        e.data["node"] for e in plain.events if e.kind is EventKind.EXPANDED).values())


@pytest.mark.parametrize("knobs", [{"widen_below": 0.6}, {"widen_c": 1.0}])
def test_mcts_stops_widening_a_node_whose_last_expansion_only_repeated_its_children(knobs: dict) -> None:
    """A widening that adds no new step (every proposal a duplicate) is the node's last: no piles of copies."""
    config = {"simulations": 40, "expand_width": 3, "max_children": 30, **knobs}
    events = run_search(PROBLEM, task="arith", strategy="mcts", models=scripted_models(), config=config, seed=0).events
    merged = {e.data["node"] for e in events if e.kind is EventKind.PRUNED and "merged into it" in e.data["reason"]}
    expansions: dict[int, list[list[int]]] = {}
    for event in events:
        if event.kind is EventKind.EXPANDED:
            expansions.setdefault(event.data["node"], []).append(event.data["children"])
    repeats = [groups for groups in expansions.values() if any(set(g) <= merged for g in groups)]
    assert repeats, "the scripted policy repeats itself: some widening must add only copies"
    for groups in repeats:
        assert set(groups[-1]) <= merged and not any(set(g) <= merged for g in groups[:-1])


@pytest.mark.parametrize("knobs", [{"widen_c": -1}, {"widen_alpha": 0}, {"widen_alpha": 1.5},
                                   {"widen_c": 1, "expand_width": 4, "max_children": 6},
                                   {"widen_below": 0.5, "expand_width": 3, "max_children": 5}])
def test_mcts_rejects_impossible_widening(knobs: dict) -> None:
    with pytest.raises(ConfigError):
        get_strategy("mcts").config_cls.from_dict(knobs)


class _CountingPolicy(ScriptedPolicy):
    """Records the prompts of every propose call (to check one batched call per wave)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def propose(self, prompts, k, **kwargs):  # type: ignore[override]
        self.calls.append(len(prompts))
        return super().propose(prompts, k, **kwargs)


def test_mcts_parallel_waves_pick_distinct_leaves_and_expand_them_in_one_call() -> None:
    policy = _CountingPolicy()
    config = {"simulations": 16, "expand_width": 2, "parallel": 4, "distinct": False}  # copies widen the tree
    result = run_search(
        PROBLEM, task="arith", strategy="mcts", models=Models(policy, ScriptedPRM()), config=config, seed=1
    )
    assert result.status == "finished", result.error
    selected = [e for e in result.events if e.kind is EventKind.SELECTED]
    waves: dict[int, list] = {}
    for event in selected:
        assert event.data["wave"] is not None
        waves.setdefault(event.data["wave"], []).append(event)
    assert max(len(leaves) for leaves in _wave_leaves(result.events).values()) > 1, "no wave spread out"
    for leaves in _wave_leaves(result.events).values():
        assert len(leaves) == len(set(leaves)), f"a wave picked the same leaf twice: {leaves}"
    assert any(e.data["virtual_loss"] > 0 for e in selected)
    assert max(policy.calls) > 1, "a wave's leaves must be expanded in one batched propose call"
    expansions = sum(1 for e in result.events if e.kind is EventKind.EXPANDED)
    assert len(policy.calls) < expansions


def _wave_leaves(events) -> dict[int, list[int]]:
    """Leaf of every descent per wave: a descent is a run of selections starting at the root."""
    leaves: dict[int, list[int]] = {}
    for event in events:
        if event.kind is EventKind.SELECTED:
            wave = leaves.setdefault(event.data["wave"], [])
            if event.data["parent"] == 0:
                wave.append(event.data["node"])
            else:
                wave[-1] = event.data["node"]
    return leaves


def test_mcts_parallel_one_is_the_classic_loop() -> None:
    classic = run_case("mcts_puct_prm", seed=2)
    for event in classic.events:
        if event.kind is EventKind.SELECTED:
            assert event.data["wave"] is None and event.data["virtual_loss"] == 0


def test_beam_search_keeps_n_over_m_beams_and_says_why_others_were_pruned() -> None:
    result = run_case("beam")
    tree = result.tree
    root_children = tree.children(0)
    assert len(root_children) == 8
    survivors = [c for c in root_children if not c.pruned]
    assert 1 <= len(survivors) <= 4
    assert all(c.children for c in survivors if not c.terminal)
    pruned = [n for n in tree if n.pruned]
    assert pruned and all(n.prune_reason for n in pruned)
    assert any("below the top 4" in n.prune_reason for n in pruned)


def test_search_beats_greedy_on_the_scripted_models() -> None:
    """The scripted policy slips; a PRM-guided search should recover more often than greedy."""
    rng_problems = [ARITH.generate(random.Random(i), 3).text for i in range(12)]
    wins = {name: 0 for name in ("greedy", "beam", "mcts_puct_prm")}
    for problem in rng_problems:
        for name in wins:
            strategy, config = CASES[name]
            result = run_search(problem, task="arith", strategy=strategy, models=scripted_models(), config=config)
            wins[name] += bool(result.correct)
    assert wins["beam"] > wins["greedy"] and wins["mcts_puct_prm"] > wins["greedy"], wins


def test_self_evaluation_records_question_p_yes_and_words() -> None:
    result = run_case("mcts_mix_max_selfeval")
    evaluated = [n for n in result.tree if n.self_eval]
    assert evaluated
    for node in evaluated:
        assert node.self_eval["question"].endswith("Is this step correct?")
        assert node.text in node.self_eval["question"]
        assert 0 <= node.scores["self_eval"] <= 1
        assert node.self_eval["words"]


def test_importing_search_loads_neither_streamlit_nor_sqlalchemy() -> None:
    code = (
        "import sys, search, search.strategies, search.fakes, search.tasks;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('streamlit', 'sqlalchemy')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_logs_recorded_before_parallel_mcts_still_load() -> None:
    """`selected` events without `wave`/`virtual_loss` (older exports) read as a classic descent."""
    result = run_case("mcts_puct_prm")
    wire = [e.to_json() for e in result.events]
    for item in wire:
        if item["kind"] == "selected":
            del item["data"]["wave"], item["data"]["virtual_loss"]
    events = events_from_json(wire)
    selected = [e for e in events if e.kind is EventKind.SELECTED]
    assert selected and all(e.data["wave"] is None and e.data["virtual_loss"] == 0 for e in selected)
    assert Tree.from_events(events) == result.tree


def test_logs_written_before_the_spend_rename_still_load() -> None:
    """Old logs call the spend event `budget`; they parse and fold to the same tree."""
    result = run_case("beam")
    old = json.loads(json.dumps([e.to_json() for e in result.events]).replace('"kind": "spend"', '"kind": "budget"'))
    assert sum(item["kind"] == "budget" for item in old) > 1
    events = events_from_json(old)
    assert [e.kind for e in events] == [e.kind for e in result.events]
    assert Tree.from_events(events).spend == result.spend and result.spend["nodes"] > 0
