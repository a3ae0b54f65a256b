"""`answer_from_steps`: once countdown moves leave one number, the answer line is the moves transcribed.

A nano policy that found three good moves often miscopies them into its ``Answer:`` line
("13 - 1, 1 + 1, 12 * 2" answered as "(1 - 1) * (1 + 13) = 24"); with the knob on, the engine
writes that line from the moves and spends no tokens on it.  Nothing is checked on the way:
a slip in a move stays in the answer, for the exact checker to grade.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from search import Models, run_search
from search.config import ConfigError, StrategyConfig
from search.fakes import split_prompt
from search.models import Proposal, StepScores
from search.presets import PRESETS
from search.tasks import get_task
from search.tasks.countdown import CountdownTask

TASK = CountdownTask()
P24 = "Use 4 5 6 10 to make 24."
GOOD = ["10 - 4 = 6 (left: 5 6 6)", "5 * 6 = 30 (left: 6 30)", "30 - 6 = 24 (left: 24)"]
#: What the nano policy wrote after three good moves (validation puzzle 1 1 1 13): a miscopied answer.
MISCOPIED = "Answer: (4 - 5) * (6 + 10) = 24"


def test_the_moves_are_transcribed_once_one_number_is_left() -> None:
    assert TASK.compose_answer(P24, GOOD) == "Answer: 5 * 6 - (10 - 4) = 24"
    assert TASK.check_answer(P24, TASK.extract_answer(TASK.compose_answer(P24, GOOD)), None)
    fractions = ["8 / 3 = 8/3 (left: 3 8 8/3)", "3 - 8/3 = 1/3 (left: 1/3 8)", "8 / 1/3 = 24 (left: 24)"]
    answer = TASK.compose_answer("Use 3 3 8 8 to make 24.", fractions)
    assert answer == "Answer: 8 / (3 - 8 / 3) = 24"
    assert TASK.check_answer("Use 3 3 8 8 to make 24.", TASK.extract_answer(answer), None)
    assert TASK.compose_answer("Use 2 3 4 to make 10.", ["2 * 3 = 6 (left: 4 6)", "6 + 4 = 10 (left: 10)"]) == (
        "Answer: 2 * 3 + 4 = 10"
    )


@pytest.mark.parametrize(
    "steps",
    [
        [],
        GOOD[:2],  # two numbers left: the policy still has a move to make
        ["10 - 4 = 6 (left: 5 6 6)", "5 * 7 = 35 (left: 6 35)", "35 - 6 = 29 (left: 29)"],  # 7 was never left
        ["10 - 4 = 6 (left: 5 6 6)", "5 * 6 is 30", "30 - 6 = 24 (left: 24)"],  # malformed
        [*GOOD[:2], "Answer: 30 - 6 = 24"],  # a final step is not a move
        [*GOOD, "Answer: 5 * 6 - (10 - 4) = 24"],  # already answered
    ],
)
def test_nothing_is_composed_unless_the_moves_determine_the_answer(steps: list[str]) -> None:
    assert TASK.compose_answer(P24, steps) is None


def test_a_slip_is_transcribed_as_written_and_graded_wrong() -> None:
    slipped = ["10 - 4 = 6 (left: 5 6 6)", "5 * 6 = 30 (left: 6 30)", "30 - 6 = 25 (left: 25)"]
    answer = TASK.compose_answer(P24, slipped)
    assert answer == "Answer: 5 * 6 - (10 - 4) = 25"
    assert TASK.check_answer(P24, TASK.extract_answer(answer), None) is False
    wrong_arithmetic = ["10 - 4 = 7 (left: 5 6 7)", "5 * 7 = 35 (left: 6 35)", "35 - 6 = 29 (left: 29)"]
    assert TASK.check_answer(P24, TASK.extract_answer(TASK.compose_answer(P24, wrong_arithmetic)), None) is False


def test_other_tasks_never_compose() -> None:
    assert get_task("arith").compose_answer("What is 2 + 3?", ["2 + 3 = 5"]) is None


class MovesThenMiscopy:
    """Proposes the good moves in order, then a miscopied answer line; counts the prompts it is asked."""

    name = "moves-then-miscopy"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def propose(self, prompts: Sequence[str], k: int, *, temperature: float, max_new_tokens: int, stop: str,
                seed: int) -> list[list[Proposal]]:
        self.prompts += prompts
        out = []
        for prompt in prompts:
            _, steps = split_prompt(prompt)
            text = GOOD[len(steps)] if len(steps) < len(GOOD) else MISCOPIED
            out.append([Proposal(text, 7, (-0.1,) * 7) for _ in range(k)])
        return out


class FlatPRM:
    name = "flat-prm"

    def score(self, problem: str, paths: Sequence[Sequence[str]]) -> list[StepScores]:
        return [StepScores(tuple(0.9 for _ in steps), 10) for steps in paths]


@pytest.mark.parametrize("strategy", ["greedy", "beam", "tot_bfs", "mcts"])
def test_with_the_knob_the_engine_writes_the_answer_and_spends_no_tokens_on_it(strategy: str) -> None:
    knobs = {"max_depth": 4, "answer_from_steps": True}
    small = {"beam": {"n": 2, "beam_width": 1}, "tot_bfs": {"breadth": 1, "proposals": 2},
             "mcts": {"simulations": 4, "expand_width": 1}}.get(strategy, {})
    policy = MovesThenMiscopy()
    result = run_search(P24, task="countdown", strategy=strategy, models=Models(policy=policy, prm=FlatPRM()),
                        config={**knobs, **small}, seed=1)
    assert result.answer == "5 * 6 - (10 - 4) = 24" and result.correct is True
    answers = [node for node in result.tree.terminals() if node.text.startswith("Answer:")]
    assert answers and all(node.text == "Answer: 5 * 6 - (10 - 4) = 24" and node.token_count == 0 for node in answers)
    assert all(len(split_prompt(prompt)[1]) < 3 for prompt in policy.prompts)  # never asked for the answer line


def test_without_the_knob_the_policy_writes_its_own_answer() -> None:
    policy = MovesThenMiscopy()
    result = run_search(P24, task="countdown", strategy="greedy", models=Models(policy=policy, prm=FlatPRM()),
                        config={"max_depth": 4}, seed=1)
    assert result.answer == "(4 - 5) * (6 + 10) = 24" and result.correct is False
    assert len(policy.prompts) == 4


def test_the_knob_is_a_boolean_with_help_and_every_countdown_preset_sets_it() -> None:
    assert StrategyConfig().answer_from_steps is False
    with pytest.raises(ConfigError):
        StrategyConfig.parse_knob("answer_from_steps", "maybe")
    assert StrategyConfig.parse_knob("answer_from_steps", "on") is True
    countdown = [preset for preset in PRESETS.values() if preset.task == "countdown"]
    assert countdown and all(preset.knobs.get("answer_from_steps") is True for preset in countdown)


def test_the_greedy_baseline_beside_a_search_writes_its_answer_the_same_way() -> None:
    from search.presets import greedy_knobs

    assert greedy_knobs(PRESETS["game24-tot"].knobs) == {"max_depth": 4, "answer_from_steps": True}
    assert greedy_knobs({"max_depth": 6, "n": 8, "max_step_tokens": 40}) == {"max_depth": 6, "max_step_tokens": 40}
