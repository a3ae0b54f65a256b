"""ThoughtScope Streamlit entry point: page routing and shared resources only."""

from __future__ import annotations

import pandas  # noqa: F401 - see below
import streamlit as st

from models.device import pick_device
from reasoning_viz import resources

# pandas is imported above, before any session's script thread: plotly imports it lazily, and
# sessions drawing their first charts at once raced on that import ("partially initialized module
# 'pandas' has no attribute 'Series'"; tests/test_browser_load.py, eight sessions at once).
st.set_page_config(page_title="ThoughtScope", page_icon="🌳", layout="wide")

resources.job_registry()
try:
    resources.run_store()
except Exception as exc:  # noqa: BLE001 - a bad database must not take the app down
    st.error(f"Runs will not be saved: {exc}\n\nSet THOUGHTSCOPE_DB to another file or fix the database.")

PAGES = [
    st.Page("reasoning_viz/pages/search.py", title="Search", icon="🔎", default=True),
    st.Page("reasoning_viz/pages/replay.py", title="Replay", icon="⏯", url_path="replay"),
    st.Page("reasoning_viz/pages/runs.py", title="Runs", icon="🗂", url_path="runs"),
    st.Page("reasoning_viz/pages/compare.py", title="Compare", icon="⚖", url_path="compare"),
    st.Page("reasoning_viz/pages/scaling.py", title="Scaling", icon="📈", url_path="scaling"),
    st.Page("reasoning_viz/pages/home.py", title="About", icon="🌳", url_path="about"),
]
st.sidebar.caption(f"Models run on: {pick_device(None)}")
warmup = resources.warm_default_models()
if warmup.state == "loading":
    st.sidebar.caption(warmup.line())
elif warmup.state == "failed":
    st.sidebar.warning(warmup.line())
st.navigation(PAGES).run()
