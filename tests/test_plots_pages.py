"""Figures of /frontier, /explorer and /episode carry exactly the data they are given."""

import pytest

from engine import explore
from engine.dataset import Branch, Dataset, Question
from engine.evaluate import ControllerSpec
from engine.pareto import Point
from engine.plots import episode, explorer, export
from engine.plots.frontier import Series, frontier_figure, knobs_parallel
from engine.timeline import run_episode


def pt(controller, tokens, accuracy, dataset="d", **config):
    return Point(controller, dataset, config, accuracy, accuracy - 5, accuracy + 5, float(tokens), tokens / 2.0)


PANELS = {
    "d (search)": [pt("sc", 100, 40, k=1), pt("sc", 1000, 60, k=8), pt("cmc", 300, 60, beta=0.5)],
    "e (held-out)": [pt("sc", 200, 30, "e", k=1), pt("cmc", 250, 50, "e", beta=0.5)],
}


def by_name(fig, name, panel_axis="x"):
    return [t for t in fig.data if t.name == name and (t.xaxis or "x") == panel_axis]


def test_frontier_figure_has_a_log_panel_per_title_with_lines_bands_and_frontier():
    """Each panel: a line per controller (sorted by tokens), a CI band, the frontier; x axes are log."""
    fig = frontier_figure(PANELS, "total", title="t")
    assert [a.text for a in fig.layout.annotations] == list(PANELS)
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "log"
    (sc,) = by_name(fig, "sc")
    assert list(sc.x) == [100, 1000] and list(sc.y) == [40, 60]
    assert list(sc.customdata[1][:2]) == ["sc", "k=8"]
    (front,) = by_name(fig, "Pareto frontier")
    assert list(front.x) == [100, 300] and list(front.y) == [40, 60]
    (front_e,) = by_name(fig, "Pareto frontier", "x2")
    assert list(front_e.x) == [200, 250]
    bands = [t for t in fig.data if t.name == "cmc CI" and (t.xaxis or "x") == "x"]
    assert [list(b.y) for b in bands] == [[65], [55]] and bands[1].fill == "tonexty"


def test_frontier_figure_sequential_axis_and_extra_series():
    """The axis switch plots sequential tokens; extra series land on their panel as given."""
    fig = frontier_figure(PANELS, "sequential", extra={"e (held-out)": [Series("live", [210.0], [45.0])]})
    (sc,) = by_name(fig, "sc")
    assert list(sc.x) == [50, 500]
    (live,) = [t for t in fig.data if t.name == "live"]
    assert (live.xaxis, list(live.x), list(live.y)) == ("x2", [210.0], [45.0])
    assert "sequential" in fig.layout.xaxis.title.text
    assert not [t for t in frontier_figure(PANELS, bands=False).data if t.name.endswith(" CI")]


def test_parallel_coordinates_dimensions_are_the_given_columns():
    """One dimension per column, values in row order, lines coloured by accuracy."""
    rows = [{"beta": 0.0, "n_init": 2, "accuracy": 40.0}, {"beta": 1.0, "n_init": 8, "accuracy": 60.0}]
    fig = knobs_parallel(rows, ["beta", "n_init", "accuracy"])
    (pc,) = fig.data
    assert [d.label for d in pc.dimensions] == ["beta", "n_init", "accuracy"]
    assert list(pc.dimensions[1].values) == [2, 8] and list(pc.line.color) == [40.0, 60.0]


Q = Question("q", "7", 500, (Branch(("No", "7"), 1200, "7"), Branch(("8", "8", "8"), 1600, "8"),
                             Branch((), 300, "7")))


def test_probe_heatmap_cells_are_cluster_codes_with_answers_and_tokens():
    """z holds cluster codes (None after a branch ends), text the answers, hover the token counts."""
    grid = explore.probe_grid(Q, "file order")
    fig = explorer.probe_heatmap(grid)
    heat = fig.data[0]
    assert [list(r) for r in heat.z] == [[3, 0, None], [1, 1, 1], [None, None, None]]
    assert list(heat.text[0]) == ["No", "7", ""]
    assert list(heat.customdata[1][2]) == [1500, 1600, 1]  # tokens so far, branch length, branch index
    assert list(fig.layout.yaxis.ticktext) == ["#0", "#1", "#2"]
    legend = [t.name for t in fig.data[1:]]
    assert legend[0] == "7 (correct)" and legend[-1] == explore.PLACEHOLDER
    assert fig.data[1].marker.color == explorer.GOLD_COLOR


def test_explorer_side_figures():
    """Lengths split by correctness; finals with gold green; the settle line where the vote settles."""
    lengths = explorer.branch_lengths([1200, 1600, 300], [True, False, True])
    assert [list(t.x) for t in lengths.data] == [[1200, 300], [1600]]
    finals = explorer.final_answers(explore.final_distribution(Q))
    assert list(finals.data[0].x) == ["7", "8"] and finals.data[0].marker.color[0] == explorer.GOLD_COLOR
    conv = explorer.convergence_curve(explore.convergence(Q))
    assert list(conv.data[1].y) == pytest.approx([100 / 3, 200 / 3, 200 / 3])
    assert conv.layout.shapes[0].x0 == explore.convergence(Q).settled_at


def test_timeline_shows_actions_up_to_the_chosen_step():
    """Cells and marks appear only for actions up to ``upto``; the stop mark only at the end."""
    run = run_episode(Dataset("toy/b", (Q,)), ControllerSpec.builtin("cmc", {"beta": 0.0}), 0, 0)
    clusters = explore.clusters_of(Q)
    full, first = episode.timeline(run, clusters), episode.timeline(run, clusters, 0)
    filled = sum(v is not None for row in first.data[0].z for v in row)
    assert filled == 1
    assert sum(v is not None for row in full.data[0].z for v in row) >= len({(s.position, s.interval)
                                                                               for s in run.steps})
    assert any(t.name == "stop" for t in full.data) and not any(t.name == "stop" for t in first.data)
    opens = next(t for t in first.data if t.name == "open")
    assert len(opens.x) == 1
    cost = episode.vote_and_cost(run, run.gold, 1)
    assert list(cost.data[0].y) == [s.total_tokens for s in run.steps[:2]]


def test_html_export_is_standalone():
    """The HTML export inlines plotly.js, so it opens without a network."""
    html = export.figure_html(frontier_figure(PANELS))
    assert "<html>" in html and "<script src=" not in html and len(html) > 1_000_000


def test_png_export_renders_offline():
    """kaleido renders the frontier figure to PNG through the installed Chromium, at the figure's height."""
    png = export.figure_png(frontier_figure(PANELS), width=700)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (700 * export.PNG_SCALE, frontier_figure(PANELS).layout.height * export.PNG_SCALE)
