"""engine.plots.lab: the lab's scaling-curve figure, checked on real evaluation results (no browser)."""

from __future__ import annotations

import pytest

from engine import lab
from engine.evaluate import ControllerSpec, evaluate
from engine.formats.autotts import load_autotts_file
from engine.paths import data_dir
from engine.plots.lab import BASELINE_STYLE, scaling_curves

DATASET = "Qwen3-8B/aime24"


@pytest.fixture(scope="module")
def results():
    """Baseline curves and one CMC result at 3 shuffles, computed by the engine."""
    ds = load_autotts_file(data_dir() / f"{DATASET}.json", DATASET)
    current = evaluate(ds, ControllerSpec.builtin("cmc", {"beta": 0.5}), shuffles=3)
    return lab.baseline_curves(None, ds, shuffles=3), current


def test_curves_over_baselines_with_the_current_point(results):
    """One trace per baseline (legend names), the current point as a star with its CI, log token axis."""
    baselines, current = results
    fig = scaling_curves(baselines, current, name="cmc")
    names = [t.name for t in fig.data]
    assert names == [BASELINE_STYLE[b][0] for b in lab.BASELINES] + ["cmc now"]
    sc = fig.data[0]
    assert list(sc.x) == [r.avg_total_tokens for r in baselines["sc"]]
    assert list(sc.y) == [r.accuracy for r in baselines["sc"]]
    star = fig.data[-1]
    assert star.marker.symbol == "star" and list(star.x) == [current.avg_total_tokens]
    lo, hi = current.ci95
    bars = (star.error_y.array[0], star.error_y.arrayminus[0])
    assert bars == pytest.approx((hi - current.accuracy, current.accuracy - lo))
    assert fig.layout.xaxis.type == "log" and "3 shuffles" in fig.layout.title.text


def test_sequential_axis_own_sweep_and_highlight(results):
    """axis='sequential' plots sequential tokens; an own sweep adds a thick curve; the highlighted baseline is solid."""
    baselines, current = results
    fig = scaling_curves(baselines, current, baselines["cmc"], name="mine", axis="sequential", highlight="cmc")
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["mine (sweep)"].x) == [r.avg_sequential_tokens for r in baselines["cmc"]]
    assert by_name["CMC"].line.width > by_name["SC"].line.width and by_name["SC"].line.dash == "dot"
    assert "sequential" in fig.layout.xaxis.title.text
    assert "k=64" in by_name["SC"].customdata[-1][0]
