"""How fast the live tree view redraws as trees grow (layout + plotly figure), up to ~2,000 nodes.

Usage: ``PYTHONPATH=. python bench/bench_figures.py``.  The app polls every 0.5 s, so a redraw
well under that keeps the view smooth.  Trees come from beam searches on the scripted models.
"""

from __future__ import annotations

import statistics
import time

from reasoning_viz.figures import tree_figure
from reasoning_viz.layout import tidy_layout
from reasoning_viz.tree_view import ViewOptions, tree_view
from search import run_search
from search.fakes import ScriptedPolicy, ScriptedPRM
from search.models import Models

PROBLEM = "Start with 17. Add 25. Multiply by 3. Subtract 14. What is the result?"


def timed(fn, repeats: int = 5) -> float:
    """Median milliseconds over `repeats` calls after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    models = Models(ScriptedPolicy(), ScriptedPRM())
    print(f"{'nodes':>6} {'tidy ms':>8} {'view ms':>8} {'figure ms':>10} {'json MB':>8}")
    options = ViewOptions(hide_pruned=True, fold_depth=3, query="add")
    for n in (16, 64, 200, 500):
        tree = run_search(PROBLEM, task="arith", strategy="beam", models=models, config={"n": n, "beam_width": 4}).tree
        positions = tidy_layout(tree)
        tidy = timed(lambda t=tree: tidy_layout(t))
        view = timed(lambda t=tree: tidy_layout(t, tree_view(t, options).visible))  # folds + filters + layout
        figure = timed(lambda t=tree, p=positions: tree_figure(t, p))
        size = len(tree_figure(tree, positions).to_json()) / 1e6
        print(f"{len(tree):>6} {tidy:>8.1f} {view:>8.1f} {figure:>10.1f} {size:>8.2f}")


if __name__ == "__main__":
    main()
