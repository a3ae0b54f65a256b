"""ThoughtScope Streamlit entry point: page routing and shared resources only."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="ThoughtScope", page_icon="🌳", layout="wide")

PAGES = [
    st.Page("reasoning_viz/pages/home.py", title="Home", icon="🌳", default=True),
]

st.navigation(PAGES).run()
