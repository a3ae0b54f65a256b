"""NaN / infinite numbers from models are refused where they enter, naming the model, path and step."""

from __future__ import annotations

import json
import math

import pytest

from search import Models, Tree, run_search
from search.events import EventKind, events_from_json
from search.fakes import ScriptedPolicy, ScriptedPRM
from search.models import Judgement, Proposal, StepScores
from tests.engine_cases import CASES, PROBLEM

BAD = [math.nan, math.inf, -math.inf]


class BadPRM(ScriptedPRM):
    """Returns `bad` for the second step of every path that has one (the field report: one NaN step)."""

    def __init__(self, bad: float, name: str = "nan-prm") -> None:
        super().__init__(name=name)
        self.bad = bad

    def score(self, problem, paths):
        out = super().score(problem, paths)
        return [
            StepScores(tuple(self.bad if i == 1 else s for i, s in enumerate(r.scores)), r.tokens_read) for r in out
        ]


class BadLogprobPolicy(ScriptedPolicy):
    """Every fifth proposal carries a non-finite token log-probability; P(yes) is NaN too."""

    def __init__(self, bad: float) -> None:
        super().__init__(name="nan-policy")
        self.bad = bad

    def propose(self, prompts, k, **kwargs):
        out = super().propose(prompts, k, **kwargs)
        for group in out:
            for j, p in enumerate(group):
                if j % 5 == 1:
                    group[j] = Proposal(p.text, p.token_count, (*p.token_logprobs[:-1], self.bad), p.ended)
        return out

    def judge(self, questions):
        return [
            Judgement(self.bad if i % 3 == 0 else v.p_yes, v.words, v.token_count)
            for i, v in enumerate(super().judge(questions))
        ]


def _json_clean(result) -> None:
    """The serializer never sees a NaN: the whole log dumps with allow_nan=False and reloads."""
    dumped = json.dumps([e.to_json() for e in result.events], allow_nan=False)
    Tree.from_events(events_from_json(json.loads(dumped)))


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_prm_number_fails_the_run_naming_model_path_and_step(case, bad) -> None:
    strategy, config = CASES[case]
    result = run_search(
        PROBLEM, task="arith", strategy=strategy, config=config, models=Models(policy=ScriptedPolicy(), prm=BadPRM(bad))
    )
    if result.status == "finished":  # a strategy that never scored a path of two steps
        assert not any(n.depth >= 2 and "prm" in n.scores for n in result.tree)
        return
    assert result.status == "failed"
    assert "ModelOutputError" in result.error and "'nan-prm'" in result.error
    assert f"returned {float(bad)}" in result.error and "step 2 on path 0 -> " in result.error
    assert "not JSON compliant" not in result.error
    _json_clean(result)


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("case", sorted(CASES))
def test_unscored_mode_goes_on_records_events_and_counts_them(case, bad) -> None:
    strategy, config = CASES[case]
    result = run_search(
        PROBLEM,
        task="arith",
        strategy=strategy,
        config={**config, "on_bad_number": "unscored"},
        models=Models(policy=ScriptedPolicy(), prm=BadPRM(bad)),
    )
    assert result.status == "finished", result.error
    unscored = [e for e in result.events if e.kind == EventKind.UNSCORED]
    assert len(unscored) == result.tree.unscored
    for event in unscored:
        assert event.data["model"] == "nan-prm" and event.data["step"] == 2
        assert event.data["value"] == str(float(bad))
        assert "prm" not in result.tree.nodes[event.data["node"]].scores
    _json_clean(result)


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("case", ["mcts_puct_prm", "mcts_mix_max_selfeval", "beam"])
def test_bad_logprobs_and_p_yes_are_refused_too(case, bad) -> None:
    strategy, config = CASES[case]
    config = {**config, "self_evaluate": True}
    models = Models(policy=BadLogprobPolicy(bad), prm=ScriptedPRM())
    failed = run_search(PROBLEM, task="arith", strategy=strategy, config=config, models=models)
    assert failed.status == "failed" and "'nan-policy'" in failed.error
    assert "log-probability" in failed.error or "P(yes)" in failed.error
    _json_clean(failed)
    going = run_search(
        PROBLEM, task="arith", strategy=strategy, models=models, config={**config, "on_bad_number": "unscored"}
    )
    assert going.status == "finished", going.error
    sources = {e.data["source"] for e in going.events if e.kind == EventKind.UNSCORED}
    assert {"logprob", "self_eval"} <= sources
    assert any(n.logprob is None for n in going.tree)
    _json_clean(going)


class ShortPRM(ScriptedPRM):
    def score(self, problem, paths):
        return [StepScores(r.scores[:-1], r.tokens_read) for r in super().score(problem, paths)]


def test_a_prm_returning_too_few_scores_is_refused_with_a_sentence() -> None:
    result = run_search(
        PROBLEM, task="arith", strategy="greedy", models=Models(policy=ScriptedPolicy(), prm=ShortPRM())
    )
    assert result.status == "failed" and "scores for a path of" in result.error


def test_an_unscored_run_records_and_replays_through_sqlite(tmp_path) -> None:
    from storage import Store

    with Store.open(tmp_path / "runs.db") as store:
        recorder = store.recorder(name="nan")
        run_search(
            PROBLEM,
            task="arith",
            strategy="beam",
            config={"n": 4, "beam_width": 2, "on_bad_number": "unscored"},
            models=Models(policy=ScriptedPolicy(), prm=BadPRM(math.nan)),
            sinks=[recorder],
        )
        recorder.close()
        tree = store.tree(recorder.run_id)
    assert tree.status == "finished" and tree.unscored > 0


def test_a_refused_log_probability_is_stored_as_null(tmp_path) -> None:
    from sqlalchemy import select

    from storage import Store
    from storage.schema import NodeRow

    with Store.open(tmp_path / "runs.db") as store:
        recorder = store.recorder(name="nan logprob")
        config = {"n": 5, "beam_width": 5, "on_bad_number": "unscored"}
        models = Models(policy=BadLogprobPolicy(math.nan), prm=ScriptedPRM())
        run_search(PROBLEM, task="arith", strategy="beam", config=config, models=models, sinks=[recorder])
        recorder.close()
        with store.engine.connect() as conn:
            logprobs = conn.execute(select(NodeRow.logprob).where(NodeRow.run_id == recorder.run_id)).scalars().all()
        assert None in logprobs and store.tree(recorder.run_id).unscored > 0
