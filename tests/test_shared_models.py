"""Searches that share one model set at once (the app: every browser session uses the same models).

Two searches interleaved event by event on the same backend objects must each give exactly the
log they give alone (prefix KV caches and server usage are per search), and Stop on one search
must stop that search only (the stop event is per search, not bound onto the shared backend).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from models.factory import load_policy as load_server_policy
from models.factory import load_prm as load_server_prm
from models.hf import load_policy, load_prm
from models.specs import PolicySpec, RewardModelSpec
from search import Models, run_search
from search.events import FINAL_KINDS, Event, comparable
from search.scope import PerSearch, search_scope
from search.tasks.arith import ArithTask
from tests.test_server_backend import POLICY, FakeVLLM
from tests.tiny_checkpoints import one_torch_thread

PROBLEM = "Start with 17. Add 25. Subtract 4."
BEAM = {"n": 4, "beam_width": 2, "max_depth": 3, "temperature": 1.0, "max_step_tokens": 10}


class _NoEarlyAnswers(ArithTask):
    """Arith where no step ends the solution: chains grow deep enough for children to hit the cache."""

    def is_final(self, step: str) -> bool:
        return False


class TakeTurns:
    """Event sinks that make several searches run strictly in turn, one event each, until each ends."""

    def __init__(self, players: int):
        self.players = players
        self.turn = 0
        self.done: set[int] = set()
        self.cond = threading.Condition()

    def sink(self, me: int) -> Callable[[Event], None]:
        def on_event(event: Event) -> None:
            with self.cond:
                assert self.cond.wait_for(lambda: self.turn == me, timeout=60), "the other search hung"
                if event.kind in FINAL_KINDS:
                    self.done.add(me)
                self._pass_turn(me)
                self.cond.notify_all()

        return on_event

    def _pass_turn(self, me: int) -> None:
        for step in range(1, self.players + 1):
            other = (me + step) % self.players
            if other not in self.done:
                self.turn = other
                return


def run_together(searches: list[Callable[[list[Callable[[Event], None]]], Any]]) -> list[Any]:
    """Run each `search(sinks)` in its own thread, taking turns event by event; their results in order."""
    turns = TakeTurns(len(searches))
    results: list[Any] = [None] * len(searches)
    errors: list[BaseException] = []

    def play(i: int) -> None:
        try:
            results[i] = searches[i]([turns.sink(i)])
        except BaseException as err:  # noqa: BLE001 - reported in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=play, args=(i,)) for i in range(len(searches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    return results


@pytest.fixture(scope="module")
def shared(checkpoints: dict[str, Path]) -> Iterator[Models]:
    """One tiny transformers policy and PRM, both with prefix KV reuse, shared by every search here."""
    with one_torch_thread():
        yield Models(
            policy=load_policy(str(checkpoints["gpt2"]), device="cpu", kv_reuse=True),
            prm=load_prm(str(checkpoints["gpt2"]), kind="tag", device="cpu"),
        )


def _beam(models: Models, seed: int) -> Callable[[list[Callable[[Event], None]]], Any]:
    return lambda sinks: run_search(PROBLEM, task=_NoEarlyAnswers(), strategy="beam", models=models, config=BEAM,
                                    seed=seed, sinks=sinks)


def test_two_interleaved_searches_on_shared_models_give_their_logs_alone(shared: Models) -> None:
    alone = [_beam(shared, seed)([]) for seed in (3, 4)]
    assert all(r.status == "finished" for r in alone), [r.error for r in alone]
    assert shared.policy.kv_cache.stats.hits > 0, "the searches must use the prefix cache for this test to mean much"
    together = run_together([_beam(shared, 3), _beam(shared, 4)])
    for got, want in zip(together, alone, strict=True):
        assert got.status == "finished", got.error
        assert comparable(got.events) == comparable(want.events)


def test_each_search_has_its_own_cache_and_the_last_one_stays_readable(shared: Models) -> None:
    """A running search never sees another's prefixes; after it ends its cache is the one direct calls see."""
    seen: list[int] = []

    def cache_size(event: Event) -> None:
        seen.append(id(shared.policy.kv_cache))

    first = run_search(PROBLEM, task=_NoEarlyAnswers(), strategy="beam", models=shared, config=BEAM, seed=5,
                       sinks=[cache_size])
    assert first.status == "finished"
    inside = set(seen)
    assert len(inside) == 1 and id(shared.policy.kv_cache) in inside  # the finished search's cache, kept
    seen.clear()
    run_search(PROBLEM, task=_NoEarlyAnswers(), strategy="beam", models=shared, config=BEAM, seed=5,
               sinks=[cache_size])
    assert set(seen).isdisjoint(inside), "a new search starts with a cache of its own"


def test_per_search_values_are_fresh_per_search_and_kept_after() -> None:
    holder: PerSearch[list[int]] = PerSearch(list)
    holder.get().append(0)  # outside any search: the idle value
    with search_scope(threading.Event()):
        assert holder.get() == [] and holder.running() == 1
        holder.get().append(1)
        with search_scope(threading.Event()):  # a search inside a search (an eval harness) is its own
            assert holder.get() == []
    assert holder.get() == [1] and holder.running() == 0


# -- inference-server backends: one client, several searches, each with its own Stop -------------------------


@pytest.fixture
def fake() -> Iterator[FakeVLLM]:
    from models.loading import load_tokenizer

    server = FakeVLLM(load_tokenizer(POLICY, Path(POLICY), POLICY, False))
    yield server
    server.close()


def _served(fake: FakeVLLM) -> Models:
    return Models(policy=load_server_policy(PolicySpec(POLICY, url=fake.url)),
                  prm=load_server_prm(RewardModelSpec(POLICY, kind="likelihood", url=fake.url)))


def _greedy(models: Models, stop: threading.Event, started: threading.Event | None = None) -> Any:
    sinks = [lambda event: started.set()] if started else []
    return run_search("Start with 3. Add 4. What is the result?", task="arith", strategy="greedy", models=models,
                      config={"max_depth": 1}, stop=stop, sinks=sinks)


@pytest.mark.parametrize("stopped", ["first", "second"])
def test_stop_on_one_search_stops_it_alone(fake: FakeVLLM, stopped: str) -> None:
    """Two searches on one served model set, both waiting on slow requests; Stop one of them."""
    models = _served(fake)
    alone = _greedy(models, threading.Event())
    assert alone.status == "finished", alone.error
    fake.delay = 2.0  # seconds per request: a stop that waits for the answer shows
    stops = {"first": threading.Event(), "second": threading.Event()}
    results: dict[str, Any] = {}
    ended: dict[str, float] = {}
    first_started = threading.Event()

    def play(name: str, started: threading.Event | None) -> None:
        results[name] = _greedy(models, stops[name], started)
        ended[name] = time.monotonic()

    first = threading.Thread(target=play, args=("first", first_started))
    second = threading.Thread(target=play, args=("second", None))
    first.start()
    assert first_started.wait(10)
    second.start()
    time.sleep(0.4)  # both are inside their first slow request
    pressed = time.monotonic()
    stops[stopped].set()
    first.join(60)
    second.join(60)
    other = "second" if stopped == "first" else "first"
    assert results[stopped].status == "cancelled", results[stopped].error
    assert ended[stopped] - pressed < 0.8, "the stopped search waited for its slow request"
    assert results[other].status == "finished", results[other].error
    assert comparable(results[other].events) == comparable(alone.events), "server usage is counted per search"
