"""A sweep in the app's background: `search.evaluate.run_sweep` (the CLI's engine) in a job thread,
every search recorded under the sweep's id, the finished points saved after each one, and Stop.

The script thread only checks the settings, creates the `sweeps` row and starts the job; models
load inside the job, so the page stays responsive.  Everything a page shows comes back from the
database (the sweep's `meta`, its runs), so a reload or another browser sees the same sweep; the
job adds live progress (`SweepProgress`) and Stop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reasoning_viz.jobs import Job, JobRegistry
from reasoning_viz.scaling import SweepSettings, new_meta
from search.evaluate import EvalRecording, run_sweep
from search.models import Models
from search.tasks.base import Problem


@dataclass
class SweepProgress:
    """Live state of a sweep job: searches finished of `total_runs`, and the point in flight.
    `store_key` names the run database the sweep `sweep_id` is saved in."""

    store_key: str
    sweep_id: int
    total_runs: int
    done_runs: int = 0
    current: str = "loading the models"


@dataclass(frozen=True)
class SweepStore:
    """A `search.request.RunStore` that files every run it records under one sweep."""

    store: Any
    sweep_id: int

    def recorder(self, *, name: str | None = None, tags: Sequence[str] = (),
                 models_info: Mapping[str, Any] | None = None) -> Any:
        return self.store.recorder(name=name, tags=tags, models_info=models_info, sweep_id=self.sweep_id)


def held_out(settings: SweepSettings) -> list[Problem]:
    """The sweep's problems: held-out ones of its task from generator stream `seed` (as `cli.py sweep`)."""
    from nano.data import heldout_problems

    return heldout_problems(settings.task, settings.problems, settings.seed)


def start_sweep(
    registry: JobRegistry,
    store: Any,
    settings: SweepSettings,
    load_models: Callable[[], tuple[Models, Mapping[str, Any]]],
    problems: Sequence[Problem] | None = None,
) -> Job:
    """Check `settings`, save a new sweep (status running) and start it in the background.

    `load_models()` returns the models and what run records say about them (called in the job
    thread).  Raises ConfigError for bad settings and StorageError when the sweep cannot be saved,
    both before anything starts.  The job's `progress` is a SweepProgress; the sweep's saved
    status ends as finished, stopped (Stop pressed) or failed (with the error).
    """
    plan = settings.plan()
    chosen = list(problems) if problems is not None else held_out(settings)
    meta = new_meta(settings, plan, chosen, {})
    sweep_id = store.create_sweep(settings.title(), meta)
    progress = SweepProgress(store.key, sweep_id, len(plan) * len(chosen))

    def work(_sinks: list, stop: threading.Event) -> None:
        try:
            models, info = load_models()
            meta["models"] = dict(info)
            store.update_sweep(sweep_id, meta)
            _run(store, sweep_id, settings, chosen, models, info, meta, progress, stop)
            meta["status"] = "stopped" if stop.is_set() else "finished"
        except Exception as exc:
            meta.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            progress.current = ""
            store.update_sweep(sweep_id, meta)

    return registry.start(f"sweep {sweep_id}", work, progress=progress)


def _run(store: Any, sweep_id: int, settings: SweepSettings, problems: Sequence[Problem], models: Models,
         info: Mapping[str, Any], meta: dict[str, Any], progress: SweepProgress, stop: threading.Event) -> None:
    plan = settings.plan()
    progress.current = f"{plan[0].spec} @ {plan[0].size}"

    def problem_done(_row: dict) -> None:
        progress.done_runs += 1
        point = plan[min(progress.done_runs // max(1, len(problems)), len(plan) - 1)]
        progress.current = f"{point.spec} @ {point.size}"

    def point_done(point: dict) -> None:
        meta["points"].append(point)
        store.update_sweep(sweep_id, meta)

    record = EvalRecording(lambda: SweepStore(store, sweep_id), name=f"sweep {sweep_id}", models_info=info)
    run_sweep(problems, settings.specs, settings.sizes, models, settings.seed, on_row=point_done,
              on_problem=problem_done, record=record, stop=stop)


def sweep_job(registry: JobRegistry, store_key: str, sweep_id: int) -> Job | None:
    """The job running (or that ran) sweep `sweep_id` of the database `store_key` in this server, if any."""
    jobs = [job for job in registry.all() if isinstance(job.progress, SweepProgress)
            and (job.progress.store_key, job.progress.sweep_id) == (store_key, sweep_id)]
    return jobs[-1] if jobs else None
