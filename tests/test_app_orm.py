"""The Search page's Models section offers the outcome reward model (ORM) and its server, as `--orm` / `--orm-url`.

AppTest drives the real page; the policy and the ORM are served by the small local HTTP servers of
tests/test_server_backend.py (answering like vLLM), the PRM is the nano pack's in process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_server_backend import POLICY, FakeVLLM, _pooling_answer

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(scope="module")
def orm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_reward_models import build_lookalikes

    return build_lookalikes(tmp_path_factory.mktemp("app_orm"))["orm-seq"]


@pytest.fixture
def servers(orm_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """(policy server, ORM pooling server), and a fresh run database."""
    from models.loading import load_tokenizer

    monkeypatch.setenv("THOUGHTSCOPE_DB", str(tmp_path / "runs.db"))
    for name in ("THOUGHTSCOPE_POLICY_URL", "THOUGHTSCOPE_PRM_URL", "THOUGHTSCOPE_ORM_URL"):
        monkeypatch.delenv(name, raising=False)
    tokenizer = load_tokenizer(POLICY, Path(POLICY), POLICY, False)
    policy = FakeVLLM(tokenizer)
    policy.reply_text = "Answer: 7\n"
    orm = FakeVLLM(tokenizer, served=str(orm_checkpoint))
    orm.pooling = _pooling_answer
    yield policy, orm
    policy.close()
    orm.close()


def _fill(at: AppTest, policy_url: str, orm: str, orm_url: str, recipe: str = "orm-seq") -> None:
    next(r for r in at.radio if r.label == "Models").set_value("Inference server").run()
    inputs = {t.label: t for t in at.text_input}
    inputs["Policy server URL"].set_value(policy_url)
    inputs["Served policy"].set_value(POLICY)
    next(t for t in at.text_input if t.label.startswith("ORM (optional")).set_value(orm)
    next(t for t in at.text_input if t.label.startswith("ORM server URL")).set_value(orm_url)
    next(s for s in at.selectbox if s.label == "ORM recipe").set_value(recipe)
    next(s for s in at.selectbox if s.label == "Strategy").set_value("best_of_n").run()
    next(s for s in at.selectbox if s.key == "knob-best_of_n-ranker").set_value("orm")
    next(s for s in at.selectbox if s.key == "knob-best_of_n-answer_method").set_value("argmax")
    next(n for n in at.number_input if n.key == "knob-best_of_n-n").set_value(2).run()


def _start(at: AppTest) -> None:
    next(b for b in at.sidebar.button if "Start search" in b.label).click().run()


def test_a_served_orm_ranks_best_of_n_from_the_app(servers: tuple[Any, Any], orm_checkpoint: Path) -> None:
    policy, orm = servers
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    _fill(at, policy.url, str(orm_checkpoint), orm.url)
    _start(at)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    metrics: dict[str, Any] = {}
    for _ in range(120):
        metrics = {m.label: m.value for m in at.metric}
        if metrics.get("status") == "finished":
            break
        time.sleep(0.5)
        at.run()
    assert metrics.get("status") == "finished", metrics
    pooled = [r for r in orm.requests if r["path"] == "/pooling"]
    assert pooled and pooled[0]["task"] == "classify"  # the ORM scored the finished chains on its server
    assert len(pooled[0]["input"]) == 2


@pytest.mark.parametrize(
    ("orm", "orm_url", "message"),
    [
        ("no-such-orm", "server", "does not serve 'no-such-orm'"),
        ("", "server", "no ORM is named"),
        ("checkpoint", "http://127.0.0.1:9", "127.0.0.1:9"),
    ],
)
def test_a_wrong_orm_choice_is_refused_before_the_search_starts(
    servers: tuple[Any, Any], orm_checkpoint: Path, orm: str, orm_url: str, message: str
) -> None:
    """The served ORM is checked against the server's /v1/models (or reached at all) when the models load."""
    policy, server = servers
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    _fill(at, policy.url, str(orm_checkpoint) if orm == "checkpoint" else orm,
          server.url if orm_url == "server" else orm_url)
    _start(at)
    assert not at.exception, at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert not [m for m in at.metric if m.label == "status"]  # no search started
    assert server.requests == []  # nothing scored
