"""Pure figure builders: a Tree (plus positions) in, a plotly Figure out; no Streamlit here.

All model text goes through `html.escape` before it reaches hover labels, because plotly
renders a subset of HTML in them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from search.tree import Node, Tree

COLORSCALE = "RdYlGn"
NO_SCORE = "#9e9e9e"
PRUNED = "#d0d0d0"


def preview(text: str, limit: int = 80) -> str:
    """Escaped, shortened step text for hover labels and tables."""
    short = text if len(text) <= limit else text[: limit - 1] + "…"
    return html.escape(short)


def hover_text(node: Node) -> str:
    lines = [f"<b>#{node.id}</b> depth {node.depth}", preview(node.text) if node.text else "<i>problem</i>"]
    scores = ", ".join(f"{k} {v:.2f}" for k, v in sorted(node.scores.items()) if k != "confidence")
    if scores:
        lines.append(scores)
    if node.visits:
        lines.append(f"visits {node.visits}, Q {node.q_mean:.2f}")
    if node.terminal:
        verdict = {True: "correct", False: "wrong", None: "unchecked"}[node.correct]
        lines.append(f"answer {html.escape(str(node.answer))} ({verdict})")
    if node.pruned:
        lines.append(f"pruned: {preview(node.prune_reason or '', 60)}")
    return "<br>".join(lines)


def _edge_trace(tree: Tree, pos: Mapping[int, tuple[float, float]], ids: Sequence[int], **line) -> go.Scatter:
    xs: list[float | None] = []
    ys: list[float | None] = []
    for node_id in ids:
        node = tree.nodes[node_id]
        if node.parent is None:
            continue
        (x0, y0), (x1, y1) = pos[node.parent], pos[node_id]
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    return go.Scatter(
        x=np.array(xs, dtype=float),
        y=np.array(ys, dtype=float),
        mode="lines",
        hoverinfo="skip",
        showlegend=False,
        line=line,
    )


def _path_ids(tree: Tree, node_id: int | None) -> list[int]:
    return [n.id for n in tree.path(node_id)] if node_id is not None and node_id in tree.nodes else []


def _marker_symbol(node: Node) -> str:
    if not node.terminal:
        return "circle"
    return {True: "star", False: "x", None: "diamond"}[node.correct]


def tree_figure(
    tree: Tree,
    positions: Mapping[int, tuple[float, float]],
    *,
    selected: int | None = None,
    max_backtracks: int = 30,
) -> go.Figure:
    """The search tree: colour = PRM score, size = visits, terminal symbols, paths and backtracks."""
    ids = sorted(n for n in tree.nodes if n in positions)
    live = [n for n in ids if not tree.nodes[n].pruned]
    pruned = [n for n in ids if tree.nodes[n].pruned]
    chosen = (tree.chosen or {}).get("node")
    traces = [
        _edge_trace(tree, positions, live, color="#8a8a8a", width=1),
        _edge_trace(tree, positions, pruned, color=PRUNED, width=1, dash="dot"),
        _edge_trace(tree, positions, [n for n in tree.current_path if n in positions], color="#1f77b4", width=3),
        _edge_trace(tree, positions, _path_ids(tree, chosen), color="#111111", width=5),
    ]
    traces += _backtrack_traces(tree, positions, max_backtracks)
    unscored = [n for n in ids if _color_value(tree.nodes[n]) is None]
    scored = [n for n in ids if _color_value(tree.nodes[n]) is not None]
    traces.append(_node_trace(tree, positions, unscored, selected, color=NO_SCORE))
    traces.append(_node_trace(tree, positions, scored, selected))
    figure = go.Figure(traces)
    figure.update_layout(
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"visible": False},
        yaxis={"visible": False, "autorange": "reversed"},
        plot_bgcolor="white",
        uirevision="tree",  # keep the user's zoom while the tree grows
        clickmode="event+select",
        dragmode="pan",
        showlegend=False,
        height=560,
    )
    return figure


def _node_trace(
    tree: Tree,
    positions: Mapping[int, tuple[float, float]],
    ids: list[int],
    selected: int | None,
    color: str | None = None,
) -> go.Scatter:
    """Node markers: coloured by PRM score on one scale, or all in `color` (unscored nodes)."""
    nodes = [tree.nodes[n] for n in ids]
    paint = (
        {"color": color}
        if color
        else {
            "color": [_color_value(n) for n in nodes],
            "colorscale": COLORSCALE,
            "cmin": 0,
            "cmax": 1,
            "colorbar": {"title": {"text": "PRM score"}, "thickness": 12},
        }
    )
    return go.Scatter(
        # numpy arrays: plotly validates them in bulk, which keeps 2,000-node trees fast to draw
        x=np.array([positions[n.id][0] for n in nodes], dtype=float),
        y=np.array([positions[n.id][1] for n in nodes], dtype=float),
        mode="markers",
        customdata=np.array([n.id for n in nodes], dtype=int),
        hovertext=np.array([hover_text(n) for n in nodes], dtype=object),
        hoverinfo="text",
        marker={
            "size": np.array([9 + 3 * math.sqrt(n.visits) for n in nodes], dtype=float),
            "symbol": np.array([_marker_symbol(n) for n in nodes], dtype=object),
            **paint,
            "opacity": np.array([0.35 if n.pruned else 1.0 for n in nodes], dtype=float),
            "line": {
                "width": np.array([3 if n.id == selected else 1 for n in nodes], dtype=float),
                "color": np.array(["#000000" if n.id == selected else "#555555" for n in nodes], dtype=object),
            },
        },
        showlegend=False,
        # Every value above is built here from typed data; skipping plotly's per-element
        # validation keeps a 2,000-node tree well under a poll interval.
        _validate=False,
    )


def _color_value(node: Node) -> float | None:
    return node.scores.get("prm")


def _backtrack_traces(tree: Tree, positions: Mapping[int, tuple[float, float]], limit: int) -> list[go.Scatter]:
    """Dashed arrows from the abandoned leaf back to the node where the search turned."""
    traces = []
    for move in tree.backtracks[-limit:]:
        a, b = move["from_node"], move["to_node"]
        if a not in positions or b not in positions:
            continue
        (x0, y0), (x1, y1) = positions[a], positions[b]
        traces.append(
            go.Scatter(
                x=[x0, x1],
                y=[y0, y1],
                mode="lines+markers",
                line={"color": "#d62728", "width": 1.5, "dash": "dash"},
                marker={"symbol": ["circle", "arrow"], "size": [4, 11], "angleref": "previous"},
                hoverinfo="skip",
                showlegend=False,
            )
        )
    return traces


def score_strip(tree: Tree, node_id: int, source: str = "prm") -> go.Figure:
    """The root path's steps as a coloured strip of per-step scores."""
    path = tree.path(node_id)[1:]
    scores = tree.nodes[node_id].step_scores.get(source) or [n.scores.get(source) for n in path]
    labels = [f"{i + 1}. {preview(n.text, 40)}" for i, n in enumerate(path)]
    figure = go.Figure(
        go.Heatmap(
            z=[[s if s is not None else float("nan") for s in scores]],
            x=labels,
            y=[source],
            zmin=0,
            zmax=1,
            colorscale=COLORSCALE,
            text=[[f"{s:.2f}" if s is not None else "–" for s in scores]],
            texttemplate="%{text}",
            hovertemplate="%{x}<br>score %{z:.3f}<extra></extra>",
            showscale=False,
        )
    )
    figure.update_layout(height=120, margin={"l": 10, "r": 10, "t": 10, "b": 10}, xaxis={"showticklabels": False})
    return figure
