"""Search-sidebar widgets whose values live in session state: strategy knobs, budget, seed.

A Preset (reasoning_viz/preset_form.py), an opened run or "re-run with these settings" write
these widgets' keys, so no widget here takes a `value=`/`index=` of its own: `keyed` puts the
default into session state once instead (Streamlit warns when a widget gets both, and the
session-state value wins anyway).
"""

from __future__ import annotations

import streamlit as st

from reasoning_viz.runinfo import DEFAULT_BUDGET
from search import get_strategy


def keyed(key: str, default):
    """`key` for a widget whose value lives in session state: a Preset, a loaded run or "re-run"
    write these keys, so the widget takes no `value=`/`index=` of its own (Streamlit warns when a
    widget gets both) and its default is put into session state once instead."""
    if key not in st.session_state:
        st.session_state[key] = default
    return key


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
