"""Background jobs: the caller never waits, the tree folds incrementally, Stop cancels."""

from __future__ import annotations

import threading
import time

from reasoning_viz.jobs import JobRegistry
from search import Tree, run_search
from search.fakes import ScriptedPolicy
from search.models import Models
from tests.engine_cases import PROBLEM, scripted_models


class SlowPolicy(ScriptedPolicy):
    def propose(self, *args, **kwargs):
        time.sleep(0.02)
        return super().propose(*args, **kwargs)


def search_with(models, config):
    def search(sinks, stop: threading.Event):
        return run_search(PROBLEM, task="arith", strategy="mcts", models=models, config=config, sinks=sinks, stop=stop)

    return search


def test_job_runs_in_the_background_and_its_tree_matches_the_result() -> None:
    registry = JobRegistry()
    job = registry.start("mcts", search_with(scripted_models(), {"simulations": 10}))
    job.thread.join(timeout=30)
    assert job.result is not None and job.result.status == "finished"
    assert job.tree() == job.result.tree == Tree.from_events(job.snapshot())
    assert registry.get(job.id) is job


def test_stop_cancels_a_running_job_within_a_second() -> None:
    registry = JobRegistry()
    slow = Models(SlowPolicy(), scripted_models().prm)
    job = registry.start("slow", search_with(slow, {"simulations": 10_000}))
    sizes = []
    for _ in range(3):
        time.sleep(0.15)
        sizes.append(len(job.tree()))
    assert job.running and sizes[-1] > sizes[0], "the tree grows between polls"
    asked = time.monotonic()
    job.cancel()
    job.thread.join(timeout=5)
    assert time.monotonic() - asked < 1.0
    assert job.result.status == "cancelled"


def test_a_crashing_search_is_reported_on_the_job() -> None:
    def search(sinks, stop):
        raise RuntimeError("model file vanished")

    job = JobRegistry().start("broken", search)
    job.thread.join(timeout=5)
    assert job.error == "RuntimeError: model file vanished"
