"""The lab's figure: this controller's accuracy against tokens, drawn over the built-in baselines' curves.

Pure: evaluation results in (computed by ``engine.lab``), a ``go.Figure`` out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from engine.lab import point_label

# Token axis by the ``axis`` query key: (result attribute, axis title).
AXES = {
    "total": ("avg_total_tokens", "avg total tokens per question (log)"),
    "sequential": ("avg_sequential_tokens", "avg sequential tokens per question (log)"),
}
BASELINE_STYLE = {  # name -> (legend label, colour)
    "sc": ("SC", "#4C78A8"),
    "asc": ("ASC", "#F58518"),
    "esc": ("ESC", "#54A24B"),
    "parallel_probe": ("Parallel-Probe", "#B279A2"),
    "cmc": ("CMC", "#E45756"),
}
OWN_COLOUR = "#222222"


def scaling_curves(baselines: Mapping[str, Sequence[Any]], current: Any, own: Sequence[Any] = (), *,
                   name: str, axis: str = "total", highlight: str | None = None) -> go.Figure:
    """Baseline curves (thin), this controller's own sweep (thick) and its current point (a star with
    its 95% CI), accuracy against tokens on a log axis: where the code stands against SC..CMC."""
    attr, title = AXES[axis]
    fig = go.Figure()
    for base, results in baselines.items():
        label, colour = BASELINE_STYLE.get(base, (base, "#888888"))
        wide = base == highlight
        fig.add_trace(_curve(results, attr, label, colour, width=4 if wide else 1.5, dash=None if wide else "dot"))
    if own:
        fig.add_trace(_curve(own, attr, f"{name} (sweep)", OWN_COLOUR, width=3, dash=None))
    lo, hi = current.ci95
    fig.add_trace(go.Scatter(
        x=[getattr(current, attr)], y=[current.accuracy], mode="markers", name=f"{name} now",
        marker={"symbol": "star", "size": 18, "color": OWN_COLOUR, "line": {"color": "white", "width": 1}},
        error_y={"type": "data", "symmetric": False, "array": [hi - current.accuracy],
                 "arrayminus": [current.accuracy - lo], "color": OWN_COLOUR},
        hovertemplate=(f"{name} {point_label(current.config)}<br>%{{y:.2f}}% (95% CI {lo:.1f}-{hi:.1f})"
                       "<br>%{x:,.0f} tokens<extra></extra>"),
    ))
    counts = {r.shuffles for results in baselines.values() for r in results} - {current.shuffles}
    shuffles = f"{current.shuffles} shuffles" + (f"; baselines {max(counts)}" if counts else "")
    fig.update_layout(
        title=f"{name} against the baselines on {current.dataset} ({shuffles})",
        xaxis={"type": "log", "title": title}, yaxis={"title": "accuracy (%)"},
        legend={"orientation": "h", "y": -0.2}, height=480,
    )
    return fig


def _curve(results: Sequence[Any], attr: str, label: str, colour: str, *, width: float, dash: str | None) -> go.Scatter:
    return go.Scatter(
        x=[getattr(r, attr) for r in results], y=[r.accuracy for r in results], mode="lines+markers", name=label,
        line={"color": colour, "width": width, "dash": dash}, marker={"size": 6},
        customdata=[[point_label(r.config), r.ci95[0], r.ci95[1]] for r in results],
        hovertemplate=(f"{label} %{{customdata[0]}}<br>%{{y:.2f}}% (95% CI %{{customdata[1]:.1f}}-"
                       "%{customdata[2]:.1f})<br>%{x:,.0f} tokens<extra></extra>"),
    )
