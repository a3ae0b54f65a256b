"""Home page: what ThoughtScope is and which search strategies it offers."""

from __future__ import annotations

import streamlit as st

from search import all_strategies

st.title("ThoughtScope")
st.write(
    "Grow, inspect and replay the reasoning trees that test-time search builds: "
    "sampling, self-consistency, best-of-N, PRM-guided beam search, DVTS and MCTS."
)
st.subheader("Strategies")
for name, spec in all_strategies().items():
    with st.expander(f"{name}: {spec.summary}"):
        st.table(
            {
                "knob": [k for k, _, _ in spec.config_cls.knobs()],
                "default": [repr(d) for _, d, _ in spec.config_cls.knobs()],
                "meaning": [h for _, _, h in spec.config_cls.knobs()],
            }
        )
