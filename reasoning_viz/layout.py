"""Tidy tree layout (igraph's Reingold-Tilford): one layout for the live view and a fresh load.

The live view once anchored nodes where earlier polls had put them and placed new nodes at
their parent plus a fresh offset; as subtrees widened, those offsets collided, so the live
tree showed overlapping nodes, crossing edges and a chosen path drawn onto another node,
while the same run opened fresh looked right.  Now every poll lays out the whole tree again
(milliseconds at 2,000 nodes): nodes may shift as the tree grows, but the picture is always
the one a fresh load shows.  A replay uses the finished tree's layout for every frame.
"""

from __future__ import annotations

import igraph as ig

from search.tree import ROOT_ID, Tree

Positions = dict[int, tuple[float, float]]


def tidy_layout(tree: Tree) -> Positions:
    """Reingold-Tilford positions (x, depth) for every node; y grows downwards with depth."""
    if not tree.nodes:
        return {}
    ids = sorted(tree.nodes)
    index = {node_id: i for i, node_id in enumerate(ids)}
    edges = [(index[n.parent], index[n.id]) for n in tree if n.parent is not None]
    graph = ig.Graph(n=len(ids), edges=edges, directed=True)
    coords = graph.layout_reingold_tilford(mode="out", root=[index[ROOT_ID]])
    return {node_id: (float(coords[index[node_id]][0]), float(tree.nodes[node_id].depth)) for node_id in ids}
