"""`freeform`: any problem text for a user's own Hugging Face models.

Steps are separated by a blank line (the convention of huggingface/search-and-learn and of
Qwen2.5-Math-PRM); an answer is a `\\boxed{...}` or an `Answer:` line.  There is no exact
checker: a reference answer, when given, is compared as normalised text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from search.tasks.base import ANSWER_PREFIX, Task

_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")


class FreeformTask(Task):
    name = "freeform"
    description = "Your own problem and models; answers in \\boxed{} or 'Answer:'; no checker."
    step_delimiter = "\n\n"
    max_step_tokens = 256

    def example(self) -> str:
        return "What is the sum of the first 20 odd numbers?"

    def prompt(self, problem: str, steps: Sequence[str]) -> str:
        head = (
            f"Solve the problem step by step. Separate steps with a blank line and put the final "
            f"answer in \\boxed{{}}.\n\nProblem: {problem}\n\n"
        )
        return head + "".join(step + self.step_delimiter for step in steps)

    def is_final(self, step: str) -> bool:
        return bool(_BOXED.search(step)) or step.strip().startswith(ANSWER_PREFIX)

    def extract_answer(self, step: str) -> str | None:
        boxed = _BOXED.findall(step)
        if boxed:
            return self.normalize_answer(boxed[-1])
        return super().extract_answer(step)
