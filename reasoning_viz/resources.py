"""Shared, process-wide resources for the Streamlit app, each created once via st.cache_resource.

Models load once per (path, preset, device); the job registry and the database engine are
shared by every browser session of one server, so a reload re-attaches to running searches.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from models.bundle import PRMSpec, choice_device, choice_orm_spec, choice_spec, default_model, describe, load_models
from reasoning_viz.jobs import JobRegistry
from search.models import Models
from search.request import ModelChoice, ModelLoader

#: An outcome reward model choice: (name or path, spec or None, server URL or None).
OutcomeChoice = tuple[str | None, PRMSpec | None, str | None]


@st.cache_resource(show_spinner=False)
def job_registry() -> JobRegistry:
    return JobRegistry()


def run_store():
    """The run database named by $THOUGHTSCOPE_DB (default ./thoughtscope.db).

    StorageError propagates: pages show it with st.error.
    """
    return _open_store(os.environ.get("THOUGHTSCOPE_DB") or "thoughtscope.db")


def run_exists(store, run_id: int) -> bool:
    """Whether `store` holds run `run_id` (for links: a missing run is said, never replaced)."""
    from storage import StorageError

    try:
        store.get_run(run_id)
    except StorageError:
        return False
    return True


@st.cache_resource(show_spinner="Opening the run database…")
def _open_store(target: str):
    from storage import Store

    return Store.open(target)


def models_for(
    policy: str | None,
    prm: str | None,
    spec: PRMSpec,
    device: str | None,
    trust_remote_code: bool,
    chat_template: str = "auto",
    system_prompt: str | None = None,
    policy_url: str | None = None,
    prm_url: str | None = None,
    orm: OutcomeChoice = (None, None, None),
) -> Models:
    """Policy and PRM (None means the bundled nano model), loaded once per resolved configuration.

    `orm`: the optional outcome reward model as (name or path, its spec (None: the PRM's), its
    server URL (None: the PRM's)), as in `models.bundle.load_models`.
    """
    policy = policy or default_model("policy")
    prm = prm or default_model("prm")
    return _load_models(
        policy, prm, spec, device, trust_remote_code, chat_template, system_prompt, policy_url, prm_url, orm
    )


@st.cache_resource(show_spinner="Loading models…", max_entries=4)
def _load_models(
    policy: str,
    prm: str,
    spec: PRMSpec,
    device: str | None,
    trust_remote_code: bool,
    chat_template: str,
    system_prompt: str | None,
    policy_url: str | None,
    prm_url: str | None,
    orm: OutcomeChoice,
) -> Models:
    return load_models(
        policy,
        prm,
        spec=spec,
        device=device,
        trust_remote_code=trust_remote_code,
        chat_template=chat_template,
        system_prompt=system_prompt,
        policy_url=policy_url,
        prm_url=prm_url,
        orm=orm[0],
        orm_spec=orm[1],
        orm_url=orm[2],
    )


class CachedLoader:
    """The app's `search.request.ModelLoader`: models loaded once per configuration."""

    def check(self, choice: ModelChoice) -> None:
        choice_spec(choice)
        choice_orm_spec(choice)

    def load(self, choice: ModelChoice) -> Models:
        return models_for(
            choice.policy,
            choice.prm,
            choice_spec(choice),
            choice_device(choice),
            choice.trust_remote_code,
            choice.chat_template,
            choice.system_prompt,
            choice.policy_url,
            choice.prm_url,
            (choice.orm, choice_orm_spec(choice), choice.orm_url),
        )

    def describe(self, models: Models) -> dict[str, dict[str, Any]]:
        return describe(models)


#: The seam the Search page loads models through.  AppTests replace it (monkeypatch
#: `resources.MODEL_LOADER`) with `search.request.LoadedModels(scripted models)`, so the live
#: page runs on search/fakes.py models, fast and deterministic; the browser tests keep the nano pack.
MODEL_LOADER: ModelLoader = CachedLoader()


def model_loader() -> ModelLoader:
    """The loader in use (read at call time so a test's replacement takes effect)."""
    return MODEL_LOADER


@st.cache_resource(show_spinner=False)
def warm_default_models():
    """Start loading and warming the default models (nano pack or $THOUGHTSCOPE_POLICY/PRM)
    once per server, in the background; returns the `Warmup` the sidebar reports on."""
    from models.bundle import prm_spec
    from reasoning_viz.warmup import Warmup

    return Warmup.start(lambda: models_for(None, None, prm_spec("nano"), None, False))
