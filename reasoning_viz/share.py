"""The "copy link to this moment" box: the absolute link, with Streamlit's own copy button."""

from __future__ import annotations

import streamlit as st

from reasoning_viz.runs_table import base_url, run_link


def moment_link(run_id: int, event: int | None = None) -> None:
    """Show the link that reopens this run (at `event`, on the Replay page) in another browser."""
    with st.popover("🔗 Link to this moment" if event is not None else "🔗 Link to this run"):
        st.code(run_link(base_url(getattr(st.context, "url", None)), run_id, event=event), language=None)
        st.caption("Copy it with the button at the box's right.")
