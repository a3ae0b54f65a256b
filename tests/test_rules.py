"""Hand-computed checks of the scoring rules, answer choosers and config validation."""

from __future__ import annotations

import math
import re

import pytest

from search import Budget, ConfigError, get_strategy
from search.answer import Candidate, choose
from search.scoring import (
    ChildStats,
    aggregate,
    majority_votes,
    priors_from_logprobs,
    puct,
    rank_children,
    uct,
    weighted_votes,
)


def test_uct_by_hand() -> None:
    # Q 0.5, n 2, N 10, c 1.4: exploration = 1.4 * sqrt(ln 10 / 2) = 1.4 * 1.07298 = 1.50217
    choice = uct(ChildStats(node=3, q=0.5, visits=2, prior=0.1), parent_visits=10, c=1.4)
    assert choice.exploration == pytest.approx(1.4 * math.sqrt(math.log(10) / 2))
    assert choice.exploration == pytest.approx(1.502176, abs=1e-6)
    assert choice.score == pytest.approx(0.5 + 1.502176, abs=1e-6)


def test_uct_puts_unvisited_children_first() -> None:
    ranked = rank_children([ChildStats(1, 0.9, 5, 0.5), ChildStats(2, 0.0, 0, 0.5)], parent_visits=5, c=1.0, rule="uct")
    assert [c.node for c in ranked] == [2, 1]
    assert ranked[0].to_json()["score"] == 1e9  # infinity is stored as a JSON-safe sentinel


def test_puct_by_hand() -> None:
    # Q 0.4 + c 2 * P 0.25 * sqrt(16) / (1 + 3) = 0.4 + 0.5 = 0.9
    choice = puct(ChildStats(node=4, q=0.4, visits=3, prior=0.25), parent_visits=16, c=2.0)
    assert choice.exploration == pytest.approx(0.5)
    assert choice.score == pytest.approx(0.9)


def test_rank_children_breaks_ties_by_lower_id() -> None:
    ranked = rank_children([ChildStats(7, 0.5, 1, 0.5), ChildStats(5, 0.5, 1, 0.5)], 2, 1.0, "puct")
    assert [c.node for c in ranked] == [5, 7]


@pytest.mark.parametrize(
    ("how", "expected"),
    [("min", 0.2), ("prod", 0.9 * 0.2 * 0.5), ("last", 0.5), ("mean", (0.9 + 0.2 + 0.5) / 3)],
)
def test_aggregations_by_hand(how: str, expected: float) -> None:
    assert aggregate([0.9, 0.2, 0.5], how) == pytest.approx(expected)


def test_aggregate_rejects_empty_and_unknown() -> None:
    with pytest.raises(ValueError, match="empty"):
        aggregate([], "min")
    with pytest.raises(ValueError, match="aggregation must be one of"):
        aggregate([0.5], "median")


def test_votes_by_hand() -> None:
    assert majority_votes(["12", "7", "12", None, "7", "12"]) == [("12", 3.0), ("7", 2.0)]
    # ties go to the answer seen first
    assert majority_votes(["b", "a", "a", "b"]) == [("b", 2.0), ("a", 2.0)]
    weighted = weighted_votes([("12", 0.2), ("7", 0.9), ("12", 0.3), (None, 5.0)])
    assert weighted == [("7", 0.9), ("12", pytest.approx(0.5))]


def test_priors_are_a_softmax_of_length_normalised_logprobs() -> None:
    priors = priors_from_logprobs([-2.0, -1.0], [2, 1])  # both normalise to -1.0
    assert priors == pytest.approx([0.5, 0.5])
    priors = priors_from_logprobs([0.0, math.log(0.5)], [1, 1])
    assert priors == pytest.approx([2 / 3, 1 / 3])


def test_answer_choosers_differ_on_the_same_candidates() -> None:
    candidates = [
        Candidate(1, "12", 0.30),
        Candidate(2, "12", 0.35),
        Candidate(3, "7", 0.90),
        Candidate(4, None, 0.99),
    ]
    assert choose("argmax", candidates).answer == "7"
    majority = choose("majority", candidates)
    assert (majority.answer, majority.node) == ("12", 2)
    assert choose("prm_vote", candidates).answer == "7"  # 0.90 > 0.65
    assert choose("prm_vote", candidates).table == [{"answer": "7", "votes": 0.9}, {"answer": "12", "votes": 0.65}]
    assert choose("argmax", []).answer is None


@pytest.mark.parametrize(
    ("strategy", "config", "message"),
    [
        ("beam", {"n": 4, "beam_width": 8}, "beam_width (8) cannot be larger than n (4)"),
        ("beam", {"n": 10, "beam_width": 4}, "must be a multiple of beam_width"),
        ("mcts", {"c": -1.0}, "c must be >= 0"),
        ("mcts", {"simulations": 0}, "simulations must be at least 1"),
        ("mcts", {"value_source": "oracle"}, "value_source must be one of prm, rollout, mix"),
        ("mcts", {"value_source": "rollout", "temperature": 0.0}, "rollouts at temperature 0 are identical"),
        ("greedy", {"temperature": 0.7}, "greedy uses temperature 0"),
        ("self_consistency", {"temperature": 0.0}, "needs temperature > 0"),
        ("best_of_n", {"aggregation": "median"}, "aggregation must be one of"),
        ("best_of_n", {"answer_method": "most_visits"}, "answer_method must be one of"),
        ("beam", {"score_source": "self_eval"}, "also set self_evaluate=True"),
        ("beam", {"beam_size": 4}, "beam has no knob 'beam_size'"),
        ("beam", {"temperature": -0.1}, "temperature must be >= 0"),
    ],
)
def test_config_validation_messages(strategy: str, config: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        get_strategy(strategy).make_config(config)
    assert message in str(error.value)


@pytest.mark.parametrize("field", ["max_nodes", "max_tokens", "max_seconds"])
def test_zero_budget_is_refused(field: str) -> None:
    with pytest.raises(ConfigError, match=f"Budget {field} must be positive"):
        Budget(**{field: 0})


def test_configs_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        get_strategy("beam").config_cls(0.5)  # type: ignore[misc]


def test_unknown_strategy_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"choose one of .*beam.*mcts"):
        get_strategy("alphago")


@pytest.mark.parametrize(
    ("strategy", "pairs", "message"),
    [
        ("best_of_n", ["self_evaluate=maybe"], "not a valid bool"),
        ("mcts", ["distinct=2"], "not a valid bool"),
        ("beam", ["n=lots"], "not a valid int"),
        ("beam", ["n=2.5"], "not a valid int"),
        ("mcts", ["c=high"], "not a valid float"),
        ("mcts", ["c=nan"], "finite"),
        ("beam", ["max_step_tokens=many"], "not a valid int or None"),
        ("mcts", ["backup=median"], "backup must be one of mean, max"),
        ("best_of_n", ["ranker=judge"], "ranker must be one of prm, orm"),
        ("beam", ["width4"], "must look like name=value"),
        ("beam", ["beam_size=3"], "has no knob 'beam_size'"),
    ],
)
def test_knob_strings_that_do_not_parse_are_refused(strategy: str, pairs: list[str], message: str) -> None:
    spec = get_strategy(strategy)
    with pytest.raises(ConfigError, match=re.escape(message)):
        spec.make_config(spec.config_cls.parse_pairs(pairs, strategy))


@pytest.mark.parametrize(
    ("values", "message"),
    [({"self_evaluate": "maybe"}, "not a valid bool"), ({"n": True}, "not a valid int"), ({"n": 2.5}, "valid int")],
)
def test_loose_values_are_type_checked_too(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        get_strategy("best_of_n").make_config(values)


def test_knob_strings_parse_by_the_field_types() -> None:
    spec = get_strategy("mcts")
    pairs = ["self-evaluate=yes", "distinct=false", "max_step_tokens=none", "c=1.5", "simulations=8", "rule=uct"]
    config = spec.make_config(spec.config_cls.parse_pairs(pairs, "mcts"))
    assert (config.self_evaluate, config.distinct, config.max_step_tokens) == (True, False, None)
    assert (config.c, config.simulations, config.rule) == (1.5, 8, "uct")
    assert spec.make_config({"simulations": "8", "c": "2"}).c == 2.0


def test_choices_are_declared_once_on_the_fields() -> None:
    from search.answer import ANSWER_METHODS
    from search.scoring import AGGREGATIONS

    mcts = get_strategy("mcts").config_cls
    assert mcts.knob_choices("backup") == ("mean", "max")
    assert mcts.knob_choices("aggregation") == AGGREGATIONS
    assert set(mcts.knob_choices("answer_method")) <= set(ANSWER_METHODS)
    assert get_strategy("beam").config_cls.knob_choices("n") is None


@pytest.mark.parametrize("strategy", ["self_consistency", "best_of_n", "beam", "dvts", "mcts"])
@pytest.mark.parametrize("size", [1, 2, 4, 16, 64])
def test_a_strategy_scales_itself_to_a_budget(strategy: str, size: int) -> None:
    spec = get_strategy(strategy)
    assert spec.scale is not None
    config = spec.make_config(spec.scale(size))
    assert size in config.to_json().values()


def test_strategies_without_a_size_have_no_scale() -> None:
    assert get_strategy("greedy").scale is None and get_strategy("sampling").scale is None


def test_ranker_and_backup_come_from_the_config_not_a_field_name() -> None:
    assert get_strategy("best_of_n").make_config({"ranker": "orm", "answer_method": "argmax"}).ranks_with == "orm"
    assert get_strategy("beam").make_config(None).ranks_with == "prm"
    assert get_strategy("mcts").make_config({"backup": "max"}).backs_up_by == "max"
    assert get_strategy("beam").make_config(None).backs_up_by == "mean"


def test_mcts_reports_its_progress_from_the_tree() -> None:
    from search import Tree

    progress = get_strategy("mcts").progress
    tree = Tree()
    tree.meta = {"config": {"simulations": 4}}
    assert progress is not None and progress(tree) == 0.0
    assert get_strategy("beam").progress is None
