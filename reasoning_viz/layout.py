"""Tidy tree layout (igraph's Reingold-Tilford), kept stable while a tree grows.

Why anchoring: re-running Reingold-Tilford after every poll would move existing nodes as
new subtrees widen their neighbours.  Given the previous positions, nodes already drawn keep
theirs, and each new node is placed at its parent's position plus the offset the fresh
Reingold-Tilford layout gives it, so new growth fans out under its parent and nothing jumps.
A replay uses the finished tree's layout for every frame, which is stable by construction.
"""

from __future__ import annotations

from collections.abc import Mapping

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


def stable_layout(tree: Tree, previous: Mapping[int, tuple[float, float]] | None = None) -> Positions:
    """Tidy layout that keeps every node already in `previous` where it was."""
    fresh = tidy_layout(tree)
    if not previous:
        return fresh
    placed: Positions = {}
    for node_id in sorted(tree.nodes):  # parents have lower ids than their children
        node = tree.nodes[node_id]
        if node_id in previous:
            placed[node_id] = previous[node_id]
        elif node.parent is None or node.parent not in placed:
            placed[node_id] = fresh[node_id]
        else:
            px, _ = placed[node.parent]
            offset = fresh[node_id][0] - fresh[node.parent][0]
            placed[node_id] = (px + offset, float(node.depth))
    return placed
