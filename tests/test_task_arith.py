"""The arith task: parsing, checking (never eval), generation, and bad problem text."""

from __future__ import annotations

import random

import pytest

from search.tasks import MAX_PROBLEM_CHARS, ProblemError, get_task
from search.tasks.arith import ArithTask, parse_problem

TASK = ArithTask()
PROBLEM = "Start with 17. Add 25. Multiply by 3. Subtract 14. What is the result?"


def test_solution_and_reference() -> None:
    assert TASK.solution(PROBLEM) == ["17 + 25 = 42", "42 * 3 = 126", "126 - 14 = 112", "Answer: 112"]
    assert TASK.reference_answer(PROBLEM) == "112"


def test_step_checker_follows_the_correct_chain() -> None:
    assert TASK.check_step(PROBLEM, [], "17 + 25 = 42")
    assert not TASK.check_step(PROBLEM, [], "17 + 25 = 43")  # slip
    assert not TASK.check_step(PROBLEM, [], "17 * 25 = 425")  # wrong operation
    assert not TASK.check_step(PROBLEM, ["17 + 25 = 43"], "43 * 3 = 129")  # built on a slip
    assert TASK.check_step(PROBLEM, TASK.solution(PROBLEM)[:3], "Answer: 112")
    assert not TASK.check_step(PROBLEM, TASK.solution(PROBLEM)[:3], "Answer: 113")
    assert not TASK.check_step(PROBLEM, [], "import os; os.system('rm -rf /')")


def test_answers_are_parsed_not_evaluated() -> None:
    assert TASK.check_answer(PROBLEM, "112", None)
    assert not TASK.check_answer(PROBLEM, "100 + 12", None)
    assert not TASK.check_answer(PROBLEM, "__import__('os')", None)
    assert not TASK.check_answer(PROBLEM, None, None)
    assert TASK.extract_answer("Answer:  112 ") == "112"
    assert TASK.extract_answer("42 * 3 = 126") is None


def test_division_must_be_exact() -> None:
    with pytest.raises(ProblemError, match="not an exact division"):
        parse_problem("Start with 10. Divide by 3. What is the result?")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("x" * (MAX_PROBLEM_CHARS + 1), "limit is"),
        ("What is 2 + 2?", "An arith problem looks like"),
    ],
)
def test_bad_problem_text_gets_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ProblemError, match=message):
        TASK.validate(text)


def test_generator_is_seeded_and_its_answers_check() -> None:
    first = [TASK.generate(random.Random(5), d) for d in range(1, 6)]
    second = [TASK.generate(random.Random(5), d) for d in range(1, 6)]
    assert first == second
    for difficulty in range(1, 6):
        for seed in range(50):
            problem = TASK.generate(random.Random(seed), difficulty)
            ops = len(parse_problem(problem.text).ops)
            assert 2 <= ops <= 6
            assert TASK.check_answer(problem.text, problem.answer, None)
            assert all(0 <= v <= 100 * (difficulty + 1) for v in parse_problem(problem.text).values())


def test_unknown_task_names_the_valid_ones() -> None:
    with pytest.raises(ProblemError, match="arith, countdown, freeform"):
        get_task("chess")


def test_freeform_extracts_boxed_answers() -> None:
    task = get_task("freeform")
    assert task.extract_answer(r"So the total is \boxed{\frac{1}{2}}.") == r"\frac{1}{2}"
    assert task.is_final(r"\boxed{400}")
    assert task.check_answer("q", "400", "400") is True
    assert task.check_answer("q", "400", None) is None
