"""Tidy tree layout (igraph's Reingold-Tilford): one layout for the live view and a fresh load.

The live view once anchored nodes where earlier polls had put them and placed new nodes at
their parent plus a fresh offset; as subtrees widened, those offsets collided, so the live
tree showed overlapping nodes, crossing edges and a chosen path drawn onto another node,
while the same run opened fresh looked right.  Now every poll lays out the whole tree again
(milliseconds at 2,000 nodes): nodes may shift as the tree grows, but the picture is always
the one a fresh load shows.  A replay uses the finished tree's layout for every frame.

`chart_frame` turns a layout into the chart's coordinates and size: top-down while the tree's
breadth fits the page's width, left-to-right (depth across the page, one row per leaf, a
height that grows with the tree) beyond, so a 1,000-node tree has no overlapping nodes.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import igraph as ig

from search.tree import ROOT_ID, Tree

Positions = dict[int, tuple[float, float]]

#: The narrowest tree chart the pages give (px): the 3/5 column at a 1,300-px window with a sidebar.
MIN_CHART_WIDTH = 560
#: Pixels per row (left-to-right) and per depth level (top-down), and the chart's margins.
ROW_PX = 16
LEVEL_PX = 64
MARGIN_PX = 40
#: The default chart height (px) and the smallest and biggest node markers (px across).
BASE_HEIGHT = 560
MIN_MARKER = 8
MAX_MARKER = 30
ORIENTATIONS = ("auto", "top-down", "left-right")


def tidy_layout(tree: Tree, visible: Collection[int] | None = None) -> Positions:
    """Reingold-Tilford positions (x, depth) for every node, or for the `visible` ones only (a set
    closed under ancestors: see `tree_view.tree_view`); y grows downwards with depth.  Adjacent
    nodes of one depth are at least 1 apart in x."""
    if not tree.nodes:
        return {}
    ids = sorted(tree.nodes if visible is None else (n for n in visible if n in tree.nodes))
    index = {node_id: i for i, node_id in enumerate(ids)}
    edges = [(index[tree.nodes[n].parent], index[n]) for n in ids if tree.nodes[n].parent is not None]
    graph = ig.Graph(n=len(ids), edges=edges, directed=True)
    coords = graph.layout_reingold_tilford(mode="out", root=[index[ROOT_ID]])
    return {node_id: (float(coords[index[node_id]][0]), float(tree.nodes[node_id].depth)) for node_id in ids}


@dataclass(frozen=True)
class Frame:
    """A layout placed on the chart.

    positions: node id -> (x, y) in plot units, y growing downwards.  orientation: "top-down"
    (x: breadth, y: depth) or "left-right" (x: depth, y: breadth).  height: the chart's height in
    px.  max_marker: the biggest marker (px) that cannot overlap a neighbour at `MIN_CHART_WIDTH`.
    """

    positions: Positions
    orientation: str
    height: int
    max_marker: float


def chart_frame(positions: Positions, orientation: str = "auto") -> Frame:
    """Place a `tidy_layout` on the chart: `orientation` "auto" (top-down while every column gets at
    least `MIN_MARKER` + 6 px of `MIN_CHART_WIDTH`, else left-to-right), "top-down" or "left-right".

    Raises ValueError for an unknown orientation.
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, not {orientation!r}")
    if not positions:
        return Frame({}, "top-down", BASE_HEIGHT, MAX_MARKER)
    xs = [x for x, _ in positions.values()]
    columns = max(xs) - min(xs) + 1
    levels = max(y for _, y in positions.values()) + 1
    if orientation == "auto":
        orientation = "top-down" if MIN_CHART_WIDTH / columns >= MIN_MARKER + 6 else "left-right"
    if orientation == "top-down":
        height = max(BASE_HEIGHT, int(levels * LEVEL_PX + MARGIN_PX))
        room = min(MIN_CHART_WIDTH / columns, LEVEL_PX)
        return Frame(dict(positions), orientation, height, _marker_limit(room))
    height = max(BASE_HEIGHT, int(columns * ROW_PX + MARGIN_PX))
    room = min(ROW_PX, MIN_CHART_WIDTH / max(levels, 1))
    return Frame({n: (y, x) for n, (x, y) in positions.items()}, orientation, height, _marker_limit(room))


def _marker_limit(room: float) -> float:
    """The biggest marker that leaves a gap of 2 px in `room` px."""
    return max(MIN_MARKER, min(MAX_MARKER, room - 2))
