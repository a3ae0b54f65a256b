"""Shared fixtures: tiny Hugging Face checkpoints built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_checkpoints import build_all


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """GPT-2 and Qwen2 policies plus head PRMs, saved with save_pretrained (see tiny_checkpoints)."""
    return build_all(tmp_path_factory.mktemp("tiny_hf"))
