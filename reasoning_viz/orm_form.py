"""The Models section's outcome reward model (ORM): the app's `--orm` / `--orm-preset` / `--orm-url`.

An ORM scores each finished solution once (one score per path); the answer choice can then
weigh solutions by it.  Like the CLI, the ORM is optional, read with the PRM's recipe unless an
outcome recipe is chosen, and on an inference server its URL defaults to the PRM's; a served ORM
is checked against the server's `/v1/models` when the models load, before the search starts.
"""

from __future__ import annotations

import os

import streamlit as st

from models.bundle import PRM_PRESETS
from search import ConfigError

#: Sidebar widget keys of the ORM inputs.
ORM_PATH, ORM_RECIPE, ORM_URL = "model-orm", "model-orm-recipe", "model-orm-url"
#: The recipe choice that means "read the ORM as the PRM is read" (the CLI's default --orm-preset).
SAME_AS_PRM = "same as the PRM"
#: Outcome recipes first (what an ORM usually is), then the step recipes (a PRM's last step's score).
ORM_RECIPES = (
    SAME_AS_PRM,
    *(name for name, spec in PRM_PRESETS.items() if spec.outcome),
    *(name for name, spec in PRM_PRESETS.items() if not spec.outcome),
)


def orm_inputs(*, server: bool) -> dict[str, str | None]:
    """The ORM widgets; returns `orm`, `orm_preset` (None: the PRM's) and, with `server`, `orm_url`.

    `server`: the Inference-server source, which also asks for the ORM's server URL (empty: the
    PRM server's URL, or in this process when the PRM runs here), like `--orm-url`.
    """
    label = "ORM (optional; local dir or hub id" + ("; the served name with an ORM URL)" if server else ")")
    out: dict[str, str | None] = {
        "orm": st.text_input(label, key=ORM_PATH, help="An outcome reward model scoring each finished solution "
                             "once (like --orm); empty: none.").strip() or None,
        "orm_preset": None,
    }
    recipe = st.selectbox("ORM recipe", ORM_RECIPES, key=ORM_RECIPE,
                          help="How the ORM reads a solution (like --orm-preset; see README).")
    out["orm_preset"] = None if recipe == SAME_AS_PRM else recipe
    if server:
        # no value=: an opened run writes this key (Streamlit warns when a widget gets both)
        st.session_state.setdefault(ORM_URL, os.environ.get("THOUGHTSCOPE_ORM_URL", ""))
        out["orm_url"] = st.text_input(
            "ORM server URL (empty: the PRM's server, or here)", key=ORM_URL,
            help="An inference server (vLLM --runner pooling for outcome models) serving the ORM.",
        ).strip() or None
    return out


def check_orm(models: dict) -> None:
    """Raise ConfigError for an ORM server URL given without an ORM (before anything loads)."""
    if models.get("orm_url") and not models.get("orm"):
        raise ConfigError(
            f"The ORM server URL {models['orm_url']} is set but no ORM is named: give the served ORM's name "
            "(a local dir or hub id of the same checkpoint), or clear the URL."
        )
