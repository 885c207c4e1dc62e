"""Frontier arithmetic, number by number: dominance, frontier, staircase score, matched tokens, averages."""

import math

import numpy as np
import pytest

from engine import pareto
from engine.evaluate import bootstrap_ci
from engine.pareto import Point


def pt(controller, tokens, accuracy, dataset="d", seq=None, per_question=(), **config):
    return Point(controller, dataset, config, accuracy, accuracy - 5, accuracy + 5, float(tokens),
                 float(seq if seq is not None else tokens / 2), tuple(per_question))


A = pt("sc", 100, 40, k=1)
B = pt("sc", 1000, 60, k=8)
C = pt("cmc", 300, 60, beta=0.5)
D = pt("cmc", 2000, 55, beta=1.0)


def test_dominance_needs_no_worse_on_both_and_better_on_one():
    """C (fewer tokens, same accuracy) dominates B; equal points do not dominate each other."""
    assert pareto.dominates(C, B)
    assert not pareto.dominates(B, C)
    assert not pareto.dominates(A, C) and not pareto.dominates(C, A)
    assert not pareto.dominates(B, B)
    assert pareto.dominates(B, D)


def test_frontier_is_the_non_dominated_points_cheapest_first():
    """Of A, B, C, D only A and C are undominated; order follows tokens."""
    assert pareto.pareto_frontier([B, D, C, A]) == [A, C]


def test_frontier_on_the_sequential_axis_uses_sequential_tokens():
    """A point cheap in sequential tokens only joins the frontier on that axis."""
    wide = pt("pp", 5000, 70, seq=50)
    assert pareto.pareto_frontier([A, C, wide], "sequential") == [wide]
    assert pareto.pareto_frontier([A, C, wide], "total") == [A, C, wide]


def test_attainable_accuracy_is_a_staircase():
    """The best accuracy within a budget; 0 below the cheapest point."""
    assert pareto.attainable([A, B], 99) == 0.0
    assert pareto.attainable([A, B], 100) == 40
    assert pareto.attainable([A, B], 999) == 40
    assert pareto.attainable([A, B], 5000) == 60


def test_frontier_score_integrates_the_staircase_over_log_tokens():
    """Over [100, 10000] SC sits at 40% for one decade and 60% for the next: mean 50%."""
    assert pareto.frontier_score([A, B], 100, 10_000) == pytest.approx(50.0)
    # Over [100, 1000] the step is at the very end: 40% throughout.
    assert pareto.frontier_score([A, B], 100, 1000) == pytest.approx(40.0)
    # [300, 3000]: 40% from 300 to 1000 (log10(10/3) decades), 60% from 1000 to 3000 (log10 3).
    expected = (40 * math.log10(1000 / 300) + 60 * math.log10(3)) / 1
    assert pareto.frontier_score([A, B], 300, 3000) == pytest.approx(expected)
    assert pareto.frontier_score([A, B], 500, 500) == 40


def test_common_range_is_the_overlap_else_the_union():
    """Overlapping ranges give [max of mins, min of maxes]; disjoint ones the union."""
    assert pareto.common_range([[A, B], [C, D]]) == (300, 1000)
    assert pareto.common_range([[A], [D]]) == (100, 2000)
    with pytest.raises(ValueError):
        pareto.common_range([])


def test_matched_tokens_is_the_cheapest_point_reaching_the_baseline():
    """CMC reaches SC k=8's 60% at 300 tokens: 30% of the baseline's 1000."""
    m = pareto.matched_tokens([C, D], B)
    assert m.point is C and m.ratio == pytest.approx(0.3)
    assert pareto.matched_tokens([A], B) is None


def test_average_over_datasets_keeps_configs_present_everywhere():
    """Means of accuracy and tokens per config on all datasets; configs missing somewhere are dropped."""
    pts = [pt("sc", 100, 40, "x", per_question=(100, 0), k=1), pt("sc", 300, 60, "y", per_question=(100, 50), k=1),
           pt("sc", 900, 70, "x", per_question=(100, 50), k=8)]
    (avg,) = pareto.average_over_datasets(pts)
    assert (avg.dataset, avg.config, avg.accuracy, avg.total_tokens, avg.sequential_tokens) == (
        pareto.AVERAGE, {"k": 1}, 50.0, 200.0, 100.0)
    assert avg.ci_low <= 50 <= avg.ci_high


def test_stratified_ci_of_one_dataset_is_the_plain_bootstrap():
    """With one dataset the stratified interval equals evaluate.bootstrap_ci (same seed, same draws)."""
    per_q = np.array([1.0, 0.0, 0.5, 1.0, 0.25])
    assert pareto.stratified_ci([per_q]) == bootstrap_ci(per_q)


def test_summary_per_controller():
    """Best point, score on the common range, matched tokens against the baseline and frontier share."""
    rows = {s.controller: s for s in pareto.summarize_panel([A, B, C, D], baseline=B)}
    assert rows["sc"].best is B and rows["cmc"].best is C
    assert rows["cmc"].matched.ratio == pytest.approx(0.3)
    assert rows["sc"].matched.point is B and rows["sc"].matched.ratio == 1
    assert (rows["sc"].on_frontier, rows["cmc"].on_frontier) == (1, 1)
    # Common range [300, 1000]: SC 40% then 60% only at 1000; CMC 60% throughout.
    assert rows["sc"].score == pytest.approx(40.0)
    assert rows["cmc"].score == pytest.approx(60.0)


def test_find_point_and_labels():
    """A baseline is found by controller and config subset; labels read as knob=value."""
    assert pareto.find_point([A, B, C], "sc", {"k": 8}) is B
    assert pareto.find_point([A, B], "sc", {"k": 64}) is None
    assert B.label == "k=8" and pareto.config_label({}) == "default"
    with pytest.raises(ValueError):
        A.tokens("wall")
