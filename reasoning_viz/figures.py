"""Pure figure builders: a Tree (plus positions) in, a plotly Figure out; no Streamlit here.

All model text goes through `html.escape` before it reaches hover labels, because plotly
renders a subset of HTML in them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import plotly.graph_objects as go

from reasoning_viz.layout import PLOT_WIDTH, chart_frame
from reasoning_viz.tree_view import TreeView, hidden_label
from search.models import DEFAULT_SCORE_NAME
from search.tree import Node, Tree

COLORSCALE = "RdYlGn"
#: Unscored nodes are hollow (white fill, grey rim); pruned nodes are grey, faded, with dotted edges.
NO_SCORE = "#ffffff"
PRUNED = "#9e9e9e"
PRUNED_OPACITY = 0.35
HIGHLIGHT = "#ff7f0e"
#: Search matches get a magenta ring; a folded node a grey square around it and "+k hidden".
MATCH = "#c2185b"
FOLDED = "#616161"
LEGEND = (
    "Colour: PRM score (white: not scored) · size: visits · ★ correct ✕ wrong ◆ unchecked · "
    "blue: current path · black: chosen path · red dashes: backtracks · faded grey, dotted edge: pruned · "
    "grey square, +k hidden: a folded subtree · magenta ring: a search match"
)


def score_name(tree: Tree) -> str:
    """What this run's PRM step score is called: "PRM score", or e.g. "value-model score" when the
    run's SEARCH_STARTED said its PRM slot held a value model (`search.models.Models.score_name`)."""
    name = (tree.meta or {}).get("score_name")
    return name if isinstance(name, str) and name.strip() else DEFAULT_SCORE_NAME


#: Room (px) above the colour bar for plotly's toolbar (its buttons are about 25 px high).
COLORBAR_TOP_PX = 36


def score_label(tree: Tree) -> str:
    """The step score's short name for columns and sentences: "PRM", or the run's own score name
    without " score" ("value-model" for the countdown value model; see `score_name`)."""
    name = score_name(tree)
    return "PRM" if name == DEFAULT_SCORE_NAME else name.removesuffix(" score")


def for_scorer(text: str, tree: Tree) -> str:
    """`text` with "PRM" read as this run's scorer (`score_label`): "PRM agrees" becomes
    "value-model agrees" on a run scored by the countdown value model; unchanged for a PRM."""
    label = score_label(tree)
    return text if label == "PRM" else text.replace("PRM", label)


@dataclass(frozen=True)
class Paint:
    """Node colours for one measure (built by `reasoning_viz.colouring.paint`).

    values: node id -> a number (numeric measures) or an Agreement label ("truth"); nodes absent
    have no value and are drawn hollow.  colors: label -> colour for a categorical measure (None
    for numeric).  cmin/cmax/scale: the colour scale of a numeric measure.  note: a sentence when
    the measure cannot be shown for this run (e.g. no step checker).
    """

    key: str
    title: str
    values: dict[int, float | str] = field(default_factory=dict)
    colors: dict[str, str] | None = None
    cmin: float = 0.0
    cmax: float = 1.0
    scale: str = COLORSCALE
    note: str | None = None


def preview(text: str, limit: int = 80) -> str:
    """Escaped, shortened step text for hover labels and tables."""
    short = text if len(text) <= limit else text[: limit - 1] + "…"
    return html.escape(short)


def step_scores(tree: Tree, source: str = "prm") -> dict[int, float]:
    """Every node's own step score from `source`, as the tree, path table and score strip show it.

    A node scored directly has `scores[source]` (the score of its last step).  Some strategies
    (best-of-N) score only whole solutions: the PRM then returns one score per step of the path
    (`step_scores`), and those are the scores of the path's earlier nodes too, because a PRM's
    step score depends only on the steps up to it.  Nodes no score reached are absent.
    """
    out: dict[int, float] = {}
    for node in tree:
        per_step = node.step_scores.get(source)
        if not per_step:
            continue
        path = tree.path(node.id)[1:]
        n = min(len(path), len(per_step))  # aligned from the end: the last score is this node's
        for step_node, value in zip(path[len(path) - n :], per_step[len(per_step) - n :], strict=True):
            out.setdefault(step_node.id, value)
    for node in tree:
        if source in node.scores:
            out[node.id] = node.scores[source]
    return out


def hover_text(node: Node, score: float | None = None, colour_line: str | None = None, scorer: str = "prm") -> str:
    """The escaped hover label of one node; `colour_line`: a line saying what its colour shows;
    `scorer`: the name its "prm" score is shown under ("value-model" for a value model)."""
    lines = [f"<b>#{node.id}</b> depth {node.depth}", preview(node.text) if node.text else "<i>problem</i>"]
    shown = dict(node.scores)
    if score is not None:
        shown.setdefault("prm", score)
    scores = ", ".join(f"{scorer if k == 'prm' else k} {v:.2f}" for k, v in sorted(shown.items()) if k != "confidence")
    if scores:
        lines.append(scores)
    if node.visits:
        lines.append(f"visits {node.visits}, Q {node.q_mean:.2f}")
    if node.terminal:
        verdict = {True: "correct", False: "wrong", None: "unchecked"}[node.correct]
        lines.append(f"answer {html.escape(str(node.answer))} ({verdict})")
    if node.pruned:
        lines.append(f"pruned: {preview(node.prune_reason or '', 60)}")
    if colour_line:
        lines.append(html.escape(colour_line))
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
    highlight: int | None = None,
    max_backtracks: int = 30,
    paint: Paint | None = None,
    view: TreeView | None = None,
    orientation: str = "auto",
    plot_width: float = PLOT_WIDTH,
) -> go.Figure:
    """The search tree: colour = `paint` (default: PRM score), size = visits, terminal symbols,
    paths and backtracks.

    positions: a `layout.tidy_layout` (of the visible nodes, or of a replay's final tree); only
    nodes both in it and in `tree` are drawn, but all of it sets the orientation and height.
    selected: the inspected node (thick black rim); highlight: the node the current narration
    is about (orange ring).  Clicking selects a point, but no node is ever faded for it.
    paint: what the colour shows (`reasoning_viz.colouring.paint`); nodes it has no value for
    are hollow, pruned nodes grey and faded whatever it shows.
    view: folds and search (`tree_view.tree_view`): a node with hidden descendants gets a grey
    square and "+k hidden", a search match a magenta ring.
    orientation: "auto", "top-down" or "left-right" (`layout.chart_frame`); the figure's height
    grows with the tree so that no two nodes overlap.
    The node markers are always the last traces (clicks carry node ids in `customdata`).
    """
    if paint is None:
        paint = Paint("prm", score_name(tree), dict(step_scores(tree)))
    frame = chart_frame(positions, orientation, plot_width)  # a replay's frames share the final tree's frame
    positions = {n: xy for n, xy in frame.positions.items() if n in tree.nodes}
    ids = sorted(positions)
    live = [n for n in ids if not tree.nodes[n].pruned]
    pruned = [n for n in ids if tree.nodes[n].pruned]
    chosen = (tree.chosen or {}).get("node")
    traces = [
        _edge_trace(tree, positions, live, color="#8a8a8a", width=1),
        _edge_trace(tree, positions, pruned, color=PRUNED, width=1, dash="dot"),
        _edge_trace(tree, positions, [n for n in tree.current_path if n in positions], color="#1f77b4", width=3),
        _edge_trace(tree, positions, [n for n in _path_ids(tree, chosen) if n in positions], color="#111111", width=5),
    ]
    traces += _backtrack_traces(tree, positions, max_backtracks)
    sizes = _marker_sizes(tree, frame.max_marker)
    if view is not None:
        drawn = max((sizes[n] for n in positions), default=frame.max_marker)
        traces += _view_traces(view, positions, frame.orientation, drawn)
    if highlight is not None and highlight in positions:
        traces.append(_ring([highlight], positions, size=frame.max_marker + 10, color=HIGHLIGHT))
    scores = step_scores(tree)
    unscored = [n for n in live if n not in paint.values]
    scored = [n for n in live if n in paint.values]
    common = (tree, positions, selected, scores, paint, sizes)
    traces.append(_node_trace(*common, pruned, color=PRUNED, opacity=PRUNED_OPACITY))
    traces.append(_node_trace(*common, unscored, color=NO_SCORE))
    traces.append(_node_trace(*common, scored))
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
        height=frame.height,
    )
    return figure


#: How far each marker symbol reaches past a circle of the same plotly size (its half-width over
#: the radius, from plotly's symbol paths): an "x" of size s is 1.13 s wide, a star 1.4 s tall.
SYMBOL_REACH = {"circle": 1.0, "x": 1.13, "star": 1.4, "diamond": 1.3}


def _marker_sizes(tree: Tree, biggest: float) -> dict[int, float]:
    """Marker sizes (plotly px): 9 + 3·sqrt(visits), scaled down so the busiest node is at most
    `biggest` px (the room a neighbour leaves; `layout.chart_frame`), and each symbol small enough
    that what it draws (`SYMBOL_REACH`) stays within that room (neighbouring ✕ touched in a dense
    2,000-node tree)."""
    base = min(9.0, biggest)
    extra = {n.id: 3 * math.sqrt(n.visits) for n in tree}
    top = max(extra.values(), default=0.0)
    scale = min(1.0, (biggest - base) / top) if top > 0 else 1.0
    return {
        node_id: min(base + value * scale, biggest / SYMBOL_REACH[_marker_symbol(tree.nodes[node_id])])
        for node_id, value in extra.items()
    }


def _ring(ids: Sequence[int], positions: Mapping[int, tuple[float, float]], *, size: float, color: str,
          symbol: str = "circle") -> go.Scatter:
    return go.Scatter(
        x=np.array([positions[n][0] for n in ids], dtype=float),
        y=np.array([positions[n][1] for n in ids], dtype=float),
        mode="markers",
        hoverinfo="skip",
        showlegend=False,
        marker={"size": size, "symbol": symbol, "color": "rgba(0,0,0,0)", "line": {"width": 3, "color": color}},
    )


#: Width of one character of a fold label (px, 10-px font), and the room kept between two labels.
LABEL_CHAR_PX, LABEL_GAP_PX = 6.5, 6


def fold_labels(folded: Sequence[int], positions: Mapping[int, tuple[float, float]], orientation: str,
                hidden_below: Mapping[int, int], plot_px: float = PLOT_WIDTH) -> list[str]:
    """The text beside each folded marker: "+k hidden", or "+k" in a row too tight for that, or none
    where even "+k" would run into its neighbour's label (the count stays in the hover).

    Top-down, labels sit under their markers, side by side along a row (one depth): a row's form is
    the one whose widest label fits the row's closest two folded markers, at `plot_px` (the
    narrowest chart's plot width, `layout.PLOT_WIDTH`) spread over the layout's columns.  Left to
    right, each label sits right of its marker on its own row (`layout.ROW_PX` apart): always full.
    """
    full = [hidden_label(hidden_below[n]) for n in folded]
    if orientation == "left-right" or not folded:
        return full
    xs = [x for x, _ in positions.values()]
    unit_px = plot_px / (max(xs) - min(xs) + 1)
    rows: dict[float, list[int]] = {}
    for i, n in enumerate(folded):
        rows.setdefault(round(positions[n][1], 6), []).append(i)
    out = list(full)
    for members in rows.values():
        at = sorted(positions[folded[i]][0] for i in members)
        gap = min((b - a for a, b in pairwise(at)), default=float("inf")) * unit_px
        short = [f"+{hidden_below[folded[i]]:,}" for i in members]
        for form in ([full[i] for i in members], short, [""] * len(members)):
            if gap >= max(len(t) for t in form) * LABEL_CHAR_PX + LABEL_GAP_PX or not any(form):
                break
        for i, text in zip(members, form, strict=True):
            out[i] = text
    return out


def _view_traces(
    view: TreeView, positions: Mapping[int, tuple[float, float]], orientation: str, biggest: float
) -> list[go.Scatter]:
    """Grey squares and "+k hidden" beside nodes with hidden descendants; rings on search matches.
    `biggest`: the biggest marker drawn (px); a square is 5 px wider, and its label clears it."""
    traces = []
    folded = [n for n in sorted(view.hidden_below) if n in positions]
    if folded:
        traces.append(_ring(folded, positions, size=biggest + 5, color=FOLDED, symbol="square"))
        traces.append(
            go.Scatter(
                x=np.array([positions[n][0] for n in folded], dtype=float),
                y=np.array([positions[n][1] for n in folded], dtype=float),
                mode="markers+text",  # an invisible marker the size of the square pushes the label clear of it
                marker={"size": biggest + 5, "color": "rgba(0,0,0,0)"},
                text=fold_labels(folded, positions, orientation, view.hidden_below),
                textposition="middle right" if orientation == "left-right" else "bottom center",
                textfont={"size": 10, "color": FOLDED},
                hovertext=[f"node {n}: {hidden_label(view.hidden_below[n])} below (folded)" for n in folded],
                hoverinfo="text",
                cliponaxis=False,  # the root's label sits at the chart's edge
                showlegend=False,
            )
        )
    matches = [n for n in view.matches if n in positions]
    if matches:
        traces.append(_ring(matches, positions, size=biggest + 12, color=MATCH))
    return traces


def _node_trace(
    tree: Tree,
    positions: Mapping[int, tuple[float, float]],
    selected: int | None,
    scores: Mapping[int, float],
    paint: Paint,
    sizes: Mapping[int, float],
    ids: list[int],
    color: str | None = None,
    opacity: float = 1.0,
) -> go.Scatter:
    """Node markers: coloured by `paint` (a scale, or a colour per class), or all in `color`
    (nodes without a value, pruned nodes), at one `opacity` that a click selection never changes."""
    nodes = [tree.nodes[n] for n in ids]
    fill = _fill(paint, nodes, color)
    label = score_label(tree)
    scorer = "prm" if label == "PRM" else label  # a PRM's hover keeps its lower-case score key
    return go.Scatter(
        # numpy arrays: plotly validates them in bulk, which keeps 2,000-node trees fast to draw
        x=np.array([positions[n.id][0] for n in nodes], dtype=float),
        y=np.array([positions[n.id][1] for n in nodes], dtype=float),
        mode="markers",
        customdata=np.array([n.id for n in nodes], dtype=int),
        hovertext=np.array([hover_text(n, scores.get(n.id), _shown(paint, n.id), scorer) for n in nodes], dtype=object),
        hoverinfo="text",
        marker={
            "size": np.array([sizes[n.id] for n in nodes], dtype=float),
            "symbol": np.array([_marker_symbol(n) for n in nodes], dtype=object),
            **fill,
            "opacity": opacity,
            "line": {
                "width": np.array([3 if n.id == selected else 1 for n in nodes], dtype=float),
                "color": np.array(["#000000" if n.id == selected else "#555555" for n in nodes], dtype=object),
            },
        },
        # plotly fades unselected points after a click; the inspector shows the pick instead
        selected={"marker": {"opacity": opacity}},
        unselected={"marker": {"opacity": opacity}},
        showlegend=False,
        # Every value above is built here from typed data; skipping plotly's per-element
        # validation keeps a 2,000-node tree well under a poll interval.
        _validate=False,
    )


def _fill(paint: Paint, nodes: Sequence[Node], color: str | None) -> dict:
    """plotly marker colour settings: one colour, a colour per class, or a value on a colour scale.

    Pruned nodes (`color` PRUNED) keep their class colour under a categorical paint, faded: a slip
    the PRM caught is usually a pruned node, and that is what the "PRM vs checker" view must show.
    """
    if color == PRUNED and paint.colors is not None:
        return {"color": np.array([paint.colors.get(paint.values.get(n.id), PRUNED) for n in nodes], dtype=object)}
    if color:
        return {"color": color}
    if paint.colors is not None:
        return {"color": np.array([paint.colors[paint.values[n.id]] for n in nodes], dtype=object)}
    return {
        "color": np.array([paint.values[n.id] for n in nodes], dtype=float),
        "colorscale": paint.scale,
        "cmin": paint.cmin,
        "cmax": paint.cmax,
        # a fixed length at the top: a tall tree's chart must not stretch the bar over its height;
        # its title runs beside it and it starts below plotly's toolbar, which hid a title on top
        "colorbar": {"title": {"text": paint.title, "side": "right"}, "thickness": 12, "lenmode": "pixels",
                     "len": 320, "yanchor": "top", "y": 1, "ypad": COLORBAR_TOP_PX},
    }


def _shown(paint: Paint, node_id: int) -> str | None:
    """The hover line naming what the node's colour shows (None for the PRM, already listed)."""
    if paint.key == "prm":
        return None
    value = paint.values.get(node_id)
    if value is None:
        return f"{paint.title}: none"
    return f"{paint.title}: {value if isinstance(value, str) else f'{value:.2f}'}"


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
    known = step_scores(tree, source)
    scores = [known.get(n.id) for n in path]
    labels = [f"{i + 1}. {preview(n.text, 40)}" for i, n in enumerate(path)]
    figure = go.Figure(
        go.Heatmap(
            z=[[s if s is not None else float("nan") for s in scores]],
            x=labels,
            y=[score_label(tree) if source == "prm" else source],
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
