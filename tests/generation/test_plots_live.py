"""The live figures are pure functions of plain data (no browser, no model)."""

from __future__ import annotations

import plotly.graph_objects as go

from engine.generation.live import Gap
from engine.plots.live import gap_figure, live_series, overlay_traces, throughput_figure

RUNS = [
    {"id": "aaaaaaaa11", "controller": "cmc", "config": {"beta": 0.5}, "questions": [0, 1], "accuracy": 50.0,
     "avg_tokens": 900.0},
    {"id": "bbbbbbbb22", "controller": "sc", "config": {"k": 4}, "questions": [0], "accuracy": 100.0,
     "avg_tokens": 1200.0},
    {"id": "cccccccc33", "controller": "cmc", "config": {"beta": 1.0}, "questions": [0, 1], "accuracy": 100.0,
     "avg_tokens": 600.0},
]


def test_live_series_group_by_controller_sorted_by_tokens() -> None:
    """One named series per controller, its points sorted by tokens, labels naming config and run."""
    series = live_series(RUNS)
    assert [s.name for s in series] == ["cmc (live)", "sc (live)"]
    cmc = series[0]
    assert (cmc.tokens, cmc.accuracy) == ([600.0, 900.0], [100.0, 50.0])
    assert cmc.labels[0].startswith("cmc beta=1.0 · 2 questions · cccccccc")


def test_overlay_traces_are_markers_on_a_frontier_figure() -> None:
    """The overlay adds marker-only traces with the series' points, usable on any tokens-vs-accuracy figure."""
    fig = go.Figure(go.Scatter(x=[100, 1000], y=[40, 80], mode="lines", name="cmc (replay)"))
    fig.add_traces(overlay_traces(live_series(RUNS)))
    live = [t for t in fig.data if t.name.endswith("(live)")]
    assert [t.mode for t in live] == ["markers", "markers"]
    assert list(live[1].x) == [1200.0] and list(live[1].y) == [100.0]


def test_gap_figure_draws_both_sides() -> None:
    """Replay and live bars per question, for accuracy and tokens, with the totals in the titles."""
    gap = Gap([0, 2], 75.0, 50.0, 1000.0, 1100.0, [
        {"q_idx": 0, "replay_accuracy": 100.0, "live_correct": True, "replay_tokens": 900.0, "live_tokens": 1000},
        {"q_idx": 2, "replay_accuracy": 50.0, "live_correct": False, "replay_tokens": 1100.0, "live_tokens": 1200},
    ])
    fig = gap_figure(gap)
    bars = {(t.name, t.xaxis): list(t.y) for t in fig.data}
    assert bars[("live", "x")] == [100.0, 0.0] and bars[("replay", "x2")] == [900.0, 1100.0]
    assert list(fig.data[0].x) == ["Q1", "Q3"]
    assert "+10.0%" in fig.layout.annotations[1].text


def test_throughput_figure() -> None:
    """Tokens/s as bars and the probe share (%) on the right axis."""
    fig = throughput_figure([{"label": "Δ=16", "tokens_per_second": 20.0, "probe_share": 0.5},
                             {"label": "Δ=64", "tokens_per_second": 30.0, "probe_share": 0.2}])
    assert list(fig.data[0].y) == [20.0, 30.0] and list(fig.data[1].y) == [50.0, 20.0]
    assert fig.data[1].yaxis == "y2"
