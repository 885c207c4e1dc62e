"""Frontier arithmetic: points, dominance, Pareto frontiers, frontier scores, matched-accuracy savings.

Plain data in, plain data out (no evaluation, no figures), so every figure on /frontier is checked
number by number. The definitions (also in docs/frontier.md):

- A *point* is one evaluated config of one controller on one dataset (or averaged over datasets):
  accuracy (%) with its 95% CI, and the average total and sequential tokens per question.
- ``a`` *dominates* ``b`` when ``a`` costs no more tokens and is at least as accurate, and is strictly
  better in one of the two. The *Pareto frontier* is the set of points no other point dominates.
- The *attainable accuracy* at a budget ``t`` is the best accuracy among points costing at most ``t``
  tokens (0 below the cheapest point): a staircase, because a budget buys a config, not a blend.
- The *frontier score* of a controller is the area under its attainable-accuracy staircase over
  log10(tokens) on a common range, divided by the range's width in decades: its mean attainable
  accuracy (%) when the budget is spread evenly on a log scale. The common range is where every
  compared controller has points (the largest cheapest point to the smallest dearest one); if the
  controllers' ranges do not overlap, the union of their ranges is used instead.
- *Tokens at matched accuracy* against a baseline point: the cheapest point of the controller whose
  accuracy reaches the baseline's, as a fraction of the baseline's tokens ("reaches SC@64's
  accuracy with 38% of its tokens"); None when no point reaches it.
- The *average over datasets* of a config is the mean of its accuracies and tokens over the
  datasets, for configs evaluated on all of them; its CI is a bootstrap over questions, resampled
  within each dataset (stratified, seeded like ``engine.evaluate.bootstrap_ci``).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.evaluate import BOOTSTRAP_ITERATIONS

AXES = ("total", "sequential")
AVERAGE = "average over datasets"


@dataclass(frozen=True)
class Point:
    """One config of one controller on one dataset: accuracy (%) against tokens."""

    controller: str
    dataset: str
    config: Mapping[str, Any]
    accuracy: float
    ci_low: float
    ci_high: float
    total_tokens: float
    sequential_tokens: float
    per_question: tuple[float, ...] = field(default=(), repr=False)  # accuracy (%) per question

    def tokens(self, axis: str = "total") -> float:
        """Average tokens per question on ``axis``: ``total`` (cost) or ``sequential`` (latency)."""
        if axis not in AXES:
            raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
        return self.total_tokens if axis == "total" else self.sequential_tokens

    @property
    def label(self) -> str:
        """``config_label`` of this point's config, e.g. ``k=8`` or ``beta=0.5``."""
        return config_label(self.config)


def config_label(config: Mapping[str, Any]) -> str:
    """A short, stable text for a config: ``k=64``, ``beta=0.5, threshold=0.95`` ('default' if empty)."""
    return ", ".join(f"{k}={v}" for k, v in config.items()) or "default"


def config_key(config: Mapping[str, Any]) -> str:
    """A hashable identity of a config, independent of key order."""
    return json.dumps(dict(config), sort_keys=True, default=str)


def point_from_result(result: Any, controller: str, config: Mapping[str, Any] | None = None) -> Point:
    """A point from an ``EvalResult`` (``config`` overrides the result's, e.g. to show only the swept knob)."""
    return Point(
        controller=controller, dataset=result.dataset,
        config=dict(result.config if config is None else config),
        accuracy=float(result.accuracy), ci_low=float(result.ci95[0]), ci_high=float(result.ci95[1]),
        total_tokens=float(result.avg_total_tokens), sequential_tokens=float(result.avg_sequential_tokens),
        per_question=tuple(float(a) for a in result.per_question_accuracy),
    )


def dominates(a: Point, b: Point, axis: str = "total") -> bool:
    """``a`` costs no more and is no less accurate than ``b``, and is strictly better in one."""
    ta, tb = a.tokens(axis), b.tokens(axis)
    return ta <= tb and a.accuracy >= b.accuracy and (ta < tb or a.accuracy > b.accuracy)


def pareto_frontier(points: Iterable[Point], axis: str = "total") -> list[Point]:
    """The points no other point dominates, cheapest first (exact duplicates are kept once)."""
    ordered = sorted(points, key=lambda p: (p.tokens(axis), -p.accuracy))
    frontier: list[Point] = []
    best = -math.inf
    for p in ordered:
        if p.accuracy > best:
            frontier.append(p)
            best = p.accuracy
    return frontier


def attainable(points: Iterable[Point], budget: float, axis: str = "total") -> float:
    """Best accuracy among points costing at most ``budget`` tokens; 0 when none is that cheap."""
    return max((p.accuracy for p in points if p.tokens(axis) <= budget), default=0.0)


def common_range(groups: Iterable[Sequence[Point]], axis: str = "total") -> tuple[float, float]:
    """(lo, hi) tokens every group covers; the union of their ranges when they do not overlap."""
    spans = [(min(p.tokens(axis) for p in g), max(p.tokens(axis) for p in g)) for g in groups if g]
    if not spans:
        raise ValueError("no points to take a range from")
    lo, hi = max(s[0] for s in spans), min(s[1] for s in spans)
    if lo < hi:
        return lo, hi
    return min(s[0] for s in spans), max(s[1] for s in spans)


def frontier_score(points: Sequence[Point], lo: float, hi: float, axis: str = "total") -> float:
    """Mean attainable accuracy (%) over log10(tokens) in [lo, hi] (the staircase's area / width).

    A degenerate range (lo == hi) gives the attainable accuracy at that budget.
    """
    if lo <= 0 or hi < lo:
        raise ValueError(f"need 0 < lo <= hi, got lo={lo}, hi={hi}")
    if hi == lo:
        return attainable(points, hi, axis)
    steps = sorted({p.tokens(axis) for p in points if lo < p.tokens(axis) < hi})
    edges = [lo, *steps, hi]
    area = sum(attainable(points, a, axis) * math.log10(b / a) for a, b in itertools.pairwise(edges))
    return area / math.log10(hi / lo)


@dataclass(frozen=True)
class Matched:
    """The cheapest point reaching a baseline's accuracy, and its tokens as a share of the baseline's."""

    point: Point
    ratio: float


def matched_tokens(points: Iterable[Point], baseline: Point, axis: str = "total") -> Matched | None:
    """Cheapest point with accuracy >= the baseline's; None if no point reaches it."""
    reaching = [p for p in points if p.accuracy >= baseline.accuracy]
    if not reaching:
        return None
    best = min(reaching, key=lambda p: (p.tokens(axis), -p.accuracy))
    return Matched(best, best.tokens(axis) / baseline.tokens(axis))


def average_over_datasets(points: Iterable[Point]) -> list[Point]:
    """One point per (controller, config) evaluated on every dataset present: means, stratified CI."""
    points = list(points)
    datasets = sorted({p.dataset for p in points})
    groups: dict[tuple[str, str], dict[str, Point]] = {}
    for p in points:
        groups.setdefault((p.controller, config_key(p.config)), {})[p.dataset] = p
    averaged = []
    for (controller, _), by_ds in groups.items():
        if len(by_ds) != len(datasets):
            continue
        members = [by_ds[d] for d in datasets]
        lo, hi = stratified_ci([np.array(m.per_question) / 100 for m in members])
        averaged.append(Point(
            controller=controller, dataset=AVERAGE, config=dict(members[0].config),
            accuracy=round(float(np.mean([m.accuracy for m in members])), 2), ci_low=lo, ci_high=hi,
            total_tokens=float(np.mean([m.total_tokens for m in members])),
            sequential_tokens=float(np.mean([m.sequential_tokens for m in members])),
        ))
    return averaged


def stratified_ci(per_question: Sequence[np.ndarray], iterations: int = BOOTSTRAP_ITERATIONS) -> tuple[float, float]:
    """95% interval (%) of the mean of per-dataset accuracies, resampling questions within each dataset."""
    parts = [np.asarray(a, dtype=float) for a in per_question if len(a)]
    if not parts:
        return (0.0, 0.0)
    rng = np.random.default_rng(0)
    boots = np.zeros(iterations)
    for a in parts:
        boots += a[rng.integers(0, a.size, size=(iterations, a.size))].mean(axis=1)
    boots = boots / len(parts) * 100
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return (round(float(lo), 2), round(float(hi), 2))


@dataclass(frozen=True)
class Summary:
    """One row of the per-controller summary of a panel."""

    controller: str
    best: Point
    score: float
    matched: Matched | None
    on_frontier: int
    n_points: int


def by_controller(points: Iterable[Point]) -> dict[str, list[Point]]:
    """Points grouped by controller, in first-seen order."""
    groups: dict[str, list[Point]] = {}
    for p in points:
        groups.setdefault(p.controller, []).append(p)
    return groups


def summarize_panel(points: Sequence[Point], baseline: Point | None, axis: str = "total") -> list[Summary]:
    """Per controller: best accuracy, frontier score on the common range, matched tokens, frontier share."""
    groups = by_controller(points)
    if not groups:
        return []
    lo, hi = common_range(groups.values(), axis)
    front = {id(p) for p in pareto_frontier(points, axis)}
    return [
        Summary(
            controller=name,
            best=max(pts, key=lambda p: (p.accuracy, -p.tokens(axis))),
            score=frontier_score(pts, lo, hi, axis),
            matched=matched_tokens(pts, baseline, axis) if baseline is not None else None,
            on_frontier=sum(id(p) in front for p in pts),
            n_points=len(pts),
        )
        for name, pts in groups.items()
    ]


def find_point(points: Iterable[Point], controller: str, config: Mapping[str, Any]) -> Point | None:
    """The point of ``controller`` whose config includes ``config`` (e.g. the SC@64 baseline)."""
    for p in points:
        if p.controller == controller and all(p.config.get(k) == v for k, v in config.items()):
            return p
    return None
