"""Inside one question of a dataset: what every branch answered at every probe, and how the votes settle.

Pure functions of a ``Question`` (no replay, no controller), drawn by ``engine.plots.explorer``.
Step ``t`` (0-based) is the state after ``(t + 1) * probe_freq`` tokens of a branch: its probe answer
while it is still running, then its final answer once it has ended (a finished branch keeps voting).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from engine.controllers.base import majority
from engine.dataset import Question

PLACEHOLDERS = ("No", "ERR")  # "no answer yet" and "extraction failed" in the AutoTTS data
SORTS = ("final answer", "length", "file order")
TOP_CLUSTERS = 8


@dataclass(frozen=True)
class ProbeGrid:
    """Branch x step answers in display order, coded by cluster (``clusters[code]``; -1 = branch ended)."""

    clusters: tuple[str, ...]  # answer labels by code: the gold answer first, then by frequency, then other
    codes: tuple[tuple[int, ...], ...]  # [row][step]
    answers: tuple[tuple[str, ...], ...]  # [row][step] the answer text ('' after the branch ended)
    branches: tuple[int, ...]  # row -> branch index in the file
    tokens: tuple[int, ...]  # row -> the branch's length in tokens
    probe_freq: int
    gold: str


OTHER = "other answers"
PLACEHOLDER = "No / ERR (no answer)"


def clusters_of(question: Question, top: int = TOP_CLUSTERS) -> tuple[str, ...]:
    """The answer clusters a grid colours: gold, the most frequent other final answers, other, No/ERR."""
    counts = Counter(b.final for b in question.branches if b.final not in PLACEHOLDERS)
    frequent = [a for a, _ in counts.most_common() if a != question.gold][: top - 1]
    return (question.gold, *frequent, OTHER, PLACEHOLDER)


def cluster_code(answer: str, clusters: tuple[str, ...]) -> int:
    """Index of ``answer``'s cluster in ``clusters`` (placeholders and rare answers share one)."""
    if answer in PLACEHOLDERS:
        return len(clusters) - 1
    try:
        return clusters.index(answer, 0, len(clusters) - 2)
    except ValueError:
        return len(clusters) - 2


def branch_order(question: Question, sort: str = "final answer") -> list[int]:
    """Rows of the grid: by final-answer cluster (gold first) then length; by length; or as in the file."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}, got {sort!r}")
    indices = list(range(len(question.branches)))
    if sort == "file order":
        return indices
    if sort == "length":
        return sorted(indices, key=lambda i: question.branches[i].tokens)
    clusters = clusters_of(question)
    return sorted(indices, key=lambda i: (cluster_code(question.branches[i].final, clusters),
                                          question.branches[i].tokens))


def answer_at(question: Question, branch: int, step: int) -> str:
    """What branch ``branch`` says after step ``step``: its probe answer, or its final answer once ended."""
    b = question.branches[branch]
    return b.probes[step] if step < len(b.probes) else b.final


def probe_grid(question: Question, sort: str = "final answer") -> ProbeGrid:
    """The heatmap's data: every branch's probe answers, coded by cluster, in ``sort`` order."""
    clusters = clusters_of(question)
    order = branch_order(question, sort)
    width = max((len(question.branches[i].probes) for i in order), default=0)
    codes, answers = [], []
    for i in order:
        probes = question.branches[i].probes
        codes.append(tuple(cluster_code(a, clusters) for a in probes) + (-1,) * (width - len(probes)))
        answers.append(tuple(probes) + ("",) * (width - len(probes)))
    return ProbeGrid(clusters, tuple(codes), tuple(answers), tuple(order),
                     tuple(question.branches[i].tokens for i in order), question.probe_freq, question.gold)


def final_distribution(question: Question) -> list[tuple[str, int, bool]]:
    """(final answer, branches ending on it, is gold), most frequent first (ties: first seen)."""
    counts = Counter(b.final for b in question.branches)
    return [(a, n, a == question.gold) for a, n in counts.most_common()]


@dataclass(frozen=True)
class Convergence:
    """Per step: the majority answer of all branches, its share, and the share answering gold."""

    steps: tuple[int, ...]  # 1-based step numbers (tokens = step * probe_freq)
    majority: tuple[str, ...]
    majority_share: tuple[float, ...]
    gold_share: tuple[float, ...]
    settled_at: int | None  # first step from which the majority never changes again (1-based)
    probe_freq: int


def convergence(question: Question) -> Convergence:
    """How the vote of all branches at step t (ended branches vote their final answer) settles."""
    n = len(question.branches)
    width = max((len(b.probes) for b in question.branches), default=0)
    winners, shares, golds = [], [], []
    for t in range(width):
        now = [answer_at(question, i, t) for i in range(n)]
        winner = majority(now)
        winners.append(winner)
        shares.append(now.count(winner) / n)
        golds.append(now.count(question.gold) / n)
    settled = None
    for t in range(width - 1, -1, -1):
        if winners[t] != winners[-1]:
            break
        settled = t + 1
    return Convergence(tuple(range(1, width + 1)), tuple(winners), tuple(shares), tuple(golds), settled,
                       question.probe_freq)
