"""Load and warm the default models in the background when the app starts (no Streamlit here).

Why: the first search after a start waited ~17 s for its first node (weights loading, then the
first forward passes allocating and tuning kernels) while later ones took 1-5 s.  A `Warmup`
runs the same loader the Search page uses in a daemon thread at start and makes one tiny call
to each model, so the first search starts warm; the sidebar shows its progress.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from search.models import Models
from search.tasks import get_task


def warm_models(models: Models) -> None:
    """One short step from the policy on the arith example and its PRM score, then empty caches."""
    task = get_task("arith")
    problem = task.example()
    [[step]] = models.policy.propose(
        [task.prompt(problem, [])], 1, temperature=0.0, max_new_tokens=4, stop=task.step_delimiter, seed=0
    )
    models.prm.score(problem, [[step.text]])
    for model in (models.policy, models.prm):
        clear = getattr(model, "clear_cache", None)
        if callable(clear):
            clear()


@dataclass
class Warmup:
    """Background load-and-warm of one model set; `state` is loading, ready or failed."""

    state: str = "loading"
    stage: str = "loading the weights"
    error: str | None = None
    seconds: float = 0.0
    thread: threading.Thread | None = field(default=None, repr=False)

    @classmethod
    def start(cls, load: Callable[[], Models]) -> Warmup:
        """Start `load()` then `warm_models` in a daemon thread; returns at once."""
        warmup = cls()
        warmup.thread = threading.Thread(target=warmup._run, args=(load,), name="warm-models", daemon=True)
        warmup.thread.start()
        return warmup

    def _run(self, load: Callable[[], Models]) -> None:
        began = time.monotonic()
        try:
            models = load()
            self.stage = "a first forward pass"
            warm_models(models)
            self.state = "ready"
        except Exception as exc:  # noqa: BLE001 - shown in the sidebar; a search reports it again
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
        self.seconds = time.monotonic() - began

    def line(self) -> str:
        """One sidebar line describing where the warm-up stands."""
        if self.state == "ready":
            return f"Default models ready (loaded and warmed in {self.seconds:.1f} s)."
        if self.state == "failed":
            return f"The default models could not be loaded: {self.error}"
        return f"Loading the default models in the background: {self.stage}…"
