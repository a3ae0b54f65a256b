"""Load the models one search needs (policy, PRM, optional outcome verifier) by name or path.

Why presets: a PRM is only useful when its input text matches how it was trained.  The nano
pack, Math-Shepherd and Qwen2.5-Math-PRM each read scores at a different marker in a
different layout; a preset names that whole recipe, and single options can still override it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from models.prm_layouts import HEAD_LAYOUT, MATH_SHEPHERD_LAYOUT, QWEN_PRM_LAYOUT, TAG_LAYOUT, PRMLayout
from models.specs import PolicySpec, RewardModelSpec
from search.models import Models, RewardModel

NANO_DIR = Path(__file__).resolve().parent / "nano"


@dataclass(frozen=True)
class PRMSpec:
    """How to read a PRM: a preset's recipe (fields as in models.specs.RewardModelSpec; layout: a LAYOUTS key)."""

    kind: str = "likelihood"
    step_tag: str = "ки"
    good_token: str = "+"
    bad_token: str = "-"
    step_separator: str = "\n"
    layout: str = "head"


#: preset name -> spec.  `qwen-prm` also needs trust_remote_code=True (its head is custom code).
#: `nano` is the shipped likelihood PRM; `nano-tag` reads `+`/`-` at `ки` (`train prm --objective tag`).
PRM_PRESETS: dict[str, PRMSpec] = {
    "nano": PRMSpec(),
    "nano-tag": PRMSpec(kind="tag", layout="nano"),
    "math-shepherd": PRMSpec(kind="tag", step_tag="ки", good_token="+", bad_token="-", layout="math-shepherd"),
    "qwen-prm": PRMSpec(kind="head", step_separator="<extra_0>", layout="qwen-prm"),
    "head": PRMSpec(kind="head", layout="head"),
}


#: layout name (PRMSpec.layout) -> the text layout it stands for (models/prm_layouts.py).
LAYOUTS: dict[str, PRMLayout] = {
    "nano": TAG_LAYOUT,
    "head": HEAD_LAYOUT,
    "math-shepherd": MATH_SHEPHERD_LAYOUT,
    "qwen-prm": QWEN_PRM_LAYOUT,
}


def prm_spec(preset: str = "nano", **overrides: Any) -> PRMSpec:
    """A preset with any non-None single options applied on top."""
    if preset not in PRM_PRESETS:
        raise ValueError(f"unknown PRM preset {preset!r}; choose one of {', '.join(PRM_PRESETS)}.")
    changes = {key: value for key, value in overrides.items() if value is not None}
    return replace(PRM_PRESETS[preset], **changes)


def default_model(role: str) -> str:
    """$THOUGHTSCOPE_POLICY / $THOUGHTSCOPE_PRM, else the bundled nano model for `role`."""
    override = os.environ.get(f"THOUGHTSCOPE_{role.upper()}")
    if override:
        return override
    path = NANO_DIR / role
    if not (path / "config.json").exists():
        raise FileNotFoundError(
            f"No {role} model given and the bundled nano {role} is not at {path}. "
            f"Pass a local directory or Hugging Face hub id for the {role}."
        )
    return str(path)


def reward_model_spec(
    name_or_path: str, spec: PRMSpec, *, device: str | None = None, trust_remote_code: bool = False,
    url: str | None = None,
) -> RewardModelSpec:
    """The factory's `RewardModelSpec` for a PRM (or ORM) read with preset `spec` (`url`: an inference server)."""
    return RewardModelSpec(
        name_or_path,
        kind=spec.kind,  # type: ignore[arg-type]
        step_tag=spec.step_tag,
        good_token=spec.good_token,
        bad_token=spec.bad_token,
        step_separator=spec.step_separator,
        layout=LAYOUTS[spec.layout],
        device=device,
        trust_remote_code=trust_remote_code,
        url=url,
    )


def load_reward_model(
    name_or_path: str, spec: PRMSpec, *, device: str | None, trust_remote_code: bool, url: str | None = None
) -> RewardModel:
    """A reward model read with preset `spec` (see `reward_model_spec`); raises ModelLoadError."""
    from models.factory import load_prm

    return load_prm(reward_model_spec(name_or_path, spec, device=device, trust_remote_code=trust_remote_code, url=url))


def load_models(
    policy: str | None = None,
    prm: str | None = None,
    *,
    spec: PRMSpec | None = None,
    orm: str | None = None,
    device: str | None = None,
    trust_remote_code: bool = False,
    policy_url: str | None = None,
    prm_url: str | None = None,
) -> Models:
    """Policy + PRM (+ optional outcome verifier); None means the bundled nano model.

    `policy_url` / `prm_url`: base URLs of OpenAI-compatible inference servers serving the named
    models (the PRM's URL also serves the ORM); None runs that model in this process.
    """
    from models.factory import load_policy

    spec = spec or PRMSpec()
    options = {"device": device, "trust_remote_code": trust_remote_code}
    return Models(
        policy=load_policy(PolicySpec(policy or default_model("policy"), url=policy_url, **options)),
        prm=load_reward_model(prm or default_model("prm"), spec, url=prm_url, **options),
        orm=load_reward_model(orm, spec, url=prm_url, **options) if orm else None,
    )


def describe(models: Models) -> dict[str, dict[str, Any]]:
    """Name, path and weights hash per role, for the run record."""
    out: dict[str, dict[str, Any]] = {}
    for role in ("policy", "prm", "orm"):
        model = getattr(models, role)
        if model is None:
            continue
        local = getattr(model, "local_path", None)
        weights = model.weights_hash() if hasattr(model, "weights_hash") else None
        out[role] = {"name": model.name, "path": str(local) if local else None, "weights_hash": weights}
        url = getattr(getattr(model, "client", None), "url", None)
        if url:
            out[role]["url"] = url
    return out
