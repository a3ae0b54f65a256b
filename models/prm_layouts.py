"""PRM text layouts: how a (problem, steps) path becomes a reward model's input text.

Shared by every backend (the transformers PRMs tokenize it locally; the inference-server
backend tokenizes it the same way and sends the ids).  Scores are read at character-exact
positions: the path is laid out as text, tokenized once as a whole (as the PRM saw text in
training), and each score is read at the last token overlapping the end of that step's mark
(step tag or separator), found through the fast tokenizer's offset mapping.  A step text that
happens to contain the tag therefore cannot shift the read positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PRMLayout:
    """How a (problem, steps) path becomes PRM input text.

    `prefix` may use `{problem}`; `step` must use `{mark}` exactly once and may use `{step}` and
    `{sep}`.  The score of a step is read at the last token of its `{mark}`: the step tag for
    kind="tag", the separator token for kind="head".  Placeholders are replaced literally (not
    str.format), so templates may contain braces such as `\\boxed{}`.
    """

    prefix: str = "Problem: {problem}\nSolution:\n"
    step: str = "{step} {mark}{sep}"

    def __post_init__(self) -> None:
        if self.step.count("{mark}") != 1:
            raise ValueError(f"PRMLayout.step must contain '{{mark}}' exactly once, got {self.step!r}")


#: Our nano PRM (and the default for kind="tag"): `Problem: ...\nSolution:\n` then `step ки\n` per step.
TAG_LAYOUT = PRMLayout()
#: Default for kind="head": each step followed directly by the separator (e.g. "\n" or "<extra_0>").
HEAD_LAYOUT = PRMLayout(step="{step}{mark}")
#: peiyi9979/math-shepherd-mistral-7b-prm: `problem + " " + step1 + " ки\n" + ...`
#: (use with step_tag="ки", good_token="+", bad_token="-", step_separator="\n").
MATH_SHEPHERD_LAYOUT = PRMLayout(prefix="{problem} ", step="{step} {mark}{sep}")
#: Qwen/Qwen2.5-Math-PRM-7B: its chat template up to the assistant turn, steps joined by "<extra_0>"
#: (use with kind="head", step_separator="<extra_0>", trust_remote_code=True).
QWEN_PRM_LAYOUT = PRMLayout(
    prefix=(
        "<|im_start|>system\nPlease reason step by step, and put your final answer within "
        "\\boxed{}.<|im_end|>\n"
        "<|im_start|>user\n{problem}<|im_end|>\n<|im_start|>assistant\n"
    ),
    step="{step}{mark}",
)


def prm_text(
    layout: PRMLayout, problem: str, steps: Sequence[str], mark: str, sep: str = ""
) -> tuple[str, list[int]]:
    """The PRM input text of a path and, per step, the character offset where its mark ends."""
    before, after = layout.step.split("{mark}")
    text = layout.prefix.replace("{problem}", problem)
    ends = []
    for step in steps:
        text += before.replace("{step}", step).replace("{sep}", sep) + mark
        ends.append(len(text))
        text += after.replace("{step}", step).replace("{sep}", sep)
    return text, ends


def encode_marked(
    tokenizer: Any, text: str, mark_ends: Sequence[int], mark_len: int
) -> tuple[list[int], list[int]]:
    """Token ids of `text` (tokenized whole) and, per mark, the index of the token holding its last character.

    Uses the fast tokenizer's offsets; with byte-level tokenizers a character split over several
    tokens maps to the last of them, which is where the whole mark has been read.
    """
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    positions = []
    for end in mark_ends:
        hits = [j for j, (s, e) in enumerate(offsets) if e > s and s < end]
        if not hits or offsets[hits[-1]][1] <= end - mark_len:
            raise ValueError(
                f"No token covers the step mark ending at character {end}; the tokenizer dropped it."
            )
        positions.append(hits[-1])
    return ids, positions

