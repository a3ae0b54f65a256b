"""No silent misreads: check at load time that a reward-model preset fits the checkpoint.

A preset is a whole reading recipe (models/bundle.py `PRM_PRESETS`).  Loaded with the wrong one,
a PRM still returns plausible numbers read at the wrong place, so before any search we check,
from the config, the tokenizer and the safetensors headers (no weights loaded):

* the architecture is one the preset expects (`architectures`; a kind's generic family otherwise);
* its label tokens (and declared marks such as ``ки`` or ``<extra_0>``) are single tokens;
* the head it reads exists with the right shape (a value head ``v_head.summary`` of ``[1, hidden]``,
  a reward head ``score``, a classifier with the labels it reads);
* a chat-format preset has a chat template;
* a checkpoint whose name is a known model is read with that model's preset.

A misfit raises `ModelLoadError` naming the preset that fits, or the fields to set.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .loading import ModelLoadError

#: Lower-cased name fragments of published reward models -> the preset their model card prescribes.
KNOWN_MODELS: dict[str, str] = {
    "math-shepherd": "math-shepherd",
    "qwen2.5-math-prm": "qwen-prm",
    "rlhflow": "rlhflow",
    "llama3.1-8b-prm": "rlhflow",
    "skywork-o1-open-prm": "skywork",
    "qwen2.5-math-rm": "qwen-rm",
}
#: Architecture families per kind, used when a preset lists no architectures of its own.
KIND_FAMILIES: dict[str, tuple[str, ...]] = {
    "likelihood": ("ForCausalLM", "LMHeadModel"),
    "tag": ("ForCausalLM", "LMHeadModel"),
    "chat-tag": ("ForCausalLM", "LMHeadModel"),
    "head": ("ForTokenClassification", "ProcessRewardModel"),
    "orm-seq": ("ForSequenceClassification",),
    "value-head": ("PrmModel", "ValueHead", "ForCausalLM"),
    "orm-last-token": ("RewardModel",),
}
VALUE_HEAD = "v_head.summary"
REWARD_HEAD = "score"


@dataclass(frozen=True)
class Checkpoint:
    """What a fit check reads of a checkpoint: config facts, the tokenizer, weight names -> shapes.

    `weights` is empty when the files are not local (a hub id not yet downloaded): head checks
    then happen when the weights are read.
    """

    name: str
    architectures: tuple[str, ...]
    hidden_size: int | None
    num_labels: int | None
    tokenizer: Any
    weights: Mapping[str, tuple[int, ...]] = field(default_factory=dict)


def inspect_checkpoint(name: str, local: Path | None, config: Any, tokenizer: Any) -> Checkpoint:
    """Read what `fit_problems` needs: `config` (AutoConfig), `tokenizer`, safetensors headers."""
    labels = getattr(config, "num_labels", None)
    return Checkpoint(
        name=name,
        architectures=tuple(getattr(config, "architectures", None) or ()),
        hidden_size=getattr(config, "hidden_size", None),
        num_labels=int(labels) if labels is not None else None,
        tokenizer=tokenizer,
        weights=safetensors_shapes(local) if local is not None else {},
    )


def safetensors_shapes(local: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from the headers of every *.safetensors file in `local` (no data read)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for file in sorted(local.glob("*.safetensors")):
        with file.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(size))
        shapes.update({k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"})
    return shapes


def single_token(tokenizer: Any, text: str) -> bool:
    """Does `text` encode to exactly one token, alone or after a space (``▁ки``), no special tokens added?"""
    return any(len(tokenizer.encode(t, add_special_tokens=False)) == 1 for t in (text, " " + text))


def fit_problems(spec: Any, ckpt: Checkpoint) -> list[str]:
    """Sentences saying why reading `ckpt` with `spec` (a PRMSpec / RewardModelSpec) would misread it."""
    problems = _architecture_problems(spec, ckpt)
    tokenizer = ckpt.tokenizer
    if spec.kind in ("tag", "chat-tag"):
        for what, text in (("good label", spec.good_token), ("bad label", spec.bad_token)):
            if len(tokenizer.encode(text, add_special_tokens=False)) != 1:
                problems.append(f"its {what} {text!r} is not a single token of this tokenizer")
    for text in getattr(spec, "single_tokens", ()) or ():
        if not single_token(tokenizer, text):
            problems.append(f"{text!r} is not a single token of this tokenizer (the preset reads scores there)")
    if spec.kind == "chat-tag" and not getattr(tokenizer, "chat_template", None):
        problems.append("the tokenizer has no chat template (the preset writes each step as a user turn)")
    allowed = tuple(getattr(spec, "head_labels", (1, 2)) or (1, 2))
    if spec.kind == "head" and ckpt.num_labels is not None and ckpt.num_labels not in allowed:
        wanted = " or ".join(map(str, allowed))
        problems.append(f"its classifier has {ckpt.num_labels} labels; this preset reads a head of {wanted}")
    if spec.kind == "value-head":
        problems += _head_problems(ckpt, VALUE_HEAD, "value head")
    if spec.kind == "orm-last-token":
        problems += _head_problems(ckpt, REWARD_HEAD, "reward head")
    return problems


def _architecture_problems(spec: Any, ckpt: Checkpoint) -> list[str]:
    expected = tuple(getattr(spec, "architectures", ()) or ())
    if not ckpt.architectures:
        return []
    if expected:
        ok = any(a in expected for a in ckpt.architectures)
        wanted = " or ".join(expected)
    else:
        families = KIND_FAMILIES.get(spec.kind, ())
        ok = not families or any(f in a for a in ckpt.architectures for f in families)
        wanted = "a *" + " / *".join(families) + " model"
    if ok:
        return []
    return [f"it is a {', '.join(ckpt.architectures)}, and the preset reads {wanted}"]


def _head_problems(ckpt: Checkpoint, prefix: str, what: str) -> list[str]:
    """A Linear [1, hidden] at `prefix`, or an MLP `prefix.0` [hidden, hidden] -> `prefix.2` [1, hidden]."""
    if not ckpt.weights:
        return []
    hidden = ckpt.hidden_size
    single = ckpt.weights.get(f"{prefix}.weight")
    first, last = ckpt.weights.get(f"{prefix}.0.weight"), ckpt.weights.get(f"{prefix}.2.weight")
    if single is None and last is None:
        return [f"it has no {what} ({prefix}.weight is not among its weights)"]
    shape = single if single is not None else last
    if shape != (1, hidden) or (first is not None and first != (hidden, hidden)):
        return [f"its {what} {prefix} has shape {shape}, not (1, {hidden})"]
    return []


def _generic(spec: Any) -> bool:
    """A preset that reads any model of its kind's family (nano, nano-tag, head)."""
    return not getattr(spec, "architectures", ()) and spec.kind in ("likelihood", "tag", "head")


def known_preset(name: str) -> str | None:
    """The preset a published reward model's name calls for (see `KNOWN_MODELS`)."""
    lowered = name.lower()
    return next((preset for key, preset in KNOWN_MODELS.items() if key in lowered), None)


def check_fit(preset: str | None, spec: Any, ckpt: Checkpoint, presets: Mapping[str, Any]) -> None:
    """Raise ModelLoadError when `spec` (named `preset`, None for a custom spec) does not fit `ckpt`.

    The message names the preset(s) that fit, or the fields to set when none does.
    """
    problems = fit_problems(spec, ckpt)
    known = known_preset(ckpt.name)
    if not problems and known and preset is not None and known != preset and known in presets:
        problems.append(f"its name marks it as a model whose card prescribes the {known!r} preset")
    if not problems:
        return
    fitting = [name for name, other in presets.items() if name != preset and not fit_problems(other, ckpt)]
    fitting.sort(key=lambda name: _generic(presets[name]))  # a recipe made for this shape first
    if known in fitting:
        fitting = [known] + [name for name in fitting if name != known]
    label = f"the {preset!r} preset" if preset else "this reward-model spec"
    hint = (
        f"Use --prm-preset {fitting[0]}" + (f" (also fits: {', '.join(fitting[1:])})" if fitting[1:] else "")
        if fitting
        else "No preset fits: set --prm-kind, --step-tag, --good-token/--bad-token or --step-separator, "
        "or describe the format in a spec file (--prm-preset path/to/spec.json; see README)"
    )
    raise ModelLoadError(f"{ckpt.name} does not fit {label}: {'; '.join(problems)}. {hint}.")
