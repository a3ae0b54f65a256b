"""Storage benchmark: recorder ingest rate and replay seek time at 1k, 10k and 100k events.

Usage: ``PYTHONPATH=. python bench/bench_storage.py [--sizes 1000 10000 100000] [--seeks 200]``

Event logs come from the scripted MCTS (deterministic fakes) with a large simulation count,
cut to exactly N events and closed with a synthetic `finished` event, so every log is valid
(`Tree.from_events` folds it).  A "wide" row adds a node-heavy log (beam search, ~4k nodes),
whose seeks must rebuild thousands of nodes.

* ingest: the events are fed to `store.recorder()` as fast as Python can call it (a search
  never emits faster), into a fresh SQLite file; the clock stops when `close()` returns,
  i.e. when everything is committed.  Small logs are recorded several times (median shown;
  the first run, which also pays one-off setup, is shown too).  "sink us/ev" is the time the
  search thread spends in the recorder per event (the first event creates the run row).
* seek: `Replay.load` from the database once ("load s": read, decode and index the log),
  then `tree_at(k)` for random k.  The max column includes
  whatever else the machine and Python's cyclic GC were doing; p95 is the steadier tail.

Targets: ingest >= 20,000 events/s; median and max seek <= 200 ms at 10k; seek time must not
grow faster than linearly with the log (the 100k/10k ratio stays well under 10).
"""

from __future__ import annotations

import argparse
import functools
import gc
import random
import statistics
import tempfile
import time
from pathlib import Path

from search import run_search
from search.events import Event, EventKind, make_event
from search.tree import Tree
from storage import Replay, Store
from tests.engine_cases import PROBLEM, scripted_models

EVENTS_PER_SIMULATION = 7


def mcts_log(n: int) -> list[Event]:
    """Exactly n valid events: an MCTS log cut at n - 1, closed with `finished`."""
    simulations = n // EVENTS_PER_SIMULATION + 20
    while True:
        events = run_search(
            PROBLEM,
            task="arith",
            strategy="mcts",
            models=scripted_models(),
            config={"simulations": simulations},
            seed=1,
        ).events
        if len(events) >= n:
            break
        simulations *= 2
    cut = events[: n - 1]
    return [*cut, make_event(n - 1, cut[-1].t, EventKind.FINISHED, {"reason": "benchmark cut"})]


def wide_log() -> list[Event]:
    """A node-heavy log: beam search with n=1024 (about 12k events and 4k nodes)."""
    config = {"n": 1024, "beam_width": 4}
    return run_search(
        PROBLEM, task="arith", strategy="beam", models=scripted_models(), config=config, seed=1
    ).events


def ingest(events: list[Event], path: Path, repeats: int) -> tuple[float, float, float, int]:
    """(first-run events/s, median events/s, median sink microseconds per event, a run id).

    Each size gets a fresh SQLite file; the first run there also pays one-off costs (thread
    start, SQLAlchemy compiling its statements), later runs show the steady state.
    """
    rates, sink_us = [], []
    with Store.open(path) as store:
        for _ in range(repeats):
            recorder = store.recorder(name="bench")
            start = time.perf_counter()
            for event in events:
                recorder(event)
            fed = time.perf_counter()
            recorder.close()
            done = time.perf_counter()
            assert store.get_run(recorder.run_id).event_count == len(events)
            rates.append(len(events) / (done - start))
            sink_us.append((fed - start) / len(events) * 1e6)
    return rates[0], statistics.median(rates), statistics.median(sink_us), recorder.run_id


def seeks(
    events: list[Event], path: Path, run_id: int, count: int, rng: random.Random
) -> tuple[float, list[float]]:
    """(seconds for `Replay.load` from the database, seek seconds for `count` random k)."""
    with Store.open(path) as store:
        start = time.perf_counter()
        replay = Replay.load(store, run_id)
        loaded = time.perf_counter() - start
    times = []
    for _ in range(count):
        k = rng.randint(0, len(events))
        start = time.perf_counter()
        replay.tree_at(k)
        times.append(time.perf_counter() - start)
    if len(events) <= 20_000:  # spot-check correctness where a full fold is cheap
        for k in rng.sample(range(len(events) + 1), 3):
            assert replay.tree_at(k) == Tree.from_events(events[:k])
    return loaded, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--seeks", type=int, default=200)
    parser.add_argument("--no-wide", action="store_true", help="skip the node-heavy beam log")
    args = parser.parse_args()
    rng = random.Random(0)
    makers = {f"{n:,} mcts": functools.partial(mcts_log, n) for n in args.sizes}
    if not args.no_wide:
        makers["wide beam"] = wide_log
    header = (
        f"{'log':>12} {'events':>8} {'nodes':>6} {'ingest ev/s':>11} {'(1st run)':>10} {'sink us/ev':>10} "
        f"{'load s':>7} {'seek med ms':>11} {'p95 ms':>7} {'max ms':>7}"
    )
    print(header)
    print("-" * len(header))
    medians: dict[int, float] = {}
    p95s: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, make in makers.items():
            events = make()  # one log in memory at a time, so the cyclic GC only walks this one
            repeats = max(1, min(5, 30_000 // len(events)))
            path = Path(tmp) / f"{label.replace(' ', '_').replace(',', '')}.db"
            first, rate, sink_us, run_id = ingest(events, path, repeats)
            gc.collect()
            loaded, times = seeks(events, path, run_id, args.seeks, rng)
            med, top = statistics.median(times) * 1e3, max(times) * 1e3
            p95 = statistics.quantiles(times, n=20)[-1] * 1e3
            if label.endswith("mcts"):
                medians[len(events)], p95s[len(events)] = med, p95
            nodes = len(Tree.from_events(events))
            print(
                f"{label:>12} {len(events):>8,} {nodes:>6,} {rate:>11,.0f} {first:>10,.0f} {sink_us:>10.2f} "
                f"{loaded:>7.2f} {med:>11.2f} {p95:>7.2f} {top:>7.2f}",
                flush=True,
            )
            del events
    if 10_000 in medians and 100_000 in medians:
        print(
            f"\nseek growth 100k/10k (10x the events): median x{medians[100_000] / medians[10_000]:.2f}, "
            f"p95 x{p95s[100_000] / p95s[10_000]:.2f}  (linear would be x10)"
        )


if __name__ == "__main__":
    main()
