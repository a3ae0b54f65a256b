"""self_check=recompute: the policy rewrites each step's claim greedily (SelfCheck, Miao et al. 2023);
a step whose claim the rewrite does not repeat scores 0, so a search ranking by PRM x self-evaluation
drops the slip a PRM rated highly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pytest

from search import ConfigError, Models, run_search
from search.events import EventKind
from search.models import Proposal, StepScores
from search.tasks import TASKS

PROBLEM = "Use 3 6 9 11 to make 24."
SLIP, GOOD = "6 - 11 = -4 (left: -4 3 9)", "11 - 3 = 8 (left: 6 8 9)"
#: What the policy writes greedily after each move's left-hand side.
REDONE = {"6 - 11 =": " -5 (left: -5 3 9)", "11 - 3 =": " 8 (left: 9 6 8)"}


class MovesPolicy:
    """Samples the slip and the good move under the root; greedily it rewrites a move's claim."""

    name = "moves-policy"
    #: (move, its tokens' log-probabilities) sampled under the root; the greedy rewrite of each claim
    moves = ((SLIP, (-0.5,) * 6), (GOOD, (-0.5,) * 6))
    redone = REDONE

    def __init__(self) -> None:
        self.greedy_prompts: list[str] = []

    def propose(self, prompts: Sequence[str], k: int, *, temperature: float, max_new_tokens: int, stop: str,
                seed: int) -> list[list[Proposal]]:
        if temperature == 0.0:
            self.greedy_prompts += prompts
            return [[Proposal(self.redone[prompt.rpartition("\n")[2]], 3, (-0.1,) * 3)] for prompt in prompts]
        return [[Proposal(text, len(logprobs), logprobs) for text, logprobs in self.moves][:k] for _ in prompts]


class FondOfTheSlip:
    """A PRM that rates the slip 0.9 and the good move 0.5."""

    name = "fond-prm"

    def score(self, problem: str, paths: Sequence[Sequence[str]]) -> list[StepScores]:
        return [StepScores(tuple(0.9 if step == SLIP else 0.5 for step in steps), 10) for steps in paths]


def grow(**knobs) -> tuple:
    policy = MovesPolicy()
    config = {"breadth": 1, "proposals": 2, "max_depth": 1, "temperature": 1.0, **knobs}
    result = run_search(PROBLEM, task="countdown", strategy="tot_bfs", models=Models(policy, FondOfTheSlip()),
                        config=config)
    by_text = {node.text: node for node in result.tree if node.text}
    return result, by_text, policy


def test_recompute_scores_the_slip_zero_and_the_search_keeps_the_good_move() -> None:
    result, nodes, policy = grow(self_evaluate=True, self_check="recompute", score_source="prm_x_self_eval")
    slip, good = nodes[SLIP], nodes[GOOD]
    assert (slip.scores["self_eval"], good.scores["self_eval"]) == (0.0, 1.0)  # "8 (left: 9 6 8)": same numbers left
    assert slip.self_eval["words"] == "recomputed: 6 - 11 = -5 (left: -5 3 9)"
    assert slip.self_eval["question"].endswith("6 - 11 =") and len(policy.greedy_prompts) == 2
    assert "below the best 1" in slip.prune_reason and "below" not in (good.prune_reason or "")  # good kept
    judged = [e for e in result.events if e.kind == EventKind.SELF_EVALUATED]
    assert len(judged) == 2 and result.spend["tokens_generated"] == 2 * 6 + 2 * 3  # rewrites are generated tokens
    _, plain, _ = grow()  # ranked by the PRM alone, the slip wins the one slot
    assert "below the best 1" in plain[GOOD].prune_reason and "below" not in (plain[SLIP].prune_reason or "")


def test_a_step_without_a_claim_is_left_to_the_prm() -> None:
    task = TASKS["countdown"]
    assert task.recompute_prefix("Answer: (11 - 3) * (9 - 6) = 24") is None
    assert task.recompute_prefix("I think 6 - 3 is 3") is None
    assert task.recompute_prefix(SLIP) == "6 - 11 ="
    assert not task.same_claim(SLIP, "6 - 11 = -5 (left: -5 3 9)")
    assert not task.same_claim(SLIP, "6 - 11 = no idea")
    arith = TASKS["arith"]
    assert arith.recompute_prefix("12 * 3 = 36") == "12 * 3 ="
    assert arith.same_claim("12 * 3 = 36", "12 * 3 =  36") and not arith.same_claim("12 * 3 = 36", "12 * 3 = 38")
    assert arith.recompute_prefix("Answer: 36") is None


def test_recompute_without_self_evaluation_is_refused() -> None:
    with pytest.raises(ConfigError, match="self_check=recompute"):
        grow(self_check="recompute")


def test_the_app_says_what_the_recomputation_found() -> None:
    from reasoning_viz.narration import narrate, self_check_words

    result, nodes, _ = grow(self_evaluate=True, self_check="recompute", score_source="prm_x_self_eval")
    assert self_check_words(nodes[SLIP].self_eval) == "recomputed as '6 - 11 = -5 (left: -5 3 9)': disagrees, scored 0"
    assert self_check_words(nodes[GOOD].self_eval).endswith("agrees, scored 1")
    judged = next(e for e in result.events if e.kind == EventKind.SELF_EVALUATED and e.data["node"] == nodes[SLIP].id)
    assert "disagrees, scored 0" in narrate(judged, result.tree)
    assert self_check_words({"p_yes": 0.83, "words": "yes"}) == "P(yes) = 0.83 ('yes')"  # self_check=ask


def test_the_cli_tree_shows_a_failed_recheck_and_how_to_turn_it_off() -> None:
    from cli.common import node_label

    _, nodes, _ = grow(self_evaluate=True, self_check="recompute", score_source="prm_x_self_eval")
    slip, good = node_label(nodes[SLIP], None), node_label(nodes[GOOD], None)
    assert "recheck ✗" in slip and slip.endswith("[policy: 6 - 11 = -5 (left: -5 3 9)]")
    assert "recheck" not in good and "policy:" not in good
    with pytest.raises(ConfigError, match="self_evaluate=false self_check=ask doubt_below=0 score_source=prm"):
        grow(self_check="recompute", score_source="prm_x_self_eval")


#: A move on a number that is not on the list (18), repeated by the greedy rewrite: only the token the
#: policy rarely writes (p 0.01 for "18" after "left: 3 6 9 11") gives it away.
ILLEGAL = "18 - 6 = 12 (left: 3 9 11 12)"


class DoubtfulPolicy(MovesPolicy):
    """Samples the illegal move (one token at p 0.01) and the good move (every token at p 0.61)."""

    moves = ((ILLEGAL, (-4.6, -0.1, -0.1, -0.1, -0.1, -0.1)), (GOOD, (-0.5,) * 6))
    redone: ClassVar[dict[str, str]] = {**REDONE, "18 - 6 =": " 12 (left: 3 9 11 12)"}


class FondOfTheIllegalMove:
    name = "fond-prm"

    def score(self, problem: str, paths: Sequence[Sequence[str]]) -> list[StepScores]:
        return [StepScores(tuple(0.9 if step == ILLEGAL else 0.5 for step in steps), 10) for steps in paths]


def test_doubt_below_fails_a_move_the_policy_wrote_with_a_token_it_rarely_writes() -> None:
    """On Game-of-24 validation trees the recheck passed moves on numbers not on the list ("18 - 6"
    from "6 12 12"): the greedy rewrite repeats them.  The policy gave such a token little probability
    when it sampled it; doubt_below scores the move 0, and the search keeps the good move."""
    from cli.common import node_label
    from reasoning_viz.narration import self_check_words

    def grow_doubtful(**knobs) -> dict:
        config = {"breadth": 1, "proposals": 2, "max_depth": 1, "temperature": 1.0, "self_evaluate": True,
                  "self_check": "recompute", "score_source": "prm_x_self_eval", **knobs}
        result = run_search(PROBLEM, task="countdown", strategy="tot_bfs",
                            models=Models(DoubtfulPolicy(), FondOfTheIllegalMove()), config=config)
        return {node.text: node for node in result.tree if node.text}

    plain = grow_doubtful()  # the rewrite repeats the illegal move: it passes and outranks the good one
    assert plain[ILLEGAL].scores["self_eval"] == 1.0 and "below the best 1" in plain[GOOD].prune_reason
    nodes = grow_doubtful(doubt_below=0.1)
    illegal, good = nodes[ILLEGAL], nodes[GOOD]
    assert (illegal.scores["self_eval"], good.scores["self_eval"]) == (0.0, 1.0)
    assert illegal.self_eval["doubt"] == pytest.approx(0.0101, abs=1e-4) and "doubt" not in good.self_eval
    assert "below the best 1" in illegal.prune_reason and "below" not in (good.prune_reason or "")
    assert self_check_words(illegal.self_eval).endswith("tokens at p = 0.01: doubted, scored 0")
    assert node_label(illegal, None).endswith("[doubted: a token at p 0.01]")
    with pytest.raises(ConfigError, match="doubt_below fails a recheck: also set self_check=recompute"):
        grow(doubt_below=0.1)
    with pytest.raises(ConfigError, match=r"doubt_below must be in \[0, 1\)"):
        grow_doubtful(doubt_below=1.5)
