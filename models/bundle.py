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
from search.models import DEFAULT_SCORE_NAME, Models, RewardModel
from search.request import ModelChoice

NANO_DIR = Path(__file__).resolve().parent / "nano"


@dataclass(frozen=True)
class PRMSpec:
    """How to read a reward model: a preset's recipe (fields as in models.specs.RewardModelSpec).

    `layout`: a LAYOUTS key, unless `prefix`/`step` give the layout text themselves (spec files).
    `architectures`: config architectures the recipe is for (() = the kind's family);
    `single_tokens`: texts that must be single tokens (where scores are read); `outcome`: one
    score per path (an ORM, loaded with --orm); `system_prompt`: the system turn of chat recipes.
    """

    kind: str = "likelihood"
    step_tag: str = "ки"
    good_token: str = "+"
    bad_token: str = "-"
    step_separator: str = "\n"
    layout: str = "head"
    head_label_index: int = 1
    #: How many labels a `head` classifier may have (a step head: 1 or 2; the countdown value model: 3).
    head_labels: tuple[int, ...] = (1, 2)
    architectures: tuple[str, ...] = ()
    single_tokens: tuple[str, ...] = ()
    outcome: bool = False
    system_prompt: str | None = None
    prefix: str | None = None
    step: str | None = None
    #: What its step score is called in the app (search.models.Models.score_name).
    score_name: str = DEFAULT_SCORE_NAME


QWEN_MATH_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."

#: preset name -> spec.  `qwen-prm` also needs trust_remote_code=True (its head is custom code).
#: `nano` is the shipped likelihood PRM; `nano-tag` reads `+`/`-` at `ки` (`train prm --objective tag`).
#: Each named model's recipe is pinned by a test against its model card (tests/test_prm_presets.py).
#: `nano-value` is the countdown value model (models/nano/value, `train value`): a 3-label token
#: classifier read at each step's newline; label 1 is P(legal and the target still reachable).
PRM_PRESETS: dict[str, PRMSpec] = {
    "nano": PRMSpec(),
    "nano-tag": PRMSpec(kind="tag", layout="nano"),
    "math-shepherd": PRMSpec(
        kind="tag", step_tag="ки", good_token="+", bad_token="-", layout="math-shepherd",
        architectures=("MistralForCausalLM",), single_tokens=("ки",),
    ),
    "qwen-prm": PRMSpec(
        kind="head", step_separator="<extra_0>", layout="qwen-prm",
        architectures=("Qwen2ForProcessRewardModel", "Qwen2ForTokenClassification"), single_tokens=("<extra_0>",),
    ),
    "head": PRMSpec(kind="head", layout="head"),
    # RLHFlow/Llama3.1-8B-PRM-*: each step a user turn, "+" the assistant's reply; P(+) vs P(-) before it.
    "rlhflow": PRMSpec(kind="chat-tag", good_token="+", bad_token="-", architectures=("LlamaForCausalLM",)),
    # Skywork/Skywork-o1-Open-PRM-*: Qwen2 + value head v_head.summary, sigmoid at each "\n" after a step.
    "skywork": PRMSpec(kind="value-head", step_separator="\n"),
    # Qwen/Qwen2.5-Math-RM-72B: one reward for the whole chat (system, user, assistant), last token.
    "qwen-rm": PRMSpec(
        kind="orm-last-token", step_separator="\n\n", outcome=True, system_prompt=QWEN_MATH_SYSTEM,
        architectures=("Qwen2ForRewardModel",),
    ),
    # Any *ForSequenceClassification outcome model: the chat (or plain text) read as one sequence.
    "orm-seq": PRMSpec(kind="orm-seq", step_separator="\n\n", outcome=True),
    "nano-value": PRMSpec(
        kind="head", layout="head", step_separator="\n", head_label_index=1, head_labels=(3,),
        score_name="value-model score",
    ),
}


#: layout name (PRMSpec.layout) -> the text layout it stands for (models/prm_layouts.py).
LAYOUTS: dict[str, PRMLayout] = {
    "nano": TAG_LAYOUT,
    "head": HEAD_LAYOUT,
    "math-shepherd": MATH_SHEPHERD_LAYOUT,
    "qwen-prm": QWEN_PRM_LAYOUT,
}


def prm_spec(preset: str = "nano", **overrides: Any) -> PRMSpec:
    """A preset (a name, or a JSON/YAML spec file's path) with any non-None single options applied on top."""
    if preset not in PRM_PRESETS:
        from models.prm_spec_file import is_spec_file, read_spec_file

        if not is_spec_file(preset):
            raise ValueError(
                f"unknown PRM preset {preset!r}; choose one of {', '.join(PRM_PRESETS)} "
                "or give a spec file (.json/.yaml)."
            )
        return replace(read_spec_file(preset), **{k: v for k, v in overrides.items() if v is not None})
    changes = {key: value for key, value in overrides.items() if value is not None}
    return replace(PRM_PRESETS[preset], **changes)


def preset_name(spec: PRMSpec) -> str | None:
    """The name of the preset `spec` is (None for a custom or overridden spec)."""
    return next((name for name, preset in PRM_PRESETS.items() if preset == spec), None)


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
        layout=PRMLayout(spec.prefix, spec.step) if spec.prefix is not None and spec.step else LAYOUTS[spec.layout],
        head_label_index=spec.head_label_index,
        head_labels=spec.head_labels,
        device=device,
        trust_remote_code=trust_remote_code,
        url=url,
        preset=preset_name(spec),
        architectures=spec.architectures,
        single_tokens=spec.single_tokens,
        outcome=spec.outcome,
        system_prompt=spec.system_prompt,
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
    chat_template: str = "auto",
    system_prompt: str | None = None,
    orm_spec: PRMSpec | None = None,
    orm_url: str | None = None,
) -> Models:
    """Policy + PRM (+ optional outcome verifier); None means the bundled nano model.

    `chat_template` (auto / on / off) and `system_prompt` say how the policy's prompts are
    written (see models/prompting.py: auto uses the tokenizer's chat template when it has one).

    `orm_spec`: how the outcome verifier is read (an outcome preset such as qwen-rm or orm-seq;
    None: the PRM's spec, its last step's score).  Raises ModelLoadError when an outcome preset
    is given for the PRM (it scores whole paths, not steps).

    `policy_url` / `prm_url` / `orm_url`: base URLs of OpenAI-compatible inference servers serving
    the named models (`orm_url` None: the PRM's URL, which serves the ORM when it is the same
    model; an outcome model is a pooling model, so it has a vLLM server of its own); None runs
    that model in this process.
    """
    from models.factory import load_policy
    from models.loading import ModelLoadError

    if orm_url and not orm:
        raise ModelLoadError(f"--orm-url {orm_url} names the outcome model's server, but no --orm model is given.")
    spec = spec or PRMSpec()
    if spec.outcome:
        raise ModelLoadError(
            "That preset reads an outcome reward model (one score per whole solution), not a PRM: "
            "pass the model with --orm and the preset with --orm-preset."
        )
    options = {"device": device, "trust_remote_code": trust_remote_code}
    return Models(
        policy=load_policy(
            PolicySpec(
                policy or default_model("policy"),
                url=policy_url,
                chat_template=chat_template,
                system_prompt=system_prompt,
                **options,
            )
        ),
        prm=load_reward_model(prm or default_model("prm"), spec, url=prm_url, **options),
        orm=load_reward_model(orm, orm_spec or spec, url=orm_url or prm_url, **options) if orm else None,
        score_name=spec.score_name,
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


class TransformersLoader:
    """`search.request.ModelLoader` over the transformers backends (the CLI's `run`, `eval`, `sweep`).

    `check` validates the PRM preset and options without touching a model; `load` loads the
    choice (None paths: the bundled nano pack or $THOUGHTSCOPE_POLICY / $THOUGHTSCOPE_PRM).
    """

    def check(self, choice: ModelChoice) -> None:
        choice_spec(choice)
        choice_orm_spec(choice)

    def load(self, choice: ModelChoice) -> Models:
        return load_models(
            choice.policy,
            choice.prm,
            spec=choice_spec(choice),
            orm=choice.orm,
            device=choice_device(choice),
            trust_remote_code=choice.trust_remote_code,
            policy_url=choice.policy_url,
            prm_url=choice.prm_url,
            chat_template=choice.chat_template,
            system_prompt=choice.system_prompt,
            orm_spec=choice_orm_spec(choice),
            orm_url=choice.orm_url,
        )

    def describe(self, models: Models) -> dict[str, dict[str, Any]]:
        return describe(models)


def choice_spec(choice: ModelChoice) -> PRMSpec:
    """The PRM recipe a choice names (ValueError for an unknown preset)."""
    return prm_spec(choice.prm_preset, **dict(choice.prm_options))


def choice_orm_spec(choice: ModelChoice) -> PRMSpec | None:
    """How the choice's outcome verifier is read (None: the PRM's spec); ValueError for an unknown preset."""
    return prm_spec(choice.orm_preset) if choice.orm_preset else None


def choice_device(choice: ModelChoice) -> str | None:
    """cuda / mps / cpu, or None (best available) for None and "auto"."""
    return None if choice.device in (None, "auto") else choice.device
