"""The tree view and node inspector shared by the live Search page and Replay.

Live view and replay are the same renderer over the same events: both call `render_tree`
and `render_inspector` with a Tree and the events that built it.  Model text is shown with
st.text, st.code or in dataframes (all inert), or through `safe_markdown`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import streamlit as st

from reasoning_viz.colouring import Paint
from reasoning_viz.figures import score_label, score_strip, step_scores, tree_figure
from reasoning_viz.ground_truth import has_step_checker, node_verdict, tree_task, verdict_text
from reasoning_viz.narration import narrate, self_check_words
from reasoning_viz.panels import checker_line
from reasoning_viz.playback import event_number
from reasoning_viz.runinfo import answer_caveat
from reasoning_viz.text import safe_markdown
from reasoning_viz.tree_view import TreeView
from search.events import Event, EventKind
from search.tree import Tree

#: The most height (px) the tree chart takes on the page; a taller chart scrolls inside it.
VIEW_HEIGHT = 820


def render_tree(
    tree: Tree,
    positions: Mapping[int, tuple[float, float]],
    *,
    key: str,
    selected: int | None = None,
    highlight: int | None = None,
    paint: Paint | None = None,
    view: TreeView | None = None,
    orientation: str = "auto",
) -> int | None:
    """Draw the tree; return the node id the user clicked (None when nothing was clicked).

    `selected`: the inspected node (a thick rim), `highlight`: the node the narration is about,
    `paint`: what the colour shows (`panels.colour_by`; default the PRM score), `view`: folds and
    search matches (`tree_view`; `positions` then holds the visible nodes only), `orientation`:
    see `layout.chart_frame`.  Clicks are read as node ids, never positions.
    Resolve the inspected node with `chart_click` BEFORE drawing: drawing the rim changes the
    figure, which makes the chart a new widget with an empty selection, so a click read only
    after drawing a stale rim was lost on the next rerun (every second click was ignored).
    """
    figure = tree_figure(
        tree, positions, selected=selected, highlight=highlight, paint=paint, view=view, orientation=orientation
    )
    # a tree taller than the window scrolls in its own box, so the inspector stays beside it
    tall = (figure.layout.height or 0) > VIEW_HEIGHT
    with st.container(height=VIEW_HEIGHT if tall else "content", border=False):
        event = st.plotly_chart(figure, key=key, on_select="rerun", selection_mode="points", width="stretch")
    return _clicked(tree, event)


def chart_click(tree: Tree, key: str) -> int | None:
    """The node clicked in the tree chart with this key, read from its widget state before the
    chart is drawn in this run (None when nothing is selected).

    A growing tree is a new figure at every poll, and Streamlit names a chart after its figure:
    a click on the chart drawn one poll ago arrives for a chart id that `st.session_state[key]`
    no longer points to, and was lost (7 of 10 clicks while a fast MCTS grew).  Such a click is
    read from the raw widget states the browser sent with it (`_pending_selections`)."""
    clicked = _clicked(tree, st.session_state.get(key))
    if clicked is None:
        for selection in _pending_selections(key):
            clicked = _clicked(tree, selection)
            if clicked is not None:
                break
    return clicked


def _pending_selections(key: str) -> list[dict]:
    """Selections the browser sent in this rerun for any chart drawn with user key `key` (its
    element ids end in "-<key>").  Reads Streamlit's widget-state store, which
    is not public API: on a Streamlit that stores it differently this finds nothing (the click
    is then read only through `st.session_state`, as before)."""
    try:
        from streamlit.runtime.state.session_state_proxy import get_session_state

        states = get_session_state()._state._new_widget_state.states
    except (AttributeError, ImportError):
        return []
    found = []
    for element_id, state in list(states.items()):
        if not element_id.endswith(f"-{key}"):
            continue
        value = getattr(state, "value", None)
        if hasattr(value, "WhichOneof"):  # still serialized: the browser's JSON
            try:
                value = json.loads(value.json_value) if value.WhichOneof("value") == "json_value" else None
            except ValueError:
                value = None
        if hasattr(value, "get"):  # a dict, or Streamlit's attribute dict of a plotly selection
            found.append(value)
    return found


def _clicked(tree: Tree, event) -> int | None:
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    for point in points:
        data = point.get("customdata")
        node_id = data[0] if isinstance(data, list) else data
        if isinstance(node_id, int | float) and int(node_id) in tree.nodes:
            return int(node_id)
    return None


def is_fresh_click(clicked: int | None, *, key: str) -> bool:
    """Whether `clicked` is a new click for the picker `key` (`pick_node`): a chart selection
    persists across reruns, so only a click different from the last one read counts."""
    return clicked is not None and clicked != st.session_state.get(f"{key}-last-click")


def pick_node(tree: Tree, clicked: int | None, *, key: str) -> int:
    """The inspected node: a click (or a picked backtrack) writes it into the number box's state
    before the box is drawn, because a keyed widget ignores `value=` once it has state.  Only a
    fresh click counts (`is_fresh_click`)."""
    fresh_click = is_fresh_click(clicked, key=key)
    st.session_state[f"{key}-last-click"] = clicked
    if fresh_click or st.session_state.get(key) not in tree.nodes:
        st.session_state[key] = clicked if fresh_click else 0
    chosen = int(st.number_input("Inspect node id", min_value=0, max_value=max(tree.nodes, default=0), key=key))
    return chosen if chosen in tree.nodes else 0


def render_answer(tree: Tree) -> None:
    """The chosen answer, how it was chosen (votes / weights), and whether it is right."""
    chosen = tree.chosen
    if not chosen:
        st.info("No answer yet.")
        return
    verdict = {True: "✅ correct", False: "❌ wrong", None: "not checked"}[chosen["correct"]]
    answer = "(no answer)" if chosen["answer"] is None else safe_markdown(str(chosen["answer"]))
    st.markdown(f"**Answer:** {answer} — {verdict} (by `{chosen['method']}`)")
    if caveat := answer_caveat(chosen):
        st.warning("⚠ " + caveat)
    if chosen["table"]:
        st.dataframe(chosen["table"], hide_index=True, width="stretch")
    if tree.unscored:
        st.warning(f"⚠ {tree.unscored} model number(s) were NaN or infinite and left unscored (on_bad_number).")


def render_inspector(tree: Tree, node_id: int, events: Sequence[Event]) -> None:
    node = tree.nodes[node_id]
    st.markdown(f"#### Node {node_id}" + (" (the problem)" if node.parent is None else f" · depth {node.depth}"))
    if node.parent is None and tree.meta.get("problem"):
        st.text(tree.meta["problem"])
    # one row of numbers as a table: st.metric columns cut "0.53" to "0…" at laptop widths
    st.dataframe([node_numbers(tree, node_id)], hide_index=True, width="stretch")
    checker_line(tree, node_id)
    if node.parent is not None:
        st.plotly_chart(score_strip(tree, node_id), key=f"strip-{node_id}-{tree.events_applied}", width="stretch")
    else:
        _prompt_sent(tree)
    _path_table(tree, node_id)
    _status_lines(node)
    _self_eval(node)
    _why_this_branch(tree, node_id, events)
    if node.rollouts:
        st.markdown("**Rollouts from this node**")
        st.dataframe(
            [
                {"answer": r["answer"], "value": r["value"], "correct": r["correct"], "steps": " | ".join(r["steps"])}
                for r in node.rollouts
            ],
            hide_index=True,
        )
    with st.expander(f"Events that touched node {node_id} ({len(node.event_seqs)})"):
        rows = [
            {"#": event_number(s), "event": events[s].kind.value, "what happened": narrate(events[s], tree)}
            for s in node.event_seqs
            if s < len(events)
        ]
        st.dataframe(rows, hide_index=True, width="stretch")


def _prompt_sent(tree: Tree) -> None:
    """The exact text the policy was given at the root (its chat template applied when one was used)."""
    prompt = tree.meta.get("prompt")
    if prompt:
        with st.expander("Prompt sent to the policy"):
            st.code(prompt, language=None)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def node_numbers(tree: Tree, node_id: int) -> dict[str, str | int]:
    """The inspector's numbers for one node, as short strings: the step score as the tree colours
    it (its column named by `score_label`: "PRM", or "value-model" for a value model), visits, Q,
    prior, tokens."""
    node = tree.nodes[node_id]
    return {
        score_label(tree): _fmt(step_scores(tree).get(node_id)),
        "visits": node.visits,
        "Q": _fmt(node.q_mean if node.visits else None),
        "prior": _fmt(node.prior),
        "tokens": node.token_count,
    }


def path_rows(tree: Tree, node_id: int) -> list[dict[str, str | int]]:
    """The inspector's path table: one row per step from the root to `node_id` (the root left out).

    Columns: step (1-based), the step text, the step score (named by `score_label`; "–" when
    unscored, as `node_numbers` writes it), checker (tasks with an exact step checker only),
    self-eval (only when a step on the path has one) and node: the text second, because in the
    320-px inspector at 1280 px the numbers first pushed the step itself out of view.
    """
    prm = step_scores(tree)
    task = tree_task(tree)
    checked = task is not None and has_step_checker(task)
    path = tree.path(node_id)[1:]
    judged = any("self_eval" in n.scores for n in path)
    label = score_label(tree)
    rows = []
    for i, n in enumerate(path, start=1):
        row: dict[str, str | int] = {"step": i, "text": n.text, label: _fmt(prm.get(n.id))}
        if checked:
            row["checker"] = verdict_text(node_verdict(tree, n.id, task))
        if judged:
            row["self-eval"] = _fmt(n.scores.get("self_eval"))
        rows.append({**row, "node": n.id})
    return rows


#: The path table's step and text widths: the step text is what a reader came for (cut cells show
#: in full when clicked); the numbers after it may scroll.
_PATH_COLUMNS = {
    "step": st.column_config.NumberColumn(width=46),
    "text": st.column_config.TextColumn(width=190, help="The step (click a cell to read it all)."),
}


def _path_table(tree: Tree, node_id: int) -> None:
    rows = path_rows(tree, node_id)
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch", column_config=_PATH_COLUMNS)


def _status_lines(node) -> None:
    if node.terminal:
        verdict = {True: "correct", False: "wrong", None: "not checked"}[node.correct]
        st.text(f"Final step. Answer: {node.answer} ({verdict})")
    if node.pruned:
        st.text(f"Pruned: {node.prune_reason}")
    for reason in node.unscored:
        st.text(f"⚠ Unscored: {reason}")


def _self_eval(node) -> None:
    if not node.self_eval:
        return
    st.markdown("**Self-evaluation**")
    st.text(self_check_words(node.self_eval, limit=200))
    if node.self_eval["question"]:
        st.code(node.self_eval["question"], language=None)


def _why_this_branch(tree: Tree, node_id: int, events: Sequence[Event]) -> None:
    """Every selection that weighed this node, with its numbers and rank among its siblings."""
    rows = why_rows(tree, node_id, events)
    if rows:
        st.markdown("**Why this branch** — every selection that weighed this node")
        st.dataframe(rows, hide_index=True, width="stretch", column_config=_WHY_COLUMNS)
        st.caption(why_rule(tree, node_id, events))


def _weighed(tree: Tree, node_id: int, events: Sequence[Event]):
    """(event index, SELECTED data, rank from 1, this node's candidate) for each selection that weighed it."""
    for seq in tree.nodes[node_id].event_seqs:
        if seq < len(events) and events[seq].kind is EventKind.SELECTED:
            for rank, cand in enumerate(events[seq].data["candidates"], start=1):
                if cand["node"] == node_id:
                    yield seq, events[seq].data, rank, cand


def why_rows(tree: Tree, node_id: int, events: Sequence[Event]) -> list[dict]:
    """One row per SELECTED event that weighed `node_id`: event number, its rank among the
    candidates ("2/5"), Q, U (the exploration bonus; score = Q + U, UCT/PUCT), N (visits) and the
    node the selection chose.  Six narrow columns: the inspector is 320 px wide at 1280 px (13
    columns scrolled 380 px sideways); the rule, c, a parallel MCTS's waves and virtual loss are in
    `why_rule`, the node's prior (the same in every row) in the node's numbers."""
    return [
        {
            "#": event_number(seq),
            "rank": f"{rank}/{len(data['candidates'])}",
            "Q": cand["q"],
            "U": cand["exploration"],
            "N": cand["visits"],
            "won": data["node"],
        }
        for seq, data, rank, cand in _weighed(tree, node_id, events)
    ]


def why_rule(tree: Tree, node_id: int, events: Sequence[Event]) -> str:
    """The selection rules that weighed `node_id` and how to read the table, e.g. "puct, c = 1.25:
    each selection ranks the children by Q + U ..."."""
    weighed = [data for _, data, _, _ in _weighed(tree, node_id, events)]
    rules = sorted({f"{data['rule']}, c = {data['c']:g}" for data in weighed})
    waves = sorted({data["wave"] for data in weighed if data.get("wave") is not None})
    parallel = (
        f" Parallel MCTS: these selections fell in waves {_span(waves)}; a path already picked in a wave "
        "carries virtual loss (visits valued 0), so the next pick spreads." if waves else ""
    )
    return (
        "; ".join(rules) + ": each selection ranks the children by Q + U (U: the exploration bonus, "
        f"unvisited children first); N: visits so far; won: the node it chose.{parallel}"
    )


def _span(numbers: Sequence[int]) -> str:
    """"3" or "3-17" (first to last) for a sorted list of numbers."""
    return f"{numbers[0]}" if len(numbers) == 1 else f"{numbers[0]}-{numbers[-1]}"


#: Narrow columns for "Why this branch" (each at least its header's width; see why_rows).
_WHY_COLUMNS = {
    "#": st.column_config.NumberColumn(width=46, help="The event number (as in Replay)."),
    "rank": st.column_config.TextColumn(width=50, help="This node's rank among the children weighed."),
    "Q": st.column_config.NumberColumn(width=46, format="%.2f", help="Mean value backed up through this node."),
    "U": st.column_config.NumberColumn(
        width=46, format="%.2f", help="The exploration bonus U(s, a) (UCT/PUCT); the rule ranks by Q + U."),
    "N": st.column_config.NumberColumn(width=44, help="Visits N(s, a) when the selection was made."),
    "won": st.column_config.NumberColumn(width=46, help="The node this selection chose."),
}
#: The backtracks table: short columns first so the reason gets the room (a reason without a width
#: took 700 px and the table scrolled 380 px sideways in the 320-px inspector at 1280 px).
_MOVE_COLUMNS = {
    "#": st.column_config.NumberColumn(width=45),
    "kind": st.column_config.TextColumn(width=75),
    "node": st.column_config.NumberColumn(width=48),
    "reason": st.column_config.TextColumn(width=112, help="Click a cell to read it all."),  # 280 px in all
}


def render_moves(tree: Tree, events: Sequence[Event], *, key: str) -> int | None:
    """Backtracks and self-evaluations with their reasons; picking one selects its node."""
    rows = [
        {"#": event_number(b["seq"]), "kind": "backtrack", "node": b["to_node"], "reason": b["reason"]}
        for b in tree.backtracks
    ]
    rows += [
        {
            "#": event_number(n.event_seqs[0]),
            "kind": "self-eval",
            "node": n.id,
            "reason": self_check_words(n.self_eval),
        }
        for n in tree
        if n.self_eval
    ]
    if not rows:
        st.caption("No backtracks or self-evaluations in this tree.")
        return None
    rows.sort(key=lambda r: r["#"])
    picked = st.dataframe(
        rows, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row", key=key,
        column_config=_MOVE_COLUMNS,
    )
    selected = (picked or {}).get("selection", {}).get("rows", []) if picked else []
    return rows[selected[0]]["node"] if selected else None
