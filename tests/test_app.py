"""The Streamlit app's pages under streamlit.testing.v1.AppTest."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from search import all_strategies

APP = Path(__file__).resolve().parents[1] / "app.py"


def test_app_starts_and_lists_every_strategy() -> None:
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception, app.exception
    assert app.title[0].value == "ThoughtScope"
    labels = [expander.label for expander in app.expander]
    for name in all_strategies():
        assert any(label.startswith(f"{name}:") for label in labels)
