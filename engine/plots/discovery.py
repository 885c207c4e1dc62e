"""Figures of the /discovery page: candidates' scaling curves against the baseline, held-out apart,
progress per round and sessions side by side. They draw what ``engine.discovery.lineage`` computed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

COLUMNS = 4
BASELINE_STYLE = {"color": "#444", "dash": "dash", "width": 2}
SCORE_LABELS = {"curve": "curve score (mean attainable accuracy %)", "accuracy": "accuracy (%)",
                "penalised": "accuracy - gamma x ktokens"}
HELDOUT_BANNER = "HELD-OUT: display only (never shown to the proposer, never used to select)"


def scaling_curves(points: Sequence[Any], baselines: Sequence[Any] = (), *, heldout: bool = False,
                   title: str = "") -> go.Figure:
    """Accuracy against tokens per dataset (one panel each); a line per candidate, the baseline dashed.

    ``points`` have ``label, dataset, beta, accuracy, tokens``; each line runs in beta order.
    """
    datasets = sorted({p.dataset for p in [*points, *baselines]})
    cols = min(COLUMNS, max(1, len(datasets)))
    rows = max(1, -(-len(datasets) // cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=datasets or [""], horizontal_spacing=0.06)
    shown: set[str] = set()
    for series, style in ((baselines, BASELINE_STYLE), (points, None)):
        for (label, dataset), pts in _series(series).items():
            i = datasets.index(dataset)
            fig.add_trace(go.Scatter(
                x=[p.tokens / 1000 for p in pts], y=[p.accuracy for p in pts], mode="lines+markers", name=label,
                legendgroup=label, showlegend=label not in shown, line=style,
                customdata=[p.beta for p in pts],
                hovertemplate=f"{label}<br>beta %{{customdata}}<br>%{{x:.1f}}k tokens, %{{y:.2f}}%<extra></extra>"),
                row=i // cols + 1, col=i % cols + 1)
            shown.add(label)
    banner = f"{HELDOUT_BANNER}<br>" if heldout else ""
    fig.update_layout(title=f"{banner}{title}", height=320 * rows + 80, legend_title_text="candidate")
    fig.update_xaxes(title_text="thousand tokens per question")
    fig.update_yaxes(title_text="accuracy (%)")
    if heldout:
        fig.update_layout(plot_bgcolor="#FFF4E5")
    return fig


def _series(points: Sequence[Any]) -> dict[tuple[str, str], list[Any]]:
    grouped: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for p in points:
        grouped[(p.label, p.dataset)].append(p)
    return {k: sorted(v, key=lambda p: p.beta) for k, v in grouped.items()}


def progress(rounds: Sequence[Any], objective: str) -> go.Figure:
    """Each round's search score (invalid and screened-out rounds as markers at the axis: they have no score
    at the full shuffle count), the best so far, and cumulative spend (its axis only when something was spent).

    A round is screened out when it has a candidate (``attempt`` >= 0) but no score; its summary says why.
    """
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    valid = [r for r in rounds if r.score is not None]
    fig.add_trace(go.Scatter(x=[r.round for r in valid], y=[r.score for r in valid], mode="markers",
                             name="candidate score", customdata=[r.summary for r in valid],
                             hovertemplate="round %{x}: %{y:.2f}<br>%{customdata}<extra></extra>"))
    best, running = [], None
    for r in sorted(valid, key=lambda r: r.round):
        running = r.score if running is None else max(running, r.score)
        best.append((r.round, running))
    fig.add_trace(go.Scatter(x=[b[0] for b in best], y=[b[1] for b in best], mode="lines", name="best so far",
                             line={"shape": "hv"}))
    floor = min((r.score for r in valid), default=0.0)
    for name, marker, members in (
            ("no valid candidate", {"symbol": "x", "color": "#D62728"},
             [r for r in rounds if r.score is None and r.attempt < 0]),
            ("screened out (not evaluated in full)", {"symbol": "triangle-down-open", "color": "#7F7F7F", "size": 9},
             [r for r in rounds if r.score is None and r.attempt >= 0])):
        if members:
            fig.add_trace(go.Scatter(x=[r.round for r in members], y=[floor] * len(members), mode="markers",
                                     marker=marker, name=name, customdata=[r.summary for r in members],
                                     hovertemplate="round %{x}<br>%{customdata}<extra></extra>"))
    spend, total = [], 0.0
    for r in sorted(rounds, key=lambda r: (r.round, r.attempt)):
        total += r.usd
        spend.append((r.round, total))
    label = SCORE_LABELS.get(objective, "score")
    fig.update_layout(title="Search score per round", xaxis_title="round", height=360)
    fig.update_yaxes(title_text=label, secondary_y=False)
    if total > 0:
        fig.add_trace(go.Scatter(x=[s[0] for s in spend], y=[s[1] for s in spend], mode="lines", name="spend ($)",
                                 line={"dash": "dot", "color": "#888"}), secondary_y=True)
        fig.update_yaxes(title_text="spend ($)", secondary_y=True, rangemode="tozero")
    else:  # a local model or the offline proposer: no spend axis with meaningless ticks
        fig.update_yaxes(visible=False, secondary_y=True)
        fig.update_layout(title="Search score per round (no LLM spend)")
    return fig


def compare_sessions(curves: dict[str, Sequence[Any]]) -> go.Figure:
    """Each session's best candidate, mean over its search datasets per beta, on shared axes."""
    fig = go.Figure()
    for session, points in curves.items():
        by_beta: dict[float, list[Any]] = defaultdict(list)
        for p in points:
            by_beta[p.beta].append(p)
        betas = sorted(by_beta)
        fig.add_trace(go.Scatter(
            x=[sum(p.tokens for p in by_beta[b]) / len(by_beta[b]) / 1000 for b in betas],
            y=[sum(p.accuracy for p in by_beta[b]) / len(by_beta[b]) for b in betas],
            mode="lines+markers", name=session, customdata=betas,
            hovertemplate=f"{session}<br>beta %{{customdata}}<br>%{{x:.1f}}k tokens, %{{y:.2f}}%<extra></extra>"))
    fig.update_layout(title="Best candidate of each session (mean over its search datasets)",
                      xaxis_title="thousand tokens per question", yaxis_title="accuracy (%)", height=420)
    return fig
