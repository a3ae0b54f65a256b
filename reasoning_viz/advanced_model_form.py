"""The Models section's advanced inputs: the policy's system prompt and single overrides of the
PRM recipe (the CLI's `--system-prompt`, `--prm-kind`, `--step-tag`, `--step-separator`,
`--good-token`, `--bad-token`), so a run started from the CLI with them opens, and re-runs, with
them in the app.

Step separators and tags are often whitespace ("\\n\\n", "\\n"): the text boxes show and take
them with backslash escapes (`visible` / `from_visible`, exact inverses).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from models.specs import PRM_KINDS

#: Sidebar widget key of the system prompt box.
SYSTEM_PROMPT = "model-system-prompt"
#: Sidebar widget key per PRM override (search.request.ModelChoice.prm_options's fields).
PRM_OPTION_KEYS: dict[str, str] = {
    "kind": "model-prm-kind",
    "step_tag": "model-step-tag",
    "step_separator": "model-step-separator",
    "good_token": "model-good-token",
    "bad_token": "model-bad-token",
}
#: The PRM-kind choice that keeps the recipe's kind.
RECIPE_KIND = "(the recipe's)"
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


def visible(text: str) -> str:
    """`text` with backslashes, newlines, tabs and carriage returns written as escapes ("\\n")."""
    return "".join(_ESCAPES.get(char, char) for char in text)


def from_visible(text: str) -> str:
    """The inverse of `visible`: "\\n" -> newline, "\\t" -> tab, "\\r", "\\\\" -> one backslash.

    A backslash before any other character (or at the end) is kept as written.
    """
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _UNESCAPES:
            out.append(_UNESCAPES[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def advanced_state(system_prompt: str | None, prm_options: Mapping[str, str | None]) -> dict[str, Any]:
    """Widget key -> value showing this system prompt and these PRM overrides (all keys, so an
    opened run leaves no earlier value behind)."""
    state: dict[str, Any] = {SYSTEM_PROMPT: system_prompt or ""}
    for name, key in PRM_OPTION_KEYS.items():
        value = prm_options.get(name)
        state[key] = (value or RECIPE_KIND) if name == "kind" else visible(value or "")
    return state


def advanced_inputs() -> dict[str, Any]:
    """The widgets, folded; returns `system_prompt` (None: the model card's) and `prm_options`
    (only the overrides given)."""
    for key, value in advanced_state(None, {}).items():
        st.session_state.setdefault(key, value)  # no value=: an opened run writes these keys
    with st.expander("System prompt and PRM overrides"):
        prompt = st.text_area(
            "System prompt", key=SYSTEM_PROMPT,
            help="The system turn of the policy's chat prompts (like --system-prompt); empty: the model card's.",
        )
        options: dict[str, str] = {}
        kind = st.selectbox("PRM kind", [RECIPE_KIND, *PRM_KINDS], key=PRM_OPTION_KEYS["kind"],
                            help="Override the recipe's kind (like --prm-kind; see README).")
        if kind != RECIPE_KIND:
            options["kind"] = kind
        for name, label in (("step_tag", "Step tag"), ("step_separator", "Step separator"),
                            ("good_token", "Good-step token"), ("bad_token", "Bad-step token")):
            value = st.text_input(label, key=PRM_OPTION_KEYS[name], help=f"Override the recipe's {name} "
                                  f"(like --{name.replace('_', '-')}); write a newline as \\n; empty: the recipe's.")
            if value:
                options[name] = from_visible(value)
    return {"system_prompt": prompt.strip() or None, "prm_options": options}
