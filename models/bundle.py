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

from search.models import Models

NANO_DIR = Path(__file__).resolve().parent / "nano"


@dataclass(frozen=True)
class PRMSpec:
    """How to load and read a PRM (see models.hf.load_prm for each field)."""

    kind: str = "likelihood"
    step_tag: str = "ки"
    good_token: str = "+"
    bad_token: str = "-"
    step_separator: str = "\n"
    layout: str = "head"


#: preset name -> spec.  `qwen-prm` also needs trust_remote_code=True (its head is custom code).
#: `nano` is the shipped likelihood PRM; `nano-tag` reads `+`/`-` at `ки` (`train prm --objective tag`).
#: `nano-value` is the countdown value model (models/nano/value, `train value`): a 3-label token
#: classifier read at each step's newline; label 1 is P(legal and the target still reachable).
PRM_PRESETS: dict[str, PRMSpec] = {
    "nano": PRMSpec(),
    "nano-tag": PRMSpec(kind="tag", layout="nano"),
    "math-shepherd": PRMSpec(kind="tag", step_tag="ки", good_token="+", bad_token="-", layout="math-shepherd"),
    "qwen-prm": PRMSpec(kind="head", step_separator="<extra_0>", layout="qwen-prm"),
    "head": PRMSpec(kind="head", layout="head"),
    "nano-value": PRMSpec(kind="head", layout="head", step_separator="\n"),
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


def load_reward_model(name_or_path: str, spec: PRMSpec, *, device: str | None, trust_remote_code: bool):
    from models import hf

    layouts = {
        "nano": hf.TAG_LAYOUT,
        "head": hf.HEAD_LAYOUT,
        "math-shepherd": hf.MATH_SHEPHERD_LAYOUT,
        "qwen-prm": hf.QWEN_PRM_LAYOUT,
    }
    return hf.load_prm(
        name_or_path,
        kind=spec.kind,  # type: ignore[arg-type]
        step_tag=spec.step_tag,
        good_token=spec.good_token,
        bad_token=spec.bad_token,
        step_separator=spec.step_separator,
        layout=layouts[spec.layout],
        device=device,
        trust_remote_code=trust_remote_code,
    )


def load_models(
    policy: str | None = None,
    prm: str | None = None,
    *,
    spec: PRMSpec | None = None,
    orm: str | None = None,
    device: str | None = None,
    trust_remote_code: bool = False,
) -> Models:
    """Policy + PRM (+ optional outcome verifier); None means the bundled nano model."""
    from models.hf import load_policy

    spec = spec or PRMSpec()
    options = {"device": device, "trust_remote_code": trust_remote_code}
    return Models(
        policy=load_policy(policy or default_model("policy"), **options),
        prm=load_reward_model(prm or default_model("prm"), spec, **options),
        orm=load_reward_model(orm, spec, **options) if orm else None,
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
    return out
