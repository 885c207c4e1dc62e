"""Figures as pure functions of data: results in, ``plotly.graph_objects.Figure`` out.

No Streamlit here, so the same figure is unit-tested, shown in the app and exported to HTML.
This package's root holds the general figures; each page's own figures live in a submodule
(``engine.plots.lab``, ``engine.plots.frontier``, …) that computes nothing itself: it draws data
that an engine module (``engine.pareto``, …) computed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Real
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

# The three facts of a dataset, in the order they are drawn: (attribute, legend label, colour).
FACTS = (
    ("pass_at_1", "pass@1", "#4C78A8"),
    ("majority_all", "majority of all", "#F58518"),
    ("any_correct", "any correct", "#54A24B"),
)
ACCURACY_SCALE = "RdYlGn"
SCHEDULE_COLUMNS = 4


def per_question_accuracy(result: Any) -> go.Figure:
    """Bar per question, coloured by accuracy, hover with its mean tokens: where a controller fails."""
    acc = list(result.per_question_accuracy)
    labels = [f"Q{i + 1}" for i in range(len(acc))]
    bars = go.Bar(
        x=labels, y=acc, name="accuracy",
        customdata=[round(t) for t in result.per_question_tokens],
        marker={"color": acc, "colorscale": ACCURACY_SCALE, "cmin": 0, "cmax": 100},
        hovertemplate="%{x}: %{y:.1f}% correct<br>%{customdata:,} tokens on average<extra></extra>",
    )
    fig = go.Figure(bars)
    fig.add_hline(y=result.accuracy, line_dash="dash", annotation_text=f"mean {result.accuracy:.2f}%",
                  annotation_position="bottom right")
    fig.update_layout(
        title=f"{result.controller} on {result.dataset}: accuracy per question ({result.shuffles} shuffles)",
        xaxis_title="question", yaxis_title="accuracy (%)", yaxis_range=[0, 100], showlegend=False,
    )
    return fig


def schedule_curve(controller_cls: type, betas: Sequence[float], current: float | None = None) -> go.Figure:
    """One small panel per numeric knob against beta: what the single slider actually turns."""
    table = [controller_cls.schedule(b) for b in betas]
    knobs = [k for k, v in table[0].items() if isinstance(v, Real)] if table else []
    cols = max(1, min(SCHEDULE_COLUMNS, len(knobs)))
    rows = max(1, math.ceil(len(knobs) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=knobs or None)
    for i, knob in enumerate(knobs):
        fig.add_trace(
            go.Scatter(x=list(betas), y=[row[knob] for row in table], name=knob, mode="lines+markers"),
            row=i // cols + 1, col=i % cols + 1,
        )
    if current is not None and knobs:
        fig.add_vline(x=current, line_dash="dot", line_color="grey", row="all", col="all")
    fig.update_layout(
        title=f"{getattr(controller_cls, 'NAME', controller_cls.__name__)}: knobs as a function of beta",
        showlegend=False, height=160 + 220 * rows,
    )
    return fig


def datasets_overview(infos: Iterable[Any]) -> go.Figure:
    """Grouped bars of pass@1, majority and any-correct per dataset: how hard each one is."""
    infos = list(infos)
    names = [info.name for info in infos]
    fig = go.Figure([
        go.Bar(x=names, y=[getattr(info, attr) for info in infos], name=label, marker_color=color,
               hovertemplate="%{x}<br>" + label + ": %{y:.1f}%<extra></extra>")
        for attr, label, color in FACTS
    ])
    fig.update_layout(
        title="Stored datasets: pass@1, majority of all branches, any branch correct",
        barmode="group", yaxis_title="%", yaxis_range=[0, 100], legend_title_text="",
    )
    return fig
