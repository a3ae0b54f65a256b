"""Finding the final answer in a step's text: an explicit `Answer:` line, else the last `\\boxed{}`.

Pure text rules, no maths (equivalence lives in `search.math_equivalence`):

* an explicit answer line wins: ``Answer: D``, ``**Answer:** D``, ``**Answer**: D``,
  ``## Final answer: D`` (markdown emphasis and headings around the marker are ignored; the
  last such line of the text counts);
* otherwise the last ``\\boxed{...}`` (or ``\\fbox{...}``) with any depth of nested braces,
  found by counting braces, not by a regex (``\\boxed{\\frac{\\sqrt{3}}{2}}`` has depth 3);
* an empty box or an empty answer line ends the solution with NO answer (both the same way),
  so empty answers never vote;
* a prose remark after the answer on an answer line is not part of it:
  ``Answer: D (since \\boxed{X} ...)`` is ``D``; ``Answer: 5. This is because ...`` is ``5``.

The marker conventions are those of the MATH / PRM800K graders (``\\boxed``) and of
huggingface/Math-Verify's answer patterns (``final answer is``/``Answer:``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: A line that states the answer: optional markdown (#, >, *, _) then "Answer"/"Final answer", a colon.
_ANSWER_LINE = re.compile(
    r"^[ \t>#*_]*(?:final[ \t]+)?answer[ \t]*(?:\*\*|__|\*|_)?[ \t]*:[ \t]*(?:\*\*|__|\*|_)?(?P<rest>.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_BOX_COMMANDS = ("\\boxed", "\\fbox")
_EMPHASIS = re.compile(r"^(?:\*\*|__|\*|_)+|(?:\*\*|__|\*|_)+$")
_MATH_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
#: An English word of 3+ letters not written as a LaTeX command: the mark of a prose remark.
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
#: A sentence that starts after the answer: ". " then a capital letter.
_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z])")


@dataclass(frozen=True)
class FinalAnswer:
    """What a step says about the end of the solution.

    `final`: the step states an answer (so the chain stops); `answer`: the cleaned answer
    text, or None when the stated answer is empty (``\\boxed{}``, ``Answer:``).
    """

    final: bool
    answer: str | None


def answer_line(text: str) -> str | None:
    """What follows the last explicit answer marker in `text` ("" when nothing does); None if no marker."""
    matches = list(_ANSWER_LINE.finditer(text))
    if not matches:
        return None
    return _EMPHASIS.sub("", matches[-1].group("rest").strip()).strip()


def boxed_contents(text: str) -> list[str]:
    """Contents of every complete ``\\boxed{...}``/``\\fbox{...}`` in order, nested braces kept.

    An unclosed box (a step cut mid-answer) is not a box.
    """
    found: list[tuple[int, str]] = []
    for command in _BOX_COMMANDS:
        start = text.find(command)
        while start != -1:
            group = _braced_after(text, start + len(command))
            if group is not None:
                found.append((start, group[0]))
            start = text.find(command, start + len(command))
    return [body for _, body in sorted(found)]


def last_boxed(text: str) -> str | None:
    """The content of the last complete box in `text`, or None when there is none."""
    boxes = boxed_contents(text)
    return boxes[-1] if boxes else None


def _braced_after(text: str, i: int) -> tuple[str, int] | None:
    """The balanced ``{...}`` group starting at `i` (spaces skipped): its inside and the index after it."""
    while i < len(text) and text[i] in " \t":
        i += 1
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{" and text[j - 1] != "\\":
            depth += 1
        elif text[j] == "}" and text[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j + 1
    return None


def final_answer(text: str) -> FinalAnswer:
    """Is `text` a final step, and which answer does it state (see the module docstring)?"""
    line = answer_line(text)
    if line is not None:
        line = _drop_remarks(line)
        box = last_boxed(line)
        return FinalAnswer(True, clean_answer(box if box is not None else line))
    box = last_boxed(text)
    if box is not None:
        return FinalAnswer(True, clean_answer(box))
    return FinalAnswer(False, None)


def clean_answer(answer: str) -> str | None:
    """Answer text without math delimiters, a wrapping box, trailing full stop or extra spaces.

    Returns None when nothing is left (an empty answer is no answer).
    """
    text = answer.strip()
    for _ in range(3):  # ``$\\boxed{5}$.`` needs a few peels
        before = text
        text = text.rstrip(" .").strip()
        for left, right in _MATH_WRAPPERS:
            if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
                text = text[len(left) : len(text) - len(right)].strip()
        for command in _BOX_COMMANDS:
            group = _braced_after(text, len(command)) if text.startswith(command) else None
            if group is not None and group[1] == len(text):
                text = group[0].strip()
        if text == before:
            break
    text = re.sub(r"\s+", " ", text).strip()
    return text or None


def _drop_remarks(line: str) -> str:
    """Cut prose after the answer: a following sentence, then a trailing parenthetical remark."""
    parts = _SENTENCE_END.split(line, maxsplit=1)
    if len(parts) == 2 and parts[0].strip():
        line = parts[0]
    stripped = line.rstrip(" .")
    if not stripped.endswith(")"):
        return line
    opening = _matching_open(stripped)
    if opening is None or not stripped[:opening].strip():
        return line
    remark = stripped[opening + 1 : -1]
    if _PROSE_WORD.search(remark) or any(command in remark for command in _BOX_COMMANDS):
        return stripped[:opening].rstrip()
    return line


def _matching_open(text: str) -> int | None:
    """Index of the ``(`` that the final ``)`` of `text` closes, or None."""
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        if text[i] == ")":
            depth += 1
        elif text[i] == "(":
            depth -= 1
            if depth == 0:
                return i
    return None
