"""Search-sidebar widgets whose values live in session state: problem, models, strategy knobs,
budget, seed.

A Preset (reasoning_viz/preset_form.py), an opened run or "re-run with these settings" write
these widgets' keys, so no widget here takes a `value=`/`index=` of its own: `keyed` puts the
default into session state once instead (Streamlit warns when a widget gets both, and the
session-state value wins anyway).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import streamlit as st

from models.bundle import PRM_PRESETS
from models.prompting import CHAT_TEMPLATE_MODES
from models.specs import DEVICE_CHOICES
from reasoning_viz.advanced_model_form import advanced_inputs
from reasoning_viz.orm_form import orm_inputs
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
    bundled_for_task,
)
from reasoning_viz.runinfo import DEFAULT_BUDGET
from search import get_strategy


def keyed(key: str, default):
    """`key` for a widget whose value lives in session state: a Preset, a loaded run or "re-run"
    write these keys, so the widget takes no `value=`/`index=` of its own (Streamlit warns when a
    widget gets both) and its default is put into session state once instead."""
    if key not in st.session_state:
        st.session_state[key] = default
    return key


#: The example picker's first option, shown when the Problem box holds a problem that is not one
#: of the examples (typed, drawn at random, a preset's or an opened run's).
CUSTOM_PROBLEM = "✎ custom problem (below)"


def problem_inputs(task: str, choices: list[str], draw: Callable[[str], str]) -> str:
    """The Problem box with its example picker and 🎲 button; returns the problem text.

    The picker always agrees with the box: it shows the example the box holds, or CUSTOM_PROBLEM
    when the box holds another problem (anything that writes the box's key: a preset, an opened
    run, the 🎲 button, typing); picking an example writes it into the box.  `choices`: the
    task's examples (non-empty); `draw(task)`: a random problem.
    """
    state, problem_key, pick_key = st.session_state, f"problem-{task}", f"pick-{task}"
    if st.button("🎲 Random problem", help="Draw a fresh problem from the task's generator."):
        state[problem_key] = draw(task)
    if problem_key not in state:
        state[problem_key] = choices[0]
    state[pick_key] = state[problem_key] if state[problem_key] in choices else CUSTOM_PROBLEM
    st.selectbox("…or pick one", [CUSTOM_PROBLEM, *choices], key=pick_key, on_change=_picked, args=(task,),
                 help="An example problem of this task; the first entry stands for the problem in the box.")
    return st.text_area("Problem", key=problem_key, height=100)


def _picked(task: str) -> None:
    picked = st.session_state[f"pick-{task}"]
    if picked != CUSTOM_PROBLEM:
        st.session_state[f"problem-{task}"] = picked


def knob_inputs(strategy: str) -> dict:
    """One widget per knob, chosen by the knob's declared type, with its learner-facing help text."""
    config_cls = get_strategy(strategy).config_cls
    kinds = config_cls.knob_types()
    values = {}
    for name, default, help_text in config_cls.knobs():
        kind, choices = kinds[name], config_cls.knob_choices(name)
        key = keyed(f"knob-{strategy}-{name}", 0 if kind.optional else default)
        if choices:
            values[name] = st.selectbox(name, choices, help=help_text, key=key)
        elif kind.base is bool:
            values[name] = st.checkbox(name, help=help_text, key=key)
        elif kind.optional:
            raw = st.number_input(f"{name} (0 = default)", step=1, help=help_text, key=key)
            values[name] = kind.base(raw) or None
        elif kind.base is int:
            values[name] = int(st.number_input(name, step=1, help=help_text, key=key))
        else:
            values[name] = float(st.number_input(name, step=0.1, help=help_text, key=key))
    return values


def budget_inputs() -> dict:
    """Node / token / time limits; by default a node limit, so a seed's tree does not depend on
    the machine's speed (see reasoning_viz.runinfo); time is an opt-in guard."""
    helps = {
        "max_nodes": "Stop after this many tree nodes.",
        "max_tokens": "Stop after the policy generated this many tokens.",
        "max_seconds": "Stop after this much wall time. Off by default: the tree would depend on the machine's speed.",
    }
    labels = {"max_nodes": "max nodes", "max_tokens": "max generated tokens", "max_seconds": "max seconds"}
    out = {}
    for name, default in DEFAULT_BUDGET.items():
        kind = float if name == "max_seconds" else int
        value = st.number_input(
            f"{labels[name]} (0 = none)",
            kind(0),
            kind(10_000_000),
            help=helps[name],
            key=keyed(f"budget-{name}", kind(default)),
        )
        out[name] = kind(value) or None
    return out


def model_inputs(task: str) -> dict:
    """The Models section: the bundled nano pack, Hugging Face models, or an inference server;
    every widget is keyed, so an opened run (reasoning_viz/run_models.py) can show its models.
    A bundled set trained for another task than `task` gets a warning (its policy writes the
    other task's steps)."""
    source = st.radio(
        "Models",
        [BUNDLED, LOCAL, SERVER],
        key=MODEL_SOURCE,
        horizontal=True,
        help="The nano pack runs offline on a laptop CPU; or give your own models, in this process or on a "
        "vLLM / OpenAI-compatible server.",
    )
    if source == BUNDLED:
        bundled = st.selectbox("Bundled models", list(BUNDLED_MODELS), key=BUNDLED_SET,
                               help="arith: the maths policy and step PRM; countdown: the countdown policy and "
                               "its value model (read through the PRM slot), which the countdown presets use.")
        wanted = bundled_for_task(task)
        if wanted is not None and bundled != wanted:
            st.warning(f"These models were trained for {bundled.partition(':')[0]}, not {task}: its policy "
                       f"writes the wrong kind of steps. Pick “{wanted}”.")
        return {**BUNDLED_MODELS[bundled].choice(), "device": None, "trust_remote_code": False,
                "chat_template": "auto"}
    if source == SERVER:
        return server_model_inputs()
    return {
        "policy": st.text_input("Policy (local dir or hub id)", help="A causal LM that writes steps.",
                                key=POLICY_PATH) or None,
        "prm": st.text_input("PRM (local dir or hub id)", help="A process reward model scoring each step.",
                             key=PRM_PATH) or None,
        "preset": st.selectbox("PRM recipe", list(PRM_PRESETS), help="How the PRM reads a path (see README).",
                               key=PRM_RECIPE),
        "device": st.selectbox("Device", list(DEVICE_CHOICES), help="auto: CUDA, then MPS, then CPU.", key=DEVICE),
        "chat_template": st.selectbox(
            "Chat template",
            list(CHAT_TEMPLATE_MODES),
            help="auto: write the policy's prompts through its tokenizer's chat template when it has one "
            "(instruct models); off: the task's plain text. The prompt sent is shown at the root node.",
            key=CHAT_TEMPLATE,
        ),
        "trust_remote_code": st.checkbox(
            "Trust remote code", help="Run custom model code from the hub (off by default).", key=TRUST_CODE
        ),
        **orm_inputs(server=False),
        **advanced_inputs(),
    }


def server_model_inputs() -> dict:
    """Models on an inference server: URL + served name per role, checked against /v1/models at start."""
    return {
        "policy_url": st.text_input(
            "Policy server URL", placeholder="http://127.0.0.1:8000",
            key=keyed(SERVER_POLICY_URL, os.environ.get("THOUGHTSCOPE_POLICY_URL", "")),
        ),
        "policy": st.text_input(
            "Served policy", help="The model name the server lists (a local dir or hub id of the same checkpoint, "
            "whose tokenizer builds the prompts).", key=SERVER_POLICY) or None,
        "prm_url": st.text_input(
            "PRM server URL (empty: the PRM runs here)",
            key=keyed(SERVER_PRM_URL, os.environ.get("THOUGHTSCOPE_PRM_URL", "")),
        ) or None,
        "prm": st.text_input("PRM (local dir or hub id; the served name with a PRM URL)", key=SERVER_PRM) or None,
        "preset": st.selectbox("PRM recipe", list(PRM_PRESETS), help="How the PRM reads a path (see README).",
                               key=SERVER_PRM_RECIPE),
        **orm_inputs(server=True),
        **advanced_inputs(),
        "device": None,
        "trust_remote_code": False,
        "chat_template": "auto",
    }
