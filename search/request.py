"""One way from a request to a search: `RunRequest` -> `prepare` (cheap checks) -> `launch`.

The CLI's `run`, the app's Search page, `eval` and `sweep` all describe a search as a
`RunRequest` and start it with `launch`, so each front door checks the same things in the
same order: task, problem, strategy, knobs and budget first (no model is touched, so a typo
is reported at once), then the model choice's cheap checks, then the run store, and only
then the slow model load.  Where the models come from (`ModelLoader`) and where the run is
saved (`RunStore`) are passed in: the engine imports neither transformers nor SQLAlchemy,
and tests hand in scripted models (the app's AppTests use that seam).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

from search.config import Budget, StrategyConfig
from search.events import Event, EventSink
from search.models import Models
from search.registry import StrategySpec, get_strategy
from search.runner import SearchResult, run_validated
from search.tasks import Task, get_task


@dataclass(frozen=True)
class ModelChoice:
    """Which models a run uses, as the user named them (None: the bundled nano model).

    `prm_preset` names how the PRM reads a path (see models.bundle.PRM_PRESETS);
    `prm_options` overrides single fields of it (kind, step_tag, step_separator, good_token,
    bad_token); `device` is cuda, mps, cpu or None/"auto" for the best available.
    `orm_preset` says how `orm` is read (None: the PRM's preset); `chat_template` (auto / on /
    off) and `system_prompt` say how the policy's prompts are written; `policy_url` / `prm_url`
    name OpenAI-compatible inference servers serving those models (None: in this process);
    `orm_url` the server serving `orm` (None: `prm_url`).
    """

    policy: str | None = None
    prm: str | None = None
    orm: str | None = None
    prm_preset: str = "nano"
    prm_options: Mapping[str, str | None] = field(default_factory=dict)
    device: str | None = None
    trust_remote_code: bool = False
    orm_preset: str | None = None
    chat_template: str = "auto"
    system_prompt: str | None = None
    policy_url: str | None = None
    prm_url: str | None = None
    orm_url: str | None = None


#: The key of a run record's `models` column that holds the `ModelChoice` the run was launched
#: with (`choice_record`), beside one entry per role (name, path, weights hash).
CHOICE_KEY = "choice"


def choice_record(choice: ModelChoice) -> dict[str, Any]:
    """`choice` as plain JSON for the run record, so an opened run can be re-run with exactly
    the models it used (None paths: the bundled default; options that are None are left out)."""
    record = asdict(choice)
    record["prm_options"] = {k: v for k, v in dict(choice.prm_options).items() if v is not None}
    return record


def recorded_choice(models: Mapping[str, Any]) -> ModelChoice | None:
    """The `ModelChoice` a run record's `models` column holds (`choice_record`), or None for a
    run recorded without one (before it was recorded, or by hand); unknown fields are ignored."""
    record = models.get(CHOICE_KEY)
    if not isinstance(record, Mapping):
        return None
    names = {f.name for f in fields(ModelChoice)}
    return ModelChoice(**{k: v for k, v in record.items() if k in names})


@dataclass(frozen=True)
class Recording:
    """Whether and how the run is saved: a name and tags for the run list."""

    enabled: bool = True
    name: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunRequest:
    """Everything one search needs, as a front door collected it.

    `knobs` holds typed values (app widgets, JSON) or their text forms (`"4"`, `"true"`, from
    the command line); the strategy's config parses and checks both.
    """

    problem: str
    task: str = "arith"
    strategy: str = "beam"
    knobs: Mapping[str, Any] = field(default_factory=dict)
    reference: str | None = None
    budget: Budget = field(default_factory=Budget)
    seed: int = 0
    models: ModelChoice = field(default_factory=ModelChoice)
    recording: Recording = field(default_factory=lambda: Recording(enabled=False))


@dataclass(frozen=True)
class PreparedRun:
    """A request whose cheap parts all checked out: the cleaned problem and a built config."""

    request: RunRequest
    task: Task
    problem: str
    spec: StrategySpec
    config: StrategyConfig
    #: The reference as `Task.parse_reference` read it (None when none was given).
    reference: str | None = None

    def run(
        self, models: Models, sinks: Sequence[EventSink] = (), stop: threading.Event | None = None
    ) -> SearchResult:
        """Run the search on `models` (no second validation: `prepare` did it)."""
        request = self.request
        return run_validated(
            self.problem,
            task=self.task,
            spec=self.spec,
            config=self.config,
            models=models,
            budget=request.budget,
            seed=request.seed,
            reference=self.reference,
            sinks=sinks,
            stop=stop,
        )


def prepare(request: RunRequest) -> PreparedRun:
    """The cheap checks, before any model loads.

    Raises ProblemError (unknown task, empty/oversized/ill-formed problem, a reference the
    task cannot read) or ConfigError (unknown strategy, a knob that does not parse or is
    impossible).
    """
    task = get_task(request.task)
    problem = task.validate(request.problem)
    reference = task.parse_reference(request.reference, problem)
    spec = get_strategy(request.strategy)
    config = spec.make_config(dict(request.knobs))
    return PreparedRun(request, task, problem, spec, config, reference)


class ModelLoader(Protocol):
    """Where a front door gets its models (transformers, a cache, or scripted fakes in tests)."""

    def check(self, choice: ModelChoice) -> None:
        """Cheap checks of the choice (preset names, options); raise ValueError if it cannot load."""

    def load(self, choice: ModelChoice) -> Models:
        """The loaded models; raises ValueError / OSError with a clear message when one is missing."""

    def describe(self, models: Models) -> dict[str, dict[str, Any]]:
        """What the run record says about each model (name, path, weights hash)."""


class RunRecorder(Protocol):
    """An event sink that saves one run (storage.Recorder satisfies it)."""

    run_id: int | None

    def __call__(self, event: Event) -> None: ...

    def close(self) -> None: ...


class RunStore(Protocol):
    """What `launch` needs of a run database (storage.Store satisfies it)."""

    def recorder(
        self, *, name: str | None = None, tags: Sequence[str] = (), models_info: Mapping[str, Any] | None = None
    ) -> RunRecorder: ...


@dataclass
class LaunchedRun:
    """A prepared run with its models loaded and (when recording) its recorder open."""

    prepared: PreparedRun
    models: Models
    recorder: RunRecorder | None = None

    def run(self, sinks: Sequence[EventSink] = (), stop: threading.Event | None = None) -> SearchResult:
        """Run to the end, the recorder following the events; the recorder is closed afterwards."""
        recording = [self.recorder] if self.recorder is not None else []
        try:
            return self.prepared.run(self.models, [*recording, *sinks], stop)
        finally:
            if self.recorder is not None:
                self.recorder.close()


def launch(
    request: RunRequest, *, loader: ModelLoader, open_store: Callable[[], RunStore | None] | None = None
) -> LaunchedRun:
    """Prepare, check the model choice, open the store, load the models, open the recorder.

    Cheapest first: a bad problem or knob fails before the store is touched, and a corrupt
    database or unknown PRM preset fails before the (possibly minutes-long) model load.
    `open_store` is called only when `request.recording.enabled`; it may return None (the app
    then runs unsaved).  Errors: ProblemError, ConfigError, ValueError/OSError from the
    loader, whatever `open_store` raises (StorageError).
    """
    prepared = prepare(request)
    loader.check(request.models)
    store = open_store() if open_store is not None and request.recording.enabled else None
    models = loader.load(request.models)
    recorder = None
    if store is not None:
        recording = request.recording
        info = {**loader.describe(models), CHOICE_KEY: choice_record(request.models)}
        recorder = store.recorder(name=recording.name, tags=recording.tags, models_info=info)
    return LaunchedRun(prepared, models, recorder)


@dataclass(frozen=True)
class LoadedModels:
    """A ModelLoader over models already in memory (eval, sweep and tests reuse one set)."""

    models: Models
    info: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    def check(self, choice: ModelChoice) -> None:
        return None

    def load(self, choice: ModelChoice) -> Models:
        return self.models

    def describe(self, models: Models) -> dict[str, dict[str, Any]]:
        return {role: dict(info) for role, info in self.info.items()} or {
            role: {"name": name} for role, name in models.names().items() if name is not None
        }
