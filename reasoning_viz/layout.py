"""Tree layouts for the chart: one layout for the live view and a fresh load.

The live view once anchored nodes where earlier polls had put them and placed new nodes at
their parent plus a fresh offset; as subtrees widened, those offsets collided, so the live
tree showed overlapping nodes, crossing edges and a chosen path drawn onto another node,
while the same run opened fresh looked right.  Now every poll lays out the whole tree again
(milliseconds at 2,000 nodes): nodes may shift as the tree grows, but the picture is always
the one a fresh load shows.  A replay uses the finished tree's layout for every frame.

Two layouts, chosen by `tidy_layout` from the tree's shape:
- a tree whose Reingold-Tilford layout (igraph) fits the narrowest chart's width is drawn with it,
  top-down;
- a wider tree (hundreds of leaves, or a wide fold) gets a packed layered layout drawn left to
  right: one band per depth, each band's nodes in their parents' order and packed as close to
  their parent as the nodes before them allow, and wide bands staggered over several sub-columns
  (Graphviz's `unflatten` staggers wide fan-outs the same way to improve a layout's aspect ratio).
  The depth bands then share the chart's width, and its height grows with the widest band instead
  of with the leaf count, so a 1,000-node search fills the page instead of a thin diagonal strip.

`chart_frame` turns a layout into the chart's coordinates and size.
"""

from __future__ import annotations

import math
from collections import Counter
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
#: The narrowest chart's plot area (px): its width less the margins and the colour bar.
PLOT_WIDTH = MIN_CHART_WIDTH - 110


def columns_in(plot_width: float) -> int:
    """How many columns a plot area `plot_width` px wide holds with markers of `MIN_MARKER` px and a gap."""
    return int(plot_width // (MIN_MARKER + 6))


#: The most columns that plot area holds with markers of `MIN_MARKER` px and a gap, and the
#: most sub-columns a depth band is staggered over.
MAX_COLUMNS = columns_in(PLOT_WIDTH)
MAX_STAGGER = 8


class Layout(dict):
    """Positions (node id -> (breadth, depth) in slots, y growing downwards) and the orientation
    they were made for ("top-down" or "left-right"; `chart_frame` draws "auto" that way)."""

    def __init__(self, positions: Positions, orientation: str = "top-down") -> None:
        super().__init__(positions)
        self.orientation = orientation


def tidy_layout(
    tree: Tree, visible: Collection[int] | None = None, orientation: str = "auto", plot_width: float = PLOT_WIDTH
) -> Layout:
    """Positions (breadth, depth) for every node, or for the `visible` ones only (a set closed under
    ancestors: see `tree_view.tree_view`).

    `orientation` "auto": Reingold-Tilford (igraph) top-down while the tree is at most
    `MAX_COLUMNS` wide, else `packed_layout` for left to right; "top-down" or "left-right" (a
    person chose the chart's layout): that one whatever the width (a packed layout drawn top-down
    is a narrow strip).  Either way no two nodes share a position, nodes of one depth band are at
    least 1 apart, and a node's children follow its parent's order (no crossing edges between
    adjacent bands).

    `plot_width` (px): the narrowest plot area the chart gets; the left-to-right layout staggers
    its depths over as many columns as that holds (a Compare column holds fewer).

    Raises ValueError for an unknown orientation.
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, not {orientation!r}")
    if not tree.nodes or ROOT_ID not in tree.nodes:
        return Layout({})
    ids = sorted(tree.nodes if visible is None else (n for n in visible if n in tree.nodes))
    if orientation == "left-right":
        return packed_layout(tree, ids, columns_in(plot_width))
    wide = max(Counter(tree.nodes[n].depth for n in ids).values()) > MAX_COLUMNS  # nodes of one depth are 1 apart
    if wide and orientation == "auto":
        return packed_layout(tree, ids)
    index = {node_id: i for i, node_id in enumerate(ids)}
    edges = [(index[tree.nodes[n].parent], index[n]) for n in ids if tree.nodes[n].parent is not None]
    graph = ig.Graph(n=len(ids), edges=edges, directed=True)
    coords = graph.layout_reingold_tilford(mode="out", root=[index[ROOT_ID]])
    xs = [coords[i][0] for i in range(len(ids))]
    if max(xs) - min(xs) + 1 <= MAX_COLUMNS:
        return Layout({n: (float(coords[index[n]][0]), float(tree.nodes[n].depth)) for n in ids})
    if orientation == "top-down":
        return wrapped_top_down(tree, ids)
    return packed_layout(tree, ids)


def wrapped_top_down(tree: Tree, visible: Collection[int]) -> Layout:
    """A top-down layout for a tree too wide for the chart: each depth's nodes, ordered by their
    parents' order then as siblings, fill rows of `MAX_COLUMNS` slots like lines of text (a band
    of one row is centred), one empty row between depths.  A person who asks for top-down on a
    1,000-node tree gets markers that do not overlap (one level per depth gave 434 columns in
    450 px) and a taller chart that scrolls; depth still grows downwards band by band.  O(n log n).
    """
    shown = set(visible)
    order = {ROOT_ID: 0}
    level, top, positions = [ROOT_ID], 0, {}
    while level:
        level.sort(key=lambda n: (order[tree.nodes[n].parent] if tree.nodes[n].parent is not None else 0, n))
        rows = math.ceil(len(level) / MAX_COLUMNS)
        offset = (MAX_COLUMNS - len(level)) / 2 if rows == 1 else 0.0
        for i, node_id in enumerate(level):
            order[node_id] = i
            positions[node_id] = (offset + i % MAX_COLUMNS, float(top + i // MAX_COLUMNS))
        top += rows + (1 if rows > 1 else 0)
        level = [c for n in level for c in tree.nodes[n].children if c in shown]
    return Layout(positions, "top-down")


def packed_layout(tree: Tree, visible: Collection[int], columns: int = MAX_COLUMNS) -> Layout:
    """The packed layered layout (for left to right): positions (slot, depth column).

    Depth d's band has `s` sub-columns (s = `columns` // depths - 1, 1 to `MAX_STAGGER`;
    a band takes s + 1 columns, the last one a gap, or 1 column when s is 1).  Going down the
    depths, each band's nodes are ordered by their parents' slots, then as siblings; a sibling
    group is centred on its parent's row and every node takes the first free slot at or after
    that (slot p: row p // s, sub-column p % s).  A node with hidden descendants (a fold: its
    "+k hidden" label runs to the right) starts a row and keeps it to itself.  O(n log n).
    """
    shown = set(visible)
    kids = {n: [c for c in tree.nodes[n].children if c in shown] for n in shown}
    labelled = {n for n in shown if len(kids[n]) < len(tree.nodes[n].children)}
    depths = max(tree.nodes[n].depth for n in shown) + 1
    stagger = max(1, min(MAX_STAGGER, columns // depths - 1))
    band = 1 if stagger == 1 else stagger + 1
    slot = {ROOT_ID: 0}
    level = [ROOT_ID]
    while level:
        taken = -math.inf
        placed = []
        for parent in level:
            group = sorted(kids[parent], key=lambda c: (not kids[c], c not in labelled))  # the lines that go on first
            first = (slot[parent] // stagger) * stagger - (len(group) - 1) // 2
            for j, child in enumerate(group):
                p = max(first + j, taken + 1)
                p, taken = _claim(p, stagger, labelled=child in labelled, inner=bool(kids[child]))
                slot[child] = p
                placed.append(child)
        level = placed
    return Layout(
        {n: (float(slot[n] // stagger), float(tree.nodes[n].depth * band + slot[n] % stagger)) for n in shown},
        "left-right",
    )


def _claim(p: int | float, stagger: int, *, labelled: bool, inner: bool) -> tuple[int, int]:
    """The slot a node takes at or after slot `p` of a band with `stagger` sub-columns, and the
    last slot it keeps.  A node with hidden descendants starts a row and keeps the row (its
    "+k hidden" runs to the right); one with visible children takes the last sub-column, next
    to the next band, so its edges pass no node of its own band."""
    p = int(p)
    if labelled:
        p += -p % stagger
        return p, p + stagger - 1
    if inner:
        p += (stagger - 1 - p) % stagger
    return p, p


@dataclass(frozen=True)
class Frame:
    """A layout placed on the chart.

    positions: node id -> (x, y) in plot units, y growing downwards.  orientation: "top-down"
    (x: breadth, y: depth) or "left-right" (x: depth, y: breadth).  height: the chart's height in
    px.  max_marker: the biggest marker (px) that cannot overlap a neighbour at `MIN_CHART_WIDTH`
    (in its `PLOT_WIDTH`).
    """

    positions: Positions
    orientation: str
    height: int
    max_marker: float


def chart_frame(positions: Positions, orientation: str = "auto", plot_width: float = PLOT_WIDTH) -> Frame:
    """Place a layout on the chart: `orientation` "auto" (the one a `Layout` was made for; for
    plain positions top-down while every column gets at least `MIN_MARKER` + 6 px of
    `PLOT_WIDTH`, else left-to-right), "top-down" or "left-right".  The height grows with
    the rows (left to right: `ROW_PX` each) or depth levels (top-down: `LEVEL_PX` each).
    `plot_width` (px): the narrowest plot area the chart gets, which sizes the markers (a
    Compare column is narrower than the Search page's tree).

    Raises ValueError for an unknown orientation.
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, not {orientation!r}")
    if not positions:
        return Frame({}, "top-down", BASE_HEIGHT, MAX_MARKER)
    xs = [x for x, _ in positions.values()]
    ys = [y for _, y in positions.values()]
    columns = max(xs) - min(xs) + 1
    levels = max(ys) - min(ys) + 1
    if orientation == "auto":
        orientation = getattr(positions, "orientation", None) or (
            "top-down" if columns <= MAX_COLUMNS else "left-right"
        )
    if orientation == "top-down":
        height = max(BASE_HEIGHT, int(levels * LEVEL_PX + MARGIN_PX))
        room = min(plot_width / columns, (height - MARGIN_PX) / levels)
        return Frame(dict(positions), orientation, height, _marker_limit(room))
    height = max(BASE_HEIGHT, int(columns * ROW_PX + MARGIN_PX))
    room = min((height - MARGIN_PX) / columns, plot_width / levels)
    return Frame({n: (y, x) for n, (x, y) in positions.items()}, orientation, height, _marker_limit(room))


def _marker_limit(room: float) -> float:
    """The biggest marker that leaves a gap of 2 px in `room` px."""
    return max(MIN_MARKER, min(MAX_MARKER, room - 2))
