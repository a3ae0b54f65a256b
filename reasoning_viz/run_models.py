"""A saved run's models as the Search sidebar's widget values, so that opening a run (a link,
a reload, Replay's "open on the Search page") shows the models it ran with and "re-run with
these settings" re-runs exactly that run.

Pure: returns session-state values by widget key (reasoning_viz/preset_form.py names them).
A run record's `models` column holds the `ModelChoice` the run was launched with
(search.request.CHOICE_KEY); older records hold only each model's name, path and server URL,
from which the bundled set, the paths or the server are recovered (the PRM recipe, which they
do not record, is then left as the sidebar has it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reasoning_viz.advanced_model_form import advanced_state
from reasoning_viz.orm_form import ORM_PATH, ORM_RECIPE, ORM_URL, SAME_AS_PRM
from reasoning_viz.preset_form import (
    BUNDLED,
    BUNDLED_MODELS,
    BUNDLED_SET,
    CHAT_TEMPLATE,
    DEVICE,
    LOCAL,
    MODEL_SOURCE,
    POLICY_PATH,
    PRM_PATH,
    PRM_RECIPE,
    SERVER,
    SERVER_POLICY,
    SERVER_POLICY_URL,
    SERVER_PRM,
    SERVER_PRM_RECIPE,
    SERVER_PRM_URL,
    TRUST_CODE,
)
from search.presets import REPO
from search.request import ModelChoice, recorded_choice

#: Where the bundled arith set's models live (its BundledModels paths are None: the default).
_DEFAULT_PATHS = {"policy": REPO / "models" / "nano" / "policy", "prm": REPO / "models" / "nano" / "prm"}


def run_model_state(models: Mapping[str, Any]) -> dict[str, Any]:
    """Widget key -> value showing a run's models in the sidebar's Models section.

    models: the run record's `models` column (storage RunSummary.models), or the SEARCH_STARTED
    event's names per role for a run that was not saved.  {} when nothing is known.
    """
    choice = recorded_choice(models)
    return choice_state(choice) if choice is not None else _guessed_state(models)


def choice_state(choice: ModelChoice) -> dict[str, Any]:
    """The Models section's values that make the app load exactly `choice`.

    The bundled source when `choice` is one of BUNDLED_MODELS as the sidebar loads it; the
    inference-server source when the policy has a URL; else the Hugging Face source with its
    paths (an empty path there is the bundled default, as `None` is in `choice`).
    """
    label = bundled_set(choice)
    if label is not None:
        return {MODEL_SOURCE: BUNDLED, BUNDLED_SET: label}
    orm = {ORM_PATH: choice.orm or "", ORM_RECIPE: choice.orm_preset or SAME_AS_PRM,
           **advanced_state(choice.system_prompt, choice.prm_options)}
    if choice.policy_url:
        return {MODEL_SOURCE: SERVER, SERVER_POLICY_URL: choice.policy_url, SERVER_POLICY: choice.policy or "",
                SERVER_PRM_URL: choice.prm_url or "", SERVER_PRM: choice.prm or "",
                SERVER_PRM_RECIPE: choice.prm_preset, **orm, ORM_URL: choice.orm_url or ""}
    return {MODEL_SOURCE: LOCAL, POLICY_PATH: choice.policy or "", PRM_PATH: choice.prm or "",
            PRM_RECIPE: choice.prm_preset, DEVICE: choice.device or "auto", CHAT_TEMPLATE: choice.chat_template,
            TRUST_CODE: bool(choice.trust_remote_code), **orm}


def bundled_set(choice: ModelChoice) -> str | None:
    """The BUNDLED_MODELS label `choice` loads (paths compared as files), or None."""
    extras = (choice.orm, choice.orm_preset, choice.policy_url, choice.prm_url, choice.orm_url,
              choice.system_prompt, dict(choice.prm_options), choice.trust_remote_code)
    if any(extras) or choice.device not in (None, "auto") or choice.chat_template != "auto":
        return None  # the bundled source sets none of these
    for label, models in BUNDLED_MODELS.items():
        wanted = models.choice()
        if (wanted["preset"] == choice.prm_preset and _same(choice.policy, wanted["policy"], "policy")
                and _same(choice.prm, wanted["prm"], "prm")):
            return label
    return None


def _same(given: str | None, bundled: str | None, role: str) -> bool:
    """Whether the model given for `role` is the bundled one (None: the default nano model)."""
    if given is None or bundled is None:
        return given == bundled
    return _as_path(given) == _as_path(bundled)


def _as_path(name: str) -> Path:
    path = Path(name).expanduser()
    return (path if path.is_absolute() else REPO / path).resolve()


def _guessed_state(models: Mapping[str, Any]) -> dict[str, Any]:
    """The Models section for a record without a choice: names (paths), server URLs."""
    names, urls = {}, {}
    for role in ("policy", "prm", "orm"):
        info = models.get(role)
        info = info if isinstance(info, Mapping) else {"name": info}
        names[role], urls[role] = info.get("name"), info.get("url")
    if not names["policy"] or not names["prm"]:
        return {}
    if urls["policy"]:
        return {MODEL_SOURCE: SERVER, SERVER_POLICY_URL: urls["policy"], SERVER_POLICY: names["policy"],
                SERVER_PRM_URL: urls["prm"] or "", SERVER_PRM: names["prm"], ORM_PATH: names["orm"] or "",
                ORM_URL: urls["orm"] or ""}
    if not names["orm"]:
        for label, bundled in BUNDLED_MODELS.items():
            paths = {role: _as_path(getattr(bundled, role) or str(_DEFAULT_PATHS[role])) for role in _DEFAULT_PATHS}
            if all(_as_path(names[role]) == paths[role] for role in paths):
                return {MODEL_SOURCE: BUNDLED, BUNDLED_SET: label}
    return {MODEL_SOURCE: LOCAL, POLICY_PATH: names["policy"], PRM_PATH: names["prm"], ORM_PATH: names["orm"] or ""}
