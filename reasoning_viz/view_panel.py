"""Thin Streamlit controls for big trees, shared by the live Search page and Replay: find, hide
pruned, chosen path only, fold below a depth, layout; and the inspector's fold / unfold button.
The rules live in `reasoning_viz.tree_view` (pure, tested); this module only keeps the choices.
"""

from __future__ import annotations

import streamlit as st

from reasoning_viz.layout import ORIENTATIONS
from reasoning_viz.tree_view import TreeView, ViewOptions, hidden_label, is_folded, subtree_size
from search.tree import Tree

ORIENTATION_LABELS = {"auto": "auto", "top-down": "top-down", "left-right": "left to right"}


def view_options(*, key: str, tree_key: str) -> tuple[ViewOptions, str]:
    """The controls above the tree; returns the view options and the chart orientation.

    key: prefix of the widget keys (one per page); tree_key: the shown run (folds are per run).
    """
    find, depth, layout = st.columns([2.2, 1.2, 1.2], vertical_alignment="bottom")
    pruned, chosen = st.columns(2)
    query = find.text_input(
        "Find in steps", key=f"{key}-find", placeholder="text in a step or answer",
        help="Rings every node whose step or answer contains this text (any case) and opens the folds that hide it.",
    )
    hide_pruned = pruned.toggle("Hide pruned", key=f"{key}-hide-pruned", help="Leave out pruned subtrees.")
    chosen_only = chosen.toggle(
        "Chosen path only", key=f"{key}-chosen-only",
        help="Only the path to the chosen answer (while a search runs: the latest selection) and its siblings.",
    )
    fold_depth = int(depth.number_input(
        "Fold at depth", min_value=0, max_value=1000, step=1, key=f"{key}-fold-depth",
        help="Fold every node at this depth into one marker with '+k hidden' (0: off).",
    ))
    orientation = layout.selectbox(
        "Layout", ORIENTATIONS, format_func=ORIENTATION_LABELS.get, key=f"{key}-orientation",
        help="auto: top-down while the tree fits the width, else depth left to right, wide levels packed "
        "over several columns so that the tree fills the chart's width and height.",
    )
    folds = _folds(key, tree_key)
    options = ViewOptions(
        folded=frozenset(folds["folded"]),
        fold_depth=fold_depth or None,
        unfolded=frozenset(folds["unfolded"]),
        hide_pruned=hide_pruned,
        chosen_path_only=chosen_only,
        query=query,
    )
    return options, orientation


def view_caption(view: TreeView, options: ViewOptions, *, key: str, tree_key: str) -> None:
    """Under the tree: how much is shown, what the search found, and "Unfold all"."""
    parts = [view.summary()]
    if found := view.match_summary(options.query):
        first = ", ".join(f"#{n}" for n in view.matches[:12])
        parts.append(found + (f": {first}{' …' if len(view.matches) > 12 else ''}" if view.matches else ""))
    st.caption(" · ".join(parts))
    if options.folded or options.fold_depth:
        st.button("Unfold all", key=f"{key}-unfold-all", on_click=_unfold_all, args=(key, tree_key))


def fold_button(tree: Tree, view: TreeView, options: ViewOptions, node_id: int, *, key: str, tree_key: str) -> None:
    """Fold or unfold the inspected node's subtree (above the inspector)."""
    if node_id not in view.visible:
        st.caption(f"Node {node_id} is hidden in the chart by the view settings above it.")
        return
    if not tree.nodes[node_id].children:
        return
    if is_folded(tree, node_id, options):
        label = f"➕ Unfold node {node_id} ({hidden_label(view.hidden_below.get(node_id, 0))})"
    else:
        label = f"➖ Fold node {node_id}'s subtree ({subtree_size(tree, node_id):,} nodes)"
    st.button(label, key=f"{key}-fold-{node_id}", on_click=_toggle, args=(tree, node_id, options, key, tree_key))


def _folds(key: str, tree_key: str) -> dict[str, set[int]]:
    """This run's folds in the session: {"folded": ids, "unfolded": ids exempt from fold_depth}."""
    store = st.session_state.setdefault(f"{key}-folds", {})
    return store.setdefault(tree_key, {"folded": set(), "unfolded": set()})


def _toggle(tree: Tree, node_id: int, options: ViewOptions, key: str, tree_key: str) -> None:
    folds = _folds(key, tree_key)
    if is_folded(tree, node_id, options):
        folds["folded"].discard(node_id)
        if tree.nodes[node_id].depth == options.fold_depth:
            folds["unfolded"].add(node_id)
    else:
        folds["folded"].add(node_id)
        folds["unfolded"].discard(node_id)


def _unfold_all(key: str, tree_key: str) -> None:
    folds = _folds(key, tree_key)
    folds["folded"].clear()
    folds["unfolded"].clear()
    st.session_state[f"{key}-fold-depth"] = 0
