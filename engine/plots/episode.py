"""Figures of /episode: one episode's timeline (branches x intervals) and its running vote and cost.

They draw ``engine.timeline`` data up to a chosen step, so a slider replays the episode action by action.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from engine.explore import cluster_code
from engine.plots.explorer import GOLD_COLOR, WRONG_COLORS, cluster_colors
from engine.timeline import EpisodeRun, Step

MARKS = {"open": "triangle-right", "advance": "circle", "read": "square"}
STOP_COLOR = "#000000"


def timeline(run: EpisodeRun, clusters: Sequence[str], upto: int | None = None) -> go.Figure:
    """Rows = branches in opening order, cells = intervals revealed (coloured by answer cluster, gold
    green), a mark per action (open / advance / read; a star where a branch ends; X where the
    controller stopped), up to action ``upto`` (0-based, inclusive; all by default)."""
    shown = run.steps if upto is None else run.steps[: upto + 1]
    clusters = tuple(clusters)
    k = len(clusters)
    rows = max((s.position for s in run.steps), default=-1) + 1
    width = max((s.interval for s in run.steps), default=0) + 1
    z: list[list[float | None]] = [[None] * width for _ in range(rows)]
    text = [[""] * width for _ in range(rows)]
    for s in shown:
        first = 0 if s.kind == "read" else s.interval
        for col in range(first, s.interval + 1):
            z[s.position][col] = cluster_code(s.answer, clusters)
            text[s.position][col] = f"action {s.index + 1}: {s.kind}<br>answer {s.answer}<br>{s.tokens:,} tokens"
    colors = cluster_colors(k)
    scale = [v for i, c in enumerate(colors) for v in ((i / k, c), ((i + 1) / k, c))]
    labels = [_row_label(run, r) for r in range(rows)]
    x = list(range(1, width + 1))
    fig = go.Figure(go.Heatmap(z=z, x=x, y=labels, text=text, zmin=-0.5, zmax=k - 0.5, colorscale=scale,
                               showscale=False, xgap=1, ygap=1, hovertemplate="%{y}<br>%{text}<extra></extra>"))
    for kind, symbol in MARKS.items():
        sel = [s for s in shown if s.kind == kind]
        fig.add_trace(go.Scatter(x=[s.interval + 1 for s in sel], y=[labels[s.position] for s in sel],
                                 mode="markers", name=kind, hoverinfo="skip",
                                 marker={"symbol": symbol, "size": 7, "color": "white",
                                         "line": {"color": "#333", "width": 1}}))
    ends = [s for s in shown if s.finished]
    fig.add_trace(go.Scatter(x=[s.interval + 1 for s in ends], y=[labels[s.position] for s in ends],
                             mode="markers", name="branch ends", hoverinfo="skip",
                             marker={"symbol": "star", "size": 11, "color": "gold", "line": {"color": "#333",
                                                                                             "width": 1}}))
    if shown and len(shown) == len(run.steps):
        last = shown[-1]
        verdict = "correct" if run.correct else "wrong"
        fig.add_trace(go.Scatter(x=[last.interval + 1], y=[labels[last.position]], mode="markers+text",
                                 name="stop", text=[f"stop: {run.answer} ({verdict})"], textposition="middle right",
                                 marker={"symbol": "x", "size": 14, "color": STOP_COLOR}, hoverinfo="skip"))
    fig.update_yaxes(autorange="reversed", title_text="branch (opening order, file index)", type="category")
    fig.update_xaxes(title_text="interval", range=[0.5, width + 2.5])
    step_text = f"action {len(shown)} of {len(run.steps)}"
    fig.update_layout(title=f"{run.controller} on {run.dataset}, Q{run.question}, shuffle {run.seed}: {step_text}",
                      height=max(320, 140 + 22 * rows), plot_bgcolor="white", legend={"orientation": "h", "y": -0.15})
    return fig


def _row_label(run: EpisodeRun, position: int) -> str:
    branch = next(s.branch for s in run.steps if s.position == position)
    return f"#{position} (b{branch})"


def vote_and_cost(run: EpisodeRun, gold: str, upto: int | None = None) -> go.Figure:
    """Tokens spent after each action; markers green while the running vote is the gold answer."""
    shown: Sequence[Step] = run.steps if upto is None else run.steps[: upto + 1]
    fig = go.Figure(go.Scatter(
        x=[s.index + 1 for s in shown], y=[s.total_tokens for s in shown], mode="lines+markers",
        name="tokens spent", line={"color": "#888"},
        marker={"size": 8, "color": [GOLD_COLOR if s.vote == gold else WRONG_COLORS[0] for s in shown]},
        customdata=[[s.kind, s.answer, s.vote, s.finished_vote] for s in shown],
        hovertemplate="action %{x}: %{customdata[0]} -> %{customdata[1]}<br>%{y:,} tokens<br>"
                      "vote of latest answers: %{customdata[2]}<br>vote of ended branches: %{customdata[3]}"
                      "<extra></extra>",
    ))
    fig.update_layout(title=f"Tokens spent and the running vote (green: the vote is the gold answer {gold})",
                      xaxis_title="action", yaxis_title="total tokens", height=320,
                      xaxis_range=[0.5, max(len(run.steps), 1) + 0.5])
    return fig
