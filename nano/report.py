"""Training reports written next to the weights: loss curve (plotly HTML + matplotlib PNG) and an eval table.

Why matplotlib for the PNG: plotly's PNG export needs kaleido plus a Chrome, which an offline
machine may not have; the HTML stays interactive, the PNG is for the README.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go


def write_loss_curve(out_dir: Path, steps: Sequence[int], losses: Sequence[float], title: str) -> None:
    """loss_curve.html (interactive) and loss_curve.png (static) in `out_dir`."""
    fig = go.Figure(go.Scatter(x=list(steps), y=list(losses), mode="lines", name="train loss"))
    fig.update_layout(title=title, xaxis_title="optimizer step", yaxis_title="loss", template="plotly_white")
    fig.write_html(out_dir / "loss_curve.html", include_plotlyjs="cdn")
    save_png(out_dir / "loss_curve.png", {"train loss": (list(steps), list(losses))}, title, "optimizer step", "loss")


def save_png(
    path: Path,
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
) -> None:
    """A static line chart (markers when there are few points)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_eval_table(out_dir: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """eval.json (rows + training metadata) and eval.md (a markdown table); returns the markdown."""
    (out_dir / "eval.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] if rows else []
    lines += ["| " + " | ".join(_fmt(v) for v in row.values()) + " |" for row in rows]
    meta_lines = [f"- {k}: {_fmt(v)}" for k, v in meta.items()]
    text = "\n".join(["# Evaluation", "", *lines, "", "## Training", "", *meta_lines, ""])
    (out_dir / "eval.md").write_text(text)
    return text


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
