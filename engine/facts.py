"""Headline facts about a dataset, computed once at import so listings never replay anything.

They use the reference semantics: exact string comparison with the gold answer, and the
controllers' majority vote (ties go to the answer seen first).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.controllers.base import majority
from engine.dataset import Dataset


@dataclass(frozen=True)
class Facts:
    """Percentages (0-100) over the questions of one dataset."""

    pass_at_1: float  # mean share of branches whose final answer is the gold answer
    majority_all: float  # questions where the majority of all final answers is the gold answer
    any_correct: float  # questions where at least one branch ends on the gold answer


def dataset_facts(dataset: Dataset) -> Facts:
    """pass@1, majority-of-all and any-correct, each x100, unrounded."""
    shares, majorities, anys = [], [], []
    for q in dataset.questions:
        finals = [b.final for b in q.branches]
        hits = sum(f == q.gold for f in finals)
        shares.append(hits / len(finals) if finals else 0.0)
        majorities.append(majority(finals) == q.gold)
        anys.append(hits > 0)
    return Facts(_percent(shares), _percent(majorities), _percent(anys))


def _percent(values: list) -> float:
    return 100 * sum(values) / len(values) if values else 0.0
