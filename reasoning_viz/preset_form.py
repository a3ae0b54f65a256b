"""The Search page's Preset menu: a preset (search/presets.py) as the sidebar's widget values.

Pure: returns session-state values by widget key, so the page applies them in one callback and
tests read them without a browser.  The budget, seed and known answer are left as the user set
them; every knob of the preset's strategy is filled (the preset's value or the default), so no
value from an earlier choice lingers.

Models: a preset keeps the user's model source.  A user on the bundled nano pack stays on it,
with the bundled set the preset needs (the countdown presets: the countdown policy and value
model); a user with their own models keeps them; only a preset whose models are not bundled
switches the source to "Hugging Face".  Each case says what it did in a note (`PRESET_NOTE`).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, NamedTuple

from reasoning_viz.runinfo import form_state
from search.preset_examples import example_for
from search.presets import PRESETS, REPO, Preset, get_preset
from search.registry import get_strategy

#: Sidebar widget keys of the model inputs (reasoning_viz/sidebar_inputs.py `model_inputs`).
MODEL_SOURCE, POLICY_PATH, PRM_PATH, PRM_RECIPE = "model-source", "model-policy", "model-prm", "model-prm-recipe"
DEVICE, CHAT_TEMPLATE, TRUST_CODE = "model-device", "model-chat-template", "model-trust-remote-code"
BUNDLED_SET = "model-bundled"
#: ... of the "Inference server" inputs.
SERVER_POLICY_URL, SERVER_POLICY = "model-policy-url", "model-served-policy"
SERVER_PRM_URL, SERVER_PRM, SERVER_PRM_RECIPE = "model-prm-url", "model-served-prm", "model-served-prm-recipe"
BUNDLED, LOCAL, SERVER = "Bundled nano pack", "Hugging Face", "Inference server"
NO_PRESET = "(none)"
#: Session-state key of the sentence saying what the last chosen preset did to the Models section.
PRESET_NOTE = "preset-note"


class BundledModels(NamedTuple):
    """One set of bundled nano weights: paths relative to the repository (None: models/nano/<role>)."""

    policy: str | None
    prm: str | None
    prm_preset: str

    def choice(self) -> dict[str, Any]:
        """The Models section's values for this set (absolute paths, as a loader takes them)."""
        return {"policy": self.policy and str(REPO / self.policy), "prm": self.prm and str(REPO / self.prm),
                "preset": self.prm_preset}


#: The bundled sets the "Bundled nano pack" source offers, by the label the sidebar shows.
BUNDLED_MODELS: dict[str, BundledModels] = {
    "arith: nano policy + PRM": BundledModels(None, None, "nano"),
    "countdown: countdown policy + value model": BundledModels(
        "models/nano/countdown_policy", "models/nano/value", "nano-value"),
}


def bundled_for_task(task: str) -> str | None:
    """The BUNDLED_MODELS label trained for `task` ("arith: ...", "countdown: ..."); None for a
    task without a set of its own (freeform)."""
    return next((label for label in BUNDLED_MODELS if label.partition(":")[0] == task), None)


def task_changed(state: MutableMapping[str, Any]) -> None:
    """The Task picker's on_change: bundled models follow the task (after a countdown preset, arith
    problems ran on the countdown policy and were all wrong, with no word why).  Models given as
    paths or a server are the user's and stay."""
    label = bundled_for_task(state.get("task", ""))
    if label is not None and state.get(MODEL_SOURCE, BUNDLED) == BUNDLED:
        state[BUNDLED_SET] = label


def bundled_label(preset: Preset) -> str | None:
    """The BUNDLED_MODELS label of the preset's models, or None when they are not bundled."""
    wanted = BundledModels(preset.policy, preset.prm, preset.prm_preset)
    return next((label for label, models in BUNDLED_MODELS.items() if models == wanted), None)


def preset_form_state(name: str, current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Widget key -> value that show preset `name` in the sidebar (ConfigError for an unknown name).

    `current`: the sidebar's present values (session state); its model source is kept (see the
    module docstring) and `PRESET_NOTE` says which models the preset left or chose.
    """
    preset = get_preset(name)
    spec = get_strategy(preset.strategy)
    config = spec.make_config(dict(preset.knobs)).to_json()
    knobs = [(knob, default) for knob, default, _ in spec.config_cls.knobs()]
    example = example_for(preset)
    meta = {"task": preset.task, "strategy": preset.strategy, "config": config, "problem": example or ""}
    state = {key: value for key, value in form_state(meta, knobs).items()
             if not key.startswith("budget-") and key not in ("seed", "reference")}
    if not example:
        state.pop(f"problem-{preset.task}")
    return {**state, **_model_state(preset, current or {})}


def _model_state(preset: Preset, current: Mapping[str, Any]) -> dict[str, Any]:
    source = current.get(MODEL_SOURCE, BUNDLED)
    own = source != BUNDLED and (source != LOCAL or current.get(POLICY_PATH) or current.get(PRM_PATH))
    label = bundled_label(preset)
    if label is not None and own:
        return {PRESET_NOTE: f"{preset.name} was made for the bundled {label.partition(': ')[2]}; your own "
                f"models ({source}) are kept. Choose \"{BUNDLED}\" to run it on the bundled ones."}
    if label is not None:
        changed = current.get(BUNDLED_SET, next(iter(BUNDLED_MODELS))) != label
        return {MODEL_SOURCE: BUNDLED, BUNDLED_SET: label,
                PRESET_NOTE: f"{preset.name} runs on the bundled {label.partition(': ')[2]}"
                + (": the Models section now shows them." if changed else ".")}
    policy, prm = preset.model_path("policy"), preset.model_path("prm")
    return {MODEL_SOURCE: LOCAL, POLICY_PATH: policy or "", PRM_PATH: prm or "", PRM_RECIPE: preset.prm_preset,
            PRESET_NOTE: f"{preset.name} needs models that are not bundled: the Models section now names them "
            f"({LOCAL})."}


def matching_preset(meta: Mapping[str, Any], model_state: Mapping[str, Any]) -> str:
    """The preset an opened run was made with, or NO_PRESET: same task, strategy and every knob
    (its SEARCH_STARTED `meta`), on the preset's bundled models (`model_state`: the Models
    section's values for the run, `run_models.run_model_state`).  A run of an older version of a
    preset (a knob added since) matches none."""
    for preset in PRESETS.values():
        if (preset.task, preset.strategy) != (meta.get("task"), meta.get("strategy")):
            continue
        label = bundled_label(preset)
        same_models = label is None or (model_state.get(MODEL_SOURCE, BUNDLED) == BUNDLED
                                        and model_state.get(BUNDLED_SET) == label)
        config = get_strategy(preset.strategy).make_config(dict(preset.knobs)).to_json()
        if same_models and config == meta.get("config"):
            return preset.name
    return NO_PRESET


def apply_preset(state: MutableMapping[str, Any]) -> None:
    """The Preset menu's callback: fill `state` (session state) with the chosen preset, if any.

    The example picker follows the Problem box by itself (reasoning_viz.sidebar_inputs
    `problem_inputs`), so the preset's problem is all that is written.
    """
    name = state.get("preset", NO_PRESET)
    if name == NO_PRESET:
        state.pop(PRESET_NOTE, None)
        return
    state.update(preset_form_state(name, state))
