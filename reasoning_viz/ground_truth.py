"""Ground truth beside the verifier: an exact step checker's verdict next to each PRM score.

On tasks with an exact step checker (arith, countdown: `Task.check_step`), every step of the
tree gets the checker's verdict, and its PRM score is read as a vote at `THRESHOLD`:
score >= THRESHOLD means "the PRM thinks this step is good".  Each checked and scored step then
falls in one of three classes (`Agreement`): the PRM agrees with the checker, the PRM missed a
slip (checker: wrong, PRM: good), or the PRM flagged a good step (checker: right, PRM: bad).
The checker's notion of a good step is Math-Shepherd's (Wang et al. 2023): a step from which
the right answer is still reachable, so a step built on an earlier slip is wrong too.

Pure functions of a Tree and a Task (no Streamlit): the inspector, the tree colouring and the
run summary read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from search.tasks import TASKS, Task
from search.tree import Tree

#: A PRM step score at or above this reads as "good step" (PRM scores are probabilities in [0, 1]).
THRESHOLD = 0.5


class Agreement(StrEnum):
    """How a step's PRM score compares with the exact checker's verdict."""

    AGREE = "PRM agrees"
    MISSED = "PRM missed a slip"
    FLAGGED = "PRM flagged a good step"


def has_step_checker(task: Task) -> bool:
    """Whether the task overrides `Task.check_step` with an exact checker (arith, countdown)."""
    return type(task).check_step is not Task.check_step


def no_checker_note(task_name: str | None) -> str:
    """The sentence shown instead of verdicts on a task without an exact step checker."""
    return (
        f"The {task_name or 'unknown'} task has no exact step checker, so there is no ground truth to "
        "put beside the PRM here (arith and countdown have one)."
    )


def tree_task(tree: Tree) -> Task | None:
    """The task the run was grown on (from its SEARCH_STARTED event), or None when unknown."""
    return TASKS.get((tree.meta or {}).get("task"))


def step_verdicts(tree: Tree, task: Task | None = None) -> dict[int, bool]:
    """node id -> the exact checker's verdict on that node's step (True: a good step).

    The root (the problem) has no step and no verdict.  Returns {} when the task has no step
    checker, the tree has no problem text, or the checker cannot read the problem (ValueError).
    `task` defaults to the run's own task.  Cost: one `check_step` per node, memoised by path.
    """
    task = task or tree_task(tree)
    problem = (tree.meta or {}).get("problem")
    if task is None or not problem or not has_step_checker(task):
        return {}
    out: dict[int, bool] = {}
    try:
        for node in tree:
            if node.parent is None:
                continue
            verdict = _verdict(task.name, problem, tuple(tree.steps(node.id)))
            if verdict is not None:
                out[node.id] = verdict
    except ValueError:
        return {}
    return out


@lru_cache(maxsize=65536)
def _verdict(task_name: str, problem: str, steps: tuple[str, ...]) -> bool | None:
    return TASKS[task_name].check_step(problem, list(steps[:-1]), steps[-1])


def agreement(score: float | None, verdict: bool | None, threshold: float = THRESHOLD) -> Agreement | None:
    """The class of one step; None when it has no PRM score or no verdict."""
    if score is None or verdict is None:
        return None
    prm_good = score >= threshold
    if prm_good == verdict:
        return Agreement.AGREE
    return Agreement.MISSED if prm_good else Agreement.FLAGGED


def agreements(
    scores: Mapping[int, float], verdicts: Mapping[int, bool], threshold: float = THRESHOLD
) -> dict[int, Agreement]:
    """node id -> Agreement for every node with both a PRM score and a verdict."""
    out = {}
    for node_id, verdict in verdicts.items():
        found = agreement(scores.get(node_id), verdict, threshold)
        if found is not None:
            out[node_id] = found
    return out


@dataclass(frozen=True)
class TruthSummary:
    """Counts over a run's steps: `checked` steps have a verdict, of which `unscored` have no PRM score."""

    checked: int
    wrong_steps: int
    agree: int
    missed: int
    flagged: int
    unscored: int
    threshold: float

    def sentence(self, scorer: str = "PRM") -> str:
        """One line for the run summary; `scorer` names the step scorer ("PRM", "value-model")."""
        if not self.checked:
            return "No step has been checked yet."
        scored = self.agree + self.missed + self.flagged
        line = (
            f"Exact checker vs {scorer} (good step = {scorer} ≥ {self.threshold:g}): {self.checked} steps checked, "
            f"{self.wrong_steps} of them wrong. Of {scored} scored: {scorer} agrees on {self.agree}, "
            f"missed {self.missed} slip(s), flagged {self.flagged} good step(s)."
        )
        return line + (f" {self.unscored} checked step(s) have no {scorer} score." if self.unscored else "")


def summarize(
    scores: Mapping[int, float], verdicts: Mapping[int, bool], threshold: float = THRESHOLD
) -> TruthSummary:
    """Count agreements, missed slips and flagged good steps over the checked steps."""
    classes = list(agreements(scores, verdicts, threshold).values())
    return TruthSummary(
        checked=len(verdicts),
        wrong_steps=sum(1 for v in verdicts.values() if not v),
        agree=classes.count(Agreement.AGREE),
        missed=classes.count(Agreement.MISSED),
        flagged=classes.count(Agreement.FLAGGED),
        unscored=sum(1 for n in verdicts if n not in scores),
        threshold=threshold,
    )


def verdict_text(verdict: bool | None) -> str:
    """The checker's verdict in words for the inspector."""
    return {True: "✓ right", False: "✗ wrong", None: "–"}[verdict]


def node_verdict(tree: Tree, node_id: int, task: Task | None = None) -> bool | None:
    """The exact checker's verdict on one node's step; None for the root, a task without a step
    checker, or a problem the checker cannot read."""
    task = task or tree_task(tree)
    problem = (tree.meta or {}).get("problem")
    if node_id == tree.root.id or task is None or not problem or not has_step_checker(task):
        return None
    try:
        return _verdict(task.name, problem, tuple(tree.steps(node_id)))
    except ValueError:
        return None
