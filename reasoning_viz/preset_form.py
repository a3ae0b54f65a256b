"""The Search page's Preset menu: a preset (search/presets.py) as the sidebar's widget values.

Pure: returns session-state values by widget key, so the page applies them in one callback and
tests read them without a browser.  The budget, seed and known answer are left as the user set
them; every knob of the preset's strategy is filled (the preset's value or the default), so no
value from an earlier choice lingers.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from reasoning_viz.runinfo import form_state
from search.preset_examples import example_for
from search.presets import get_preset
from search.registry import get_strategy

#: Sidebar widget keys of the model inputs (reasoning_viz/pages/search.py `model_inputs`).
MODEL_SOURCE, POLICY_PATH, PRM_PATH, PRM_RECIPE = "model-source", "model-policy", "model-prm", "model-prm-recipe"
BUNDLED, LOCAL = "Bundled nano pack", "Hugging Face"
NO_PRESET = "(none)"


def preset_form_state(name: str) -> dict[str, Any]:
    """Widget key -> value that show preset `name` in the sidebar (ConfigError for an unknown name)."""
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
    policy, prm = preset.model_path("policy"), preset.model_path("prm")
    if policy is None and prm is None and preset.prm_preset == "nano":
        return {**state, MODEL_SOURCE: BUNDLED}
    return {**state, MODEL_SOURCE: LOCAL, POLICY_PATH: policy or "", PRM_PATH: prm or "",
            PRM_RECIPE: preset.prm_preset}


def apply_preset(state: MutableMapping[str, Any], choices: Callable[[str], list[str]]) -> None:
    """The Preset menu's callback: fill `state` (session state) with the chosen preset, if any.

    `choices(task)` lists the example picker's options; the picker is marked as already seen so
    that it does not overwrite the preset's problem on the next rerun.
    """
    name = state.get("preset", NO_PRESET)
    if name == NO_PRESET:
        return
    values = preset_form_state(name)
    task = values["task"]
    state[f"picked-{task}"] = state.get(f"pick-{task}", choices(task)[0])
    state.update(values)
