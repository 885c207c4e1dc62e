"""Figures of /frontier: accuracy against tokens per dataset panel, and knobs in parallel coordinates.

They draw what ``engine.pareto`` and ``engine.frontier`` computed and compute nothing themselves
(the frontier is passed in, not found here).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from engine.pareto import Point, by_controller, pareto_frontier

PALETTE = qualitative.Plotly
FRONTIER_COLOR = "#222222"
COLUMNS = 2
PANEL_PX = 380
AXIS_TITLES = {"total": "avg total tokens per question (log)", "sequential": "avg sequential tokens per question (log)"}


class Series(NamedTuple):
    """Extra points drawn on a panel as they are (e.g. live generation): a name, tokens and accuracies."""

    name: str
    tokens: Sequence[float]
    accuracy: Sequence[float]


def controller_colors(names: Sequence[str]) -> dict[str, str]:
    """One stable colour per controller, in the order given (same colour in every panel)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def frontier_figure(
    panels: Mapping[str, Sequence[Point]], axis: str = "total", *, title: str = "",
    extra: Mapping[str, Sequence[Series]] | None = None, bands: bool = True,
) -> go.Figure:
    """One panel per title: each controller's sweep as a line (with its CI band if ``bands``), the
    Pareto frontier across all controllers as a dark dashed line with ringed points; log x. ``extra``
    adds named point series to the panels of those titles (e.g. live generation)."""
    titles = list(panels)
    rows = max(1, math.ceil(len(titles) / COLUMNS))
    cols = COLUMNS if len(titles) > 1 else 1
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles or None, horizontal_spacing=0.08,
                        vertical_spacing=min(0.3, 130 / (PANEL_PX * rows)))
    names = list(dict.fromkeys(p.controller for pts in panels.values() for p in pts))
    colors = controller_colors(names)
    for i, panel in enumerate(titles):
        where = {"row": i // cols + 1, "col": i % cols + 1}
        for trace in panel_traces(panels[panel], axis, colors, first=i == 0, bands=bands):
            fig.add_trace(trace, **where)
        for j, series in enumerate((extra or {}).get(panel, ())):
            fig.add_trace(extra_trace(series, PALETTE[(len(names) + j) % len(PALETTE)]), **where)
    fig.update_xaxes(type="log", title_text=AXIS_TITLES[axis])
    fig.update_yaxes(title_text="accuracy (%)")
    fig.update_layout(title=title or None, height=120 + PANEL_PX * rows, hovermode="closest")
    return fig


def panel_traces(points: Sequence[Point], axis: str, colors: Mapping[str, str], first: bool = True,
                 bands: bool = True) -> list[go.Scatter]:
    """The traces of one panel: per controller a CI band and a line, then the frontier on top."""
    traces: list[go.Scatter] = []
    for name, pts in by_controller(points).items():
        pts = sorted(pts, key=lambda p: p.tokens(axis))
        if bands:
            traces.extend(band_traces(pts, axis, colors[name], name))
        traces.append(go.Scatter(
            x=[p.tokens(axis) for p in pts], y=[p.accuracy for p in pts], name=name, legendgroup=name,
            showlegend=first, mode="lines+markers", line={"color": colors[name]},
            customdata=[hover_data(p) for p in pts],
            hovertemplate=("<b>%{customdata[0]}</b> %{customdata[1]}<br>accuracy %{y:.2f}% "
                           "(95% CI %{customdata[2]:.1f}-%{customdata[3]:.1f})<br>total %{customdata[4]:,.0f} tokens"
                           "<br>sequential %{customdata[5]:,.0f} tokens<extra>%{customdata[6]}</extra>"),
        ))
    front = pareto_frontier(points, axis)
    if front:
        traces.append(go.Scatter(
            x=[p.tokens(axis) for p in front], y=[p.accuracy for p in front], name="Pareto frontier",
            legendgroup="frontier", showlegend=first, mode="lines+markers",
            line={"color": FRONTIER_COLOR, "width": 3, "dash": "dash"},
            marker={"size": 13, "color": "rgba(0,0,0,0)", "line": {"color": FRONTIER_COLOR, "width": 2}},
            customdata=[hover_data(p) for p in front],
            hovertemplate="frontier: <b>%{customdata[0]}</b> %{customdata[1]}<br>%{y:.2f}% at %{x:,.0f} tokens"
                          "<extra></extra>",
        ))
    return traces


def band_traces(pts: Sequence[Point], axis: str, color: str, name: str) -> list[go.Scatter]:
    """The 95% CI of a sweep as a filled band (upper edge, then lower edge filled up to it)."""
    x = [p.tokens(axis) for p in pts]
    common = {"legendgroup": name, "showlegend": False, "hoverinfo": "skip", "mode": "lines",
              "line": {"width": 0, "color": color}}
    return [
        go.Scatter(x=x, y=[p.ci_high for p in pts], name=f"{name} CI", **common),
        go.Scatter(x=x, y=[p.ci_low for p in pts], name=f"{name} CI", fill="tonexty",
                   fillcolor=_translucent(color), **common),
    ]


def extra_trace(series: Series, color: str) -> go.Scatter:
    """An extra named point series (no band, no line): drawn exactly where its numbers say."""
    return go.Scatter(x=list(series.tokens), y=list(series.accuracy), name=series.name, mode="markers",
                      marker={"symbol": "star", "size": 12, "color": color},
                      hovertemplate=f"<b>{series.name}</b><br>%{{y:.2f}}% at %{{x:,.0f}} tokens<extra></extra>")


def hover_data(p: Point) -> list[Any]:
    return [p.controller, p.label, p.ci_low, p.ci_high, p.total_tokens, p.sequential_tokens, p.dataset]


def _translucent(color: str, alpha: float = 0.08) -> str:
    """``#rrggbb`` -> ``rgba(r,g,b,alpha)``."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def knobs_parallel(rows: Sequence[Mapping[str, float]], dimensions: Sequence[str], title: str = "") -> go.Figure:
    """Parallel coordinates: one line per run through its knobs, accuracy and tokens, coloured by accuracy."""
    dims = [{"label": d, "values": [row[d] for row in rows]} for d in dimensions]
    color = [row["accuracy"] for row in rows] if rows and "accuracy" in rows[0] else None
    line = {"color": color, "colorscale": "Viridis", "showscale": True, "colorbar": {"title": {"text": "acc %"}}}
    fig = go.Figure(go.Parcoords(dimensions=dims, line=line if color is not None else {}))
    fig.update_layout(title=title or None, height=420, margin={"l": 70, "r": 70})
    return fig
