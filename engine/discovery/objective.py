"""How a session ranks candidates: the whole beta curve (``curve``, the default) or one mean point.

``curve`` scores what the one-beta requirement asks for: sweeping beta from 0 to 1 must buy accuracy
with tokens. On each search dataset the candidate's beta sweep is read in beta order and a point
counts only if it costs at least as much as the last counted one (beta must raise the spend: an
inverted or a flat stretch adds nothing). The counted points' attainable-accuracy staircase
(``engine.pareto``: the best accuracy among points costing at most a budget, 0 below the cheapest)
is averaged over log10(tokens) on a fixed range per dataset: from what CMC (the paper's controller)
costs at the lowest beta of the grid to the 64-branch ceiling (reading 64 branches in full, the most
any controller may spend). That is the area the curve dominates in accuracy x log-tokens against
the reference point (0 %, ceiling), divided by the range's width: a mean accuracy (%) over budgets.
So a curve that reaches down to CMC's cheap end and keeps converting tokens into accuracy up to the
ceiling scores highest; a curve stuck at one operating point (beta ignored) scores nothing for every
budget below it. The score is then the mean over the search datasets. The range depends only on the
datasets, the beta grid and the shuffle count, so scores within a session are comparable.

``accuracy`` (mean accuracy over the sweep, ties by tokens) and ``penalised`` (that minus
gamma per 1000 tokens) are the earlier point objectives, kept for the sessions that store them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.dataset import Dataset
from engine.evaluate import ControllerSpec, evaluate
from engine.pareto import Point, frontier_score
from engine.store import Store

CURVE, ACCURACY, PENALISED = "curve", "accuracy", "penalised"
OBJECTIVES = (CURVE, ACCURACY, PENALISED)
BASELINE = "cmc"
CEILING_BRANCHES = 64

Figure = tuple[float, float, float]  # (beta, accuracy %, tokens) of one evaluation
Sweep = Sequence[Figure]  # one dataset's beta sweep


@dataclass(frozen=True)
class Span:
    """One dataset's budget range for the curve score (tokens per question)."""

    lo: float
    hi: float


def ceiling_tokens(ds: Dataset, branches: int = CEILING_BRANCHES) -> float:
    """Expected tokens of reading ``branches`` branches in full (all of them where a question has fewer)."""
    arrays = ds.arrays
    per_q = []
    for q in range(len(arrays.n_branches)):
        n = int(arrays.n_branches[q])
        lengths = arrays.tokens[q, :n].astype(float)
        per_q.append(lengths.mean() * min(branches, n) if n else 0.0)
    return float(np.mean(per_q)) if per_q else 0.0


def baseline_sweep(store: Store, ds: Dataset, betas: Iterable[float], shuffles: int) -> list[Figure]:
    """CMC's (beta, accuracy, tokens) on ``ds`` (compiled kernel, cached in the store)."""
    out = []
    for beta in betas:
        res = evaluate(ds, ControllerSpec.builtin(BASELINE, {"beta": beta}), shuffles=shuffles, store=store)
        out.append((beta, res.accuracy, res.avg_total_tokens))
    return out


def spans(store: Store, datasets: Sequence[Dataset], betas: Sequence[float], shuffles: int) -> dict[str, Span]:
    """Each search dataset's range: CMC's cost at the lowest beta up to the 64-branch ceiling."""
    out = {}
    for ds in datasets:
        (_, _, lo), = baseline_sweep(store, ds, [min(betas)], shuffles)
        out[ds.name] = Span(lo, max(lo, ceiling_tokens(ds)))
    return out


def beta_chain(sweep: Sweep) -> list[Figure]:
    """The points that count, in beta order: each costs at least as much as the last one kept."""
    kept: list[Figure] = []
    for point in sorted(sweep):
        if not kept or point[2] >= kept[-1][2]:
            kept.append(point)
    return kept


def dataset_score(sweep: Sweep, span: Span) -> float:
    """Mean attainable accuracy (%) of the beta chain over log10(tokens) in the dataset's span."""
    chain = [Point("candidate", "", {"beta": b}, acc, acc, acc, tok, tok) for b, acc, tok in beta_chain(sweep)]
    return frontier_score(chain, span.lo, span.hi)


def curve_score(sweeps: dict[str, Sweep], spans_by_dataset: dict[str, Span]) -> float:
    """The curve objective: ``dataset_score`` averaged over the search datasets."""
    missing = sorted(set(spans_by_dataset) - set(sweeps))
    if missing:
        raise ValueError(f"no sweep on {', '.join(missing)}")
    return float(np.mean([dataset_score(sweeps[name], span) for name, span in spans_by_dataset.items()]))


def point_score(objective: str, gamma: float, accuracy: float, tokens: float) -> float:
    """The point objectives: mean accuracy (%), or accuracy - gamma per 1000 tokens."""
    return accuracy if objective == ACCURACY else accuracy - gamma * tokens / 1000


def rises(sweep: Sweep, min_ratio: float = 1.1) -> bool:
    """Whether beta moves the curve: its top beta costs ``min_ratio`` x its lowest beta's tokens or more."""
    ordered = sorted(sweep)
    return len(ordered) > 1 and ordered[-1][2] >= min_ratio * ordered[0][2]
