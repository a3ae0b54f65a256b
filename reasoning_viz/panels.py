"""Thin Streamlit panels shared by the live Search page and Replay: the "Colour by" selector, the
exact checker beside the PRM (inspector line and run summary), re-deciding a finished run, and
the in-app help.  The work is in pure modules (colouring, ground_truth, search.redecide, glossary).
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from reasoning_viz.colouring import COLOR_BY, Paint, choice_label, legend, paint
from reasoning_viz.figures import for_scorer, score_label, step_scores
from reasoning_viz.glossary import GLOSSARY
from reasoning_viz.ground_truth import (
    THRESHOLD,
    agreement,
    has_step_checker,
    no_checker_note,
    node_verdict,
    step_verdicts,
    summarize,
    tree_task,
    verdict_text,
)
from reasoning_viz.runinfo import answer_cell
from reasoning_viz.text import safe_markdown
from search.config import ConfigError
from search.events import Event
from search.redecide import answer_methods, redecide, redecide_grid, run_config
from search.scoring import AGGREGATIONS
from search.tree import Tree

VERDICT_WORDS = {True: "✅ correct", False: "❌ wrong", None: "not checked"}


def colour_by(tree: Tree, events: Sequence[Event], *, key: str) -> Paint:
    """The "Colour by" selector above the tree; returns the Paint the tree is drawn with."""
    choice = st.selectbox(
        "Colour by",
        list(COLOR_BY),
        format_func=lambda key: choice_label(tree, key),
        key=key,
        help="What a node's colour shows. White: this node has no such number; faded grey: pruned.",
    )
    painted = paint(tree, choice, events)
    if painted.note:
        st.caption(painted.note)
    return painted


def tree_legend(painted: Paint) -> None:
    """The caption under the tree, for the measure it is coloured by."""
    st.caption(legend(painted))


def checker_line(tree: Tree, node_id: int) -> None:
    """The exact checker's verdict on the inspected step, next to its PRM score."""
    task = tree_task(tree)
    if node_id == tree.root.id:
        return
    if task is None or not has_step_checker(task):
        st.caption(no_checker_note((tree.meta or {}).get("task")))
        return
    verdict = node_verdict(tree, node_id, task)
    score = step_scores(tree).get(node_id)
    found = agreement(score, verdict)
    label = score_label(tree)
    side = "≥" if score is not None and score >= THRESHOLD else "<"
    prm = f"no {label} score" if score is None else f"{label} {score:.2f} ({side} {THRESHOLD:g})"
    found_text = f" → **{for_scorer(str(found), tree)}**" if found else ""
    st.markdown(
        f"**Exact checker:** {verdict_text(verdict)} · {prm}" + found_text,
        help="The task's own step checker (Math-Shepherd semantics: a step built on an earlier slip is wrong too). "
        f"The {label} 'says good' when its score is at least {THRESHOLD:g}.",
    )


def truth_summary(tree: Tree) -> None:
    """The run summary's count of agreements, missed slips and flagged good steps."""
    task = tree_task(tree)
    if task is None or not has_step_checker(task):
        st.caption(no_checker_note((tree.meta or {}).get("task")))
        return
    summary = summarize(step_scores(tree), step_verdicts(tree, task))
    st.markdown(summary.sentence(score_label(tree)))


def redecide_panel(tree: Tree, *, key: str) -> None:
    """On a finished run: pick another aggregation and answer rule and see the answer it picks."""
    if tree.status != "finished" or not tree.chosen:
        return
    with st.expander("Re-decide this run (another aggregation or answer rule, no models run)"):
        try:
            config = run_config(tree)
            methods = answer_methods(tree)
        except ConfigError as exc:
            st.caption(f"This run's settings cannot be read back: {exc}")
            return
        left, right = st.columns(2)
        how = left.selectbox(
            "Step-score aggregation", AGGREGATIONS, index=AGGREGATIONS.index(config.aggregation), key=f"{key}-agg"
        )
        method = right.selectbox(
            "Answer rule", methods, index=methods.index(config.answer_method), key=f"{key}-rule"
        )
        found = redecide(tree, aggregation=how, method=method)
        same = found.answer == tree.chosen["answer"]
        st.markdown(
            f"**Would choose:** {_answer(found.answer)} (node {found.node}) — {VERDICT_WORDS[found.correct]}"
            f" · {'same as' if same else 'differs from'} the run's answer {_answer(tree.chosen['answer'])}"
        )
        if not found.uses_aggregation:
            st.caption(f"{method} does not read the aggregated step scores: the aggregation makes no difference.")
        st.dataframe(found.table, hide_index=True, width="stretch")
        st.markdown("**Every rule and aggregation**")
        st.dataframe(readable_grid(redecide_grid(tree)), hide_index=True, width="stretch")


def readable_grid(rows: Sequence[dict]) -> list[dict]:
    """`search.redecide.redecide_grid` rows as a person reads them: the verdict in words (a bool
    column is drawn as a bare checkbox) and "no answer" for None."""
    return [{**row, "answer": answer_cell(row["answer"]), "correct": VERDICT_WORDS[row["correct"]]} for row in rows]


def _answer(answer: str | None) -> str:
    return "(no answer)" if answer is None else safe_markdown(answer)


def help_expander() -> None:
    """In-app help: the terms a class meets on these pages, one sentence each."""
    with st.expander("❓ What do PRM, N and M, UCT/PUCT, prior and value mean?"):
        st.markdown("\n".join(f"- **{term}** — {sentence}" for term, sentence in GLOSSARY.items()))
