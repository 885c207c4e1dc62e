"""Figures of the /live page and the live overlay of the frontier figure (pure: data in, figures out).

``live_series`` groups stored live runs (``engine.generation.records.list_live_runs`` rows) into one named
point series per controller; ``overlay_traces`` draws them as scatter traces to add to any
accuracy-vs-tokens figure (``fig.add_traces(overlay_traces(live_series(runs)))``), so replay curves and
live points share axes. ``gap_figure`` shows the replay-vs-live gap of one run, question by question.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import plotly.graph_objects as go
from plotly.subplots import make_subplots

LIVE_COLOUR = "#E45756"
REPLAY_COLOUR = "#4C78A8"


class LiveSeries(NamedTuple):
    """Live points of one controller: x = average tokens per question, y = accuracy (%)."""

    name: str
    tokens: list[float]
    accuracy: list[float]
    labels: list[str]


def live_series(runs: Iterable[Mapping[str, Any]]) -> list[LiveSeries]:
    """One series per controller (in first-seen order), a point per live run, sorted by tokens."""
    grouped: dict[str, list[tuple[float, float, str]]] = {}
    for r in runs:
        config = ", ".join(f"{k}={v}" for k, v in sorted(dict(r["config"]).items()))
        label = f"{r['controller']} {config} · {len(r['questions'])} questions · {r['id'][:8]}"
        grouped.setdefault(f"{r['controller']} (live)", []).append(
            (float(r["avg_tokens"]), float(r["accuracy"]), label))
    out = []
    for name, points in grouped.items():
        points.sort()
        out.append(LiveSeries(name, [p[0] for p in points], [p[1] for p in points], [p[2] for p in points]))
    return out


def overlay_traces(series: Iterable[LiveSeries]) -> list[go.Scatter]:
    """Scatter traces (diamonds, no lines) of live points, for a frontier figure with tokens on x."""
    return [go.Scatter(x=s.tokens, y=s.accuracy, mode="markers", name=s.name, text=s.labels,
                       marker={"symbol": "diamond", "size": 11, "line": {"width": 1, "color": "black"}},
                       hovertemplate="%{text}<br>%{y:.1f}% at %{x:,.0f} tokens<extra>live</extra>")
            for s in series]


def gap_figure(gap: Any) -> go.Figure:
    """Per question: replay's accuracy (mean over shuffles) against the live answer's correctness, and
    replay's mean tokens against the live tokens. ``gap`` is an ``engine.generation.live.Gap``."""
    labels = [f"Q{r['q_idx'] + 1}" for r in gap.per_question]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        f"accuracy: replay {gap.replay_accuracy:.1f}% vs live {gap.live_accuracy:.1f}%",
        f"tokens: replay {gap.replay_tokens:,.0f} vs live {gap.live_tokens:,.0f} ({100 * gap.token_gap:+.1f}%)"))
    rows = gap.per_question
    fig.add_bar(x=labels, y=[r["replay_accuracy"] for r in rows], name="replay", marker_color=REPLAY_COLOUR,
                legendgroup="replay", row=1, col=1)
    fig.add_bar(x=labels, y=[100.0 * r["live_correct"] for r in rows], name="live", marker_color=LIVE_COLOUR,
                legendgroup="live", row=1, col=1)
    fig.add_bar(x=labels, y=[r["replay_tokens"] for r in rows], name="replay", marker_color=REPLAY_COLOUR,
                legendgroup="replay", showlegend=False, row=1, col=2)
    fig.add_bar(x=labels, y=[r["live_tokens"] for r in rows], name="live", marker_color=LIVE_COLOUR,
                legendgroup="live", showlegend=False, row=1, col=2)
    fig.update_yaxes(title_text="accuracy %", range=[0, 100], row=1, col=1)
    fig.update_yaxes(title_text="tokens", row=1, col=2)
    fig.update_layout(barmode="group", height=380, margin={"t": 60, "b": 30})
    return fig


def throughput_figure(rows: Iterable[Mapping[str, Any]]) -> go.Figure:
    """Collection throughput per setting: tokens/s (bars) and probe time as a share of generation time
    (line, right axis). ``rows``: dicts with ``label``, ``tokens_per_second``, ``probe_share``."""
    rows = list(rows)
    labels = [r["label"] for r in rows]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=labels, y=[r["tokens_per_second"] for r in rows], name="tokens/s", marker_color=REPLAY_COLOUR)
    fig.add_scatter(x=labels, y=[100 * r["probe_share"] for r in rows], name="probe time / generation time (%)",
                    mode="lines+markers", marker_color=LIVE_COLOUR, secondary_y=True)
    fig.update_yaxes(title_text="generated tokens per second", secondary_y=False)
    fig.update_yaxes(title_text="probe share %", secondary_y=True, rangemode="tozero")
    fig.update_layout(height=360, margin={"t": 30, "b": 30})
    return fig
