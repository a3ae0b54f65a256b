"""`freeform`: any problem text for a user's own Hugging Face models.

Steps are separated by a blank line (the convention of huggingface/search-and-learn and of
Qwen2.5-Math-PRM).  A step is final when it states an answer: an explicit `Answer:` line
(also `**Answer:**`) wins, else the last `\\boxed{...}` (see `search.answer_text`).  There is
no exact checker: answers are judged against a reference, and pooled in votes, by
huggingface/Math-Verify (`search.math_equivalence`), so ``1/2``, ``0.5`` and ``\\frac12``
are one answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from search.answer_text import clean_answer, final_answer
from search.math_equivalence import MAX_MATH_CHARS, equivalent, matches_reference
from search.tasks.base import ANSWER_PREFIX, ReferenceAnswerError, Task, reference_text


class FreeformReferenceError(ReferenceAnswerError):
    """A known answer the freeform task cannot read; raised before any search."""


class FreeformTask(Task):
    name = "freeform"
    description = "Your own problem and models; answers in \\boxed{} or 'Answer:', judged by math-verify."
    step_delimiter = "\n\n"
    max_step_tokens = 256
    chat_instruction = (
        "Please reason step by step, separate the steps with a blank line, and put your final answer within \\boxed{}."
    )

    def example(self) -> str:
        return "What is the sum of the first 20 odd numbers?"

    def prompt(self, problem: str, steps: Sequence[str]) -> str:
        head = (
            f"Solve the problem step by step. Separate steps with a blank line and put the final "
            f"answer in \\boxed{{}}.\n\nProblem: {problem}\n\n"
        )
        return head + "".join(step + self.step_delimiter for step in steps)

    def is_final(self, step: str) -> bool:
        return final_answer(step).final

    def extract_answer(self, step: str) -> str | None:
        return final_answer(step).answer

    def answers_equal(self, a: str, b: str) -> bool:
        """Mathematically the same answer (math-verify, either way round)."""
        return equivalent(a, b)

    def check_answer(self, problem: str, answer: str | None, reference: str | None) -> bool | None:
        """math-verify's verdict with the reference as gold; no answer against a reference is wrong."""
        if answer is None or not answer.strip():
            return False if reference is not None else None
        if reference is None:
            return None
        return matches_reference(reference, answer)

    def parse_reference(self, reference: str | float | None, problem: str | None = None) -> str | None:
        """A known answer as the text answers are compared with: ``$\\frac12$`` -> ``\\frac12``.

        Accepts text or a JSON number; strips an `Answer:` marker, math delimiters and a
        wrapping ``\\boxed{}``.  Returns None for no reference.  Raises FreeformReferenceError
        (a ProblemError) for text that holds no answer, unbalanced braces, or one longer than
        math-verify is asked to read, so a bad reference is refused before any search.
        """
        text = reference_text(reference)  # JSON numbers as text (12.0 -> "12"); bad types refused
        if text is None:
            return None
        stated = final_answer(text)
        answer = stated.answer if stated.final else clean_answer(text.removeprefix(ANSWER_PREFIX))
        if answer is None:
            raise FreeformReferenceError(f"The known answer {text!r} holds no answer (an empty box or Answer: line).")
        if len(answer) > MAX_MATH_CHARS:
            raise FreeformReferenceError(
                f"The known answer has {len(answer):,} characters; answers are compared up to {MAX_MATH_CHARS}."
            )
        if answer.count("{") != answer.count("}"):
            raise FreeformReferenceError(f"The known answer {answer!r} has unbalanced braces {{ }}.")
        return re.sub(r"\s+", " ", answer)
