"""Free-form math answers: extraction (Answer line, nested boxes, empty answers), math-verify
equivalence in grading and in votes, and math-verify bounded in threads (issue 15, items 4-5)."""

from __future__ import annotations

import threading
import time

import pytest

from search import Models, run_search
from search.answer import Candidate, choose
from search.answer_text import final_answer
from search.math_equivalence import MathVerifier, equivalent, matches_reference
from search.tasks import get_task
from search.tasks.base import ProblemError
from tests.test_answer_front_doors import ChainPolicy, FlatPRM

FREEFORM = get_task("freeform")
PROBLEM = "What is the value of the expression?"

# Equivalent (reference, answer) pairs: numbers, fractions, LaTeX forms, percent, thousands
# separators, sets, intervals, equations and expressions.  Text comparison matched none of them.
EQUIVALENT = [
    ("0.5", "1/2"),
    (r"\frac12", r"\frac{1}{2}"),
    ("1,000", "1000"),
    ("x=3", "3"),
    (r"2\sqrt3", r"\sqrt{12}"),
    ("(x+1)^2", "x^2+2x+1"),
    (r"50\%", "0.5"),
    (r"\{1,2\}", r"\{2,1\}"),
    ("[0,1)", r"\left[0, 1\right)"),
    (r"\dfrac{3}{4}", "0.75"),
    (r"\pi/2", r"\frac{\pi}{2}"),
    ("3.0", "3"),
    (r"1\,000", "1000"),
]
NOT_EQUIVALENT = [
    ("0.5", "0.51"),
    ("(x+1)^2", "x^2+1"),
    (r"\{1,2\}", r"\{1,3\}"),
    ("[0,1)", "[0,1]"),
    ("x=3", "4"),
    ("1,2", "12"),
    ("Paris", "sirap"),  # words are text, not a product of symbols
]


@pytest.mark.parametrize(("reference", "answer"), EQUIVALENT)
def test_equivalent_answers_match(reference: str, answer: str) -> None:
    assert reference != answer
    assert matches_reference(reference, answer)
    assert FREEFORM.check_answer(PROBLEM, answer, FREEFORM.parse_reference(reference)) is True
    assert FREEFORM.answers_equal(answer, reference)


@pytest.mark.parametrize(("reference", "answer"), NOT_EQUIVALENT)
def test_different_answers_do_not_match(reference: str, answer: str) -> None:
    assert not equivalent(reference, answer)
    assert FREEFORM.check_answer(PROBLEM, answer, reference) is False


@pytest.mark.parametrize(
    ("step", "answer"),
    [
        (r"\boxed{\frac{\sqrt{3}}{2}}", r"\frac{\sqrt{3}}{2}"),
        (r"So $\sin 60^\circ = \boxed{\frac{\sqrt{3}}{2}}$.", r"\frac{\sqrt{3}}{2}"),
        (r"\boxed{\left\{\frac{1}{\sqrt{2}}, 3\right\}}", r"\left\{\frac{1}{\sqrt{2}}, 3\right\}"),
        (r"First \boxed{1}, corrected: \fbox{\dfrac{a^{2^{k}}}{2}}", r"\dfrac{a^{2^{k}}}{2}"),
    ],
)
def test_nested_boxes_are_final_answers(step: str, answer: str) -> None:
    assert FREEFORM.is_final(step)
    assert FREEFORM.extract_answer(step) == answer


@pytest.mark.parametrize(
    "step",
    ["**Answer:** D", "**Answer**: D", "Answer: D", "## Final Answer: D", "The options were weighed.\n*Answer:* D"],
)
def test_marked_answer_lines_are_final(step: str) -> None:
    for task in (FREEFORM, get_task("arith")):
        assert task.is_final(step)
        assert task.extract_answer(step) == "D"


@pytest.mark.parametrize(
    "step",
    [
        r"Answer: D (option C would give \boxed{X}, which is wrong)",
        r"Answer: D (\boxed{X})",
        r"Answer: D. The box \boxed{X} was a typo.",
        r"We first thought \boxed{X}.\nAnswer: $D$",
    ],
)
def test_answer_line_wins_over_boxes(step: str) -> None:
    assert FREEFORM.extract_answer(step.replace(r"\n", "\n")) == "D"


@pytest.mark.parametrize("step", [r"\boxed{}", r"\boxed{ }", r"$\boxed{}$.", "Answer:", "**Answer:**", "Answer: $$"])
def test_empty_answers_end_the_chain_with_no_answer(step: str) -> None:
    assert FREEFORM.is_final(step)
    assert FREEFORM.extract_answer(step) is None


def test_unclosed_box_is_not_final() -> None:
    assert final_answer(r"so we get \boxed{\frac{1}{2}").final is False


def _run(scripts: list[list[str]], reference: str | None = None, **config: object) -> object:
    models = Models(policy=ChainPolicy({PROBLEM: scripts}), prm=FlatPRM())
    config = {"n": len(scripts), "temperature": 1.0, "max_depth": 6, **config}
    return run_search(
        PROBLEM, task="freeform", strategy="self_consistency", models=models, config=config, reference=reference
    )


def test_chain_stops_at_its_nested_boxed_answer() -> None:
    result = _run([[r"Hence $\boxed{\frac{\sqrt{3}}{2}}$.", "Let me also check another way.", r"\boxed{7}"]])
    assert result.status == "finished"
    assert result.answer == r"\frac{\sqrt{3}}{2}"
    assert len(result.tree) == 3  # root, first step, the boxed step: nothing grown past the answer


def test_empty_boxes_do_not_outvote_an_answer() -> None:
    empty, four = ["So the value is", r"\boxed{}"], ["So the value is", r"\boxed{4}"]
    result = _run([empty, empty, empty, four, four], reference="4")
    assert result.answer == "4"
    assert result.correct is True
    chosen = result.tree.chosen
    assert chosen["table"] == [{"answer": "4", "votes": 2.0}]


def test_votes_pool_equivalent_answers_under_the_most_written_form() -> None:
    scripts = [
        ["Work.", r"\boxed{\frac12}"],
        ["Work.", r"\boxed{\frac12}"],
        ["Work.", r"\boxed{0.5}"],
        ["Work.", r"\boxed{2}"],
        ["Work.", r"\boxed{2.0}"],
    ]
    result = _run(scripts, reference="1/2")
    assert (result.answer, result.correct) == (r"\frac12", True)
    table = result.tree.chosen["table"]
    assert [(row["answer"], row["votes"]) for row in table] == [(r"\frac12", 3.0), ("2", 2.0)]
    assert table[0]["forms"] == r"\frac12 ×2, 0.5 ×1"


def test_prm_weighted_vote_pools_equivalent_answers() -> None:
    candidates = [Candidate(1, "1/2", 0.4), Candidate(2, "0.5", 0.4), Candidate(3, "3", 0.7), Candidate(4, "", 0.9)]
    choice = choose("prm_vote", candidates, FREEFORM.answers_equal)
    assert (choice.answer, choice.node) == ("1/2", 1)
    assert choice.table[0]["votes"] == pytest.approx(0.8)
    assert choose("prm_vote", candidates).answer == "3"  # text equality alone splits 1/2 and 0.5


def test_freeform_reference_is_normalised_or_refused() -> None:
    assert FREEFORM.parse_reference(r"$\frac{1}{2}$") == r"\frac{1}{2}"
    assert FREEFORM.parse_reference(r"Answer: \boxed{1,500}") == "1,500"
    assert FREEFORM.parse_reference(0.5) == "0.5"
    assert FREEFORM.parse_reference("  ") is None
    for bad in (r"\boxed{}", r"\frac{1}{2", "x" * 400, float("nan"), True):
        with pytest.raises(ProblemError):
            FREEFORM.parse_reference(bad)


def test_math_verify_runs_in_a_thread() -> None:
    """The app runs searches in threads, where math-verify's signal-based timeouts raise."""
    results: list[object] = []

    def work() -> None:
        try:
            results.append([matches_reference(r, a) for r, a in EQUIVALENT[:4]])
        except Exception as err:  # noqa: BLE001 - the failure is the test's finding
            results.append(err)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=300)
    assert results == [[True, True, True, True]]


def test_runaway_comparison_is_bounded_in_a_thread() -> None:
    verifier = MathVerifier(timeout_s=2.0)
    out: list[object] = []

    def work() -> None:
        verifier.verify("1", "1")  # start the helper before timing
        start = time.monotonic()
        out.append(verifier.verify("9^{9^{9}}", "5"))  # 9**387420489: runs in C past every signal
        out.append(time.monotonic() - start)
        out.append(verifier.verify("0.25", r"\frac14"))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=300)
    verifier.close()
    assert out[0] is None and out[1] < 10 and out[2] is True
    assert verifier.restarts == 1


def test_a_search_in_a_thread_grades_and_votes_through_math_verify() -> None:
    """What the app does: run_search on a worker thread (math-verify's own timeouts would raise there)."""
    scripts = [["Work.", r"\boxed{0.5}"], ["Work.", r"**Answer:** $\frac{1}{2}$"], ["Work.", r"\boxed{3}"]]
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(_run(scripts, reference=r"\dfrac12")))
    thread.start()
    thread.join(timeout=300)
    [result] = out
    assert result.status == "finished", result.error
    assert (result.answer, result.correct) == ("0.5", True)
    assert result.tree.chosen["table"][0]["votes"] == 2.0
