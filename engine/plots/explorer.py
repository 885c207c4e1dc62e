"""Figures of /explorer: the branch x probe-step answer heatmap, branch lengths, final answers, convergence.

They draw ``engine.explore`` data and compute nothing themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from engine.explore import Convergence, ProbeGrid

GOLD_COLOR = "#1a9850"  # the correct answer, in every figure of the page
WRONG_COLORS = ("#d73027", "#4575b4", "#fdae61", "#984ea3", "#f781bf", "#a6761d", "#66c2a5", "#e6ab02")
OTHER_COLOR = "#bdbdbd"
PLACEHOLDER_COLOR = "#f0f0f0"


def cluster_colors(n_clusters: int) -> list[str]:
    """Gold green, distinct colours for the frequent wrong answers, grey for other, pale for No/ERR."""
    wrong = [WRONG_COLORS[i % len(WRONG_COLORS)] for i in range(n_clusters - 3)]
    return [GOLD_COLOR, *wrong, OTHER_COLOR, PLACEHOLDER_COLOR]


def probe_heatmap(grid: ProbeGrid, title: str = "") -> go.Figure:
    """Rows = branches, columns = probe steps, colour = answer cluster (gold green); hover: answer, tokens."""
    k = len(grid.clusters)
    colors = cluster_colors(k)
    z = [[None if c < 0 else c for c in row] for row in grid.codes]
    scale = [v for i, c in enumerate(colors) for v in ((i / k, c), ((i + 1) / k, c))]
    steps = list(range(1, len(grid.codes[0]) + 1)) if grid.codes else []
    rows = list(range(len(grid.branches)))  # numeric rows: the legend's empty traces keep the axes numeric
    hover = [[(s * grid.probe_freq, t, b) for s in steps] for t, b in zip(grid.tokens, grid.branches, strict=True)]
    fig = go.Figure(go.Heatmap(
        z=z, x=steps, y=rows, text=grid.answers, customdata=hover, zmin=-0.5, zmax=k - 0.5,
        colorscale=scale, xgap=0.5, ygap=0.5, showscale=False,
        hovertemplate="branch #%{customdata[2]}, step %{x}<br>answer <b>%{text}</b><br>after %{customdata[0]:,} "
                      "of %{customdata[1]:,} tokens<extra></extra>",
    ))
    for i, label in enumerate(grid.clusters):  # legend entries for the colours
        name = f"{label} (correct)" if i == 0 else label
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name,
                                 marker={"color": colors[i], "size": 12, "symbol": "square"}))
    fig.update_yaxes(autorange="reversed", title_text="branch (file index)", tickmode="array", tickvals=rows,
                     ticktext=[f"#{b}" for b in grid.branches], showticklabels=len(rows) <= 64, zeroline=False)
    fig.update_xaxes(title_text=f"probe step (x {grid.probe_freq} tokens)")
    fig.update_layout(title=title or "Probed answers, branch by branch", height=max(400, 160 + 7 * len(rows)),
                      legend={"title": {"text": "answer"}}, plot_bgcolor="white")
    return fig


def branch_lengths(tokens: Sequence[int], correct: Sequence[bool]) -> go.Figure:
    """Histogram of branch lengths, branches ending on the gold answer in green."""
    fig = go.Figure([
        go.Histogram(x=[t for t, c in zip(tokens, correct, strict=True) if c], name="ends correct",
                     marker_color=GOLD_COLOR, nbinsx=30),
        go.Histogram(x=[t for t, c in zip(tokens, correct, strict=True) if not c], name="ends wrong",
                     marker_color=WRONG_COLORS[0], nbinsx=30),
    ])
    fig.update_layout(title="Branch lengths", barmode="stack", xaxis_title="tokens", yaxis_title="branches",
                      height=340)
    return fig


def final_answers(distribution: Sequence[tuple[str, int, bool]], top: int = 15) -> go.Figure:
    """Bars of the most frequent final answers; the gold answer green."""
    shown = list(distribution[:top])
    fig = go.Figure(go.Bar(
        x=[a for a, _, _ in shown], y=[n for _, n, _ in shown],
        marker_color=[GOLD_COLOR if g else OTHER_COLOR for _, _, g in shown],
        hovertemplate="%{x}: %{y} branches<extra></extra>",
    ))
    fig.update_layout(title=f"Final answers (top {len(shown)} of {len(distribution)})", xaxis_title="answer",
                      yaxis_title="branches", xaxis_type="category", height=340)
    return fig


def convergence_curve(conv: Convergence) -> go.Figure:
    """Share of branches agreeing with the step's majority, and answering gold; where the vote settles."""
    hover = [f"majority {m}" for m in conv.majority]
    fig = go.Figure([
        go.Scatter(x=list(conv.steps), y=[100 * s for s in conv.majority_share], name="share with the majority",
                   text=hover, hovertemplate="step %{x}: %{y:.0f}% (%{text})<extra></extra>", line={"color": "#555"}),
        go.Scatter(x=list(conv.steps), y=[100 * s for s in conv.gold_share], name="share answering gold",
                   hovertemplate="step %{x}: %{y:.0f}% correct<extra></extra>", line={"color": GOLD_COLOR}),
    ])
    if conv.settled_at is not None:
        fig.add_vline(x=conv.settled_at, line_dash="dot",
                      annotation_text=f"majority settles at step {conv.settled_at}")
    fig.update_layout(title="How the vote of all branches converges (ended branches vote their final answer)",
                      xaxis_title=f"probe step (x {conv.probe_freq} tokens)", yaxis_title="% of branches",
                      yaxis_range=[0, 100], height=360)
    return fig
