"""Shared fixtures: tiny Hugging Face checkpoints built once per test session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tiny_checkpoints import build_all


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """GPT-2 and Qwen2 policies plus head PRMs, saved with save_pretrained (see tiny_checkpoints)."""
    return build_all(tmp_path_factory.mktemp("tiny_hf"))


@pytest.fixture(autouse=True)
def _private_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No test may touch ./thoughtscope.db: each gets its own database file by default.

    The app's job registry is one per process (one server, one database); AppTests share the
    process, so each test starts with an empty registry: a job left by an earlier test (its run 1
    in another database) must not answer for this test's run 1.
    """
    db = tmp_path / "thoughtscope-test.db"
    monkeypatch.setenv("THOUGHTSCOPE_DB", str(db))
    _clear_job_registry()
    yield db
    _clear_job_registry()


def _clear_job_registry() -> None:
    resources = sys.modules.get("reasoning_viz.resources")
    if resources is not None:
        resources.job_registry.clear()


@pytest.fixture(scope="session")
def shared_app_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, shared_browser):
    """One `streamlit run app.py` for every browser test module (tests/test_browser.py `server`),
    handed out once its Search page is ready."""
    from tests.test_browser import app_server, wait_ready

    with app_server(tmp_path_factory, request) as url:
        wait_ready(shared_browser, url)
        yield url


@pytest.fixture(scope="session")
def shared_browser():
    """One headless Chromium for every browser test module (tests/test_browser.py `browser`)."""
    from tests.test_browser import chromium_browser

    with chromium_browser() as chromium:
        yield chromium
