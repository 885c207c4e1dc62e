"""In-memory trajectory data: what the store loads and what replay reads.

A dataset is a list of questions; each question holds its branches exactly as
collected (probe answers every `probe_freq` tokens, total length, final answer).
`DatasetArrays` packs the same facts into integer numpy arrays once per dataset
so that replay never touches strings in its inner loops.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Branch:
    """One pre-collected reasoning chain."""

    probes: tuple[str, ...]
    tokens: int
    final: str


@dataclass(frozen=True)
class Question:
    """One problem with all its branches. `gold` is what answers are graded against."""

    text: str
    gold: str
    probe_freq: int
    branches: tuple[Branch, ...]
    # Kept only so that export reproduces the source file value for value.
    final_answers_trace: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Dataset:
    """A named set of questions, e.g. ``Qwen3-8B/aime24``."""

    name: str
    questions: tuple[Question, ...]
    content_hash: str = ""
    source: str = ""

    @cached_property
    def arrays(self) -> DatasetArrays:
        return DatasetArrays.from_questions(self.questions)

    @property
    def n_questions(self) -> int:
        return len(self.questions)


@dataclass(frozen=True)
class DatasetArrays:
    """Integer-coded branch data for all questions of a dataset.

    Answers are coded per question: ``vocab[q][code]`` is the answer string. Arrays
    are padded to the largest branch count / probe count; ``n_branches`` and
    ``n_probes`` say how much of each row is real.
    """

    vocab: tuple[tuple[str, ...], ...]
    gold: np.ndarray  # (Q,) code of the gold answer, -1 if no branch ever says it
    probe_freq: np.ndarray  # (Q,)
    n_branches: np.ndarray  # (Q,)
    n_probes: np.ndarray  # (Q, B)
    probes: np.ndarray  # (Q, B, P) answer codes, -1 padding
    tokens: np.ndarray  # (Q, B)
    final: np.ndarray  # (Q, B) answer codes

    @classmethod
    def from_questions(cls, questions: tuple[Question, ...]) -> DatasetArrays:
        n_q = len(questions)
        max_b = max((len(q.branches) for q in questions), default=0)
        max_p = max((len(b.probes) for q in questions for b in q.branches), default=0)
        probes = np.full((n_q, max_b, max(max_p, 1)), -1, dtype=np.int32)
        n_probes = np.zeros((n_q, max_b), dtype=np.int32)
        tokens = np.zeros((n_q, max_b), dtype=np.int64)
        final = np.full((n_q, max_b), -1, dtype=np.int32)
        gold = np.full(n_q, -1, dtype=np.int32)
        vocab = []
        for qi, q in enumerate(questions):
            codes: dict[str, int] = {}
            for bi, b in enumerate(q.branches):
                row = [codes.setdefault(a, len(codes)) for a in b.probes]
                probes[qi, bi, : len(row)] = row
                n_probes[qi, bi] = len(row)
                tokens[qi, bi] = b.tokens
                final[qi, bi] = codes.setdefault(b.final, len(codes))
            gold[qi] = codes.get(q.gold, -1)
            vocab.append(tuple(codes))
        return cls(
            vocab=tuple(vocab),
            gold=gold,
            probe_freq=np.array([q.probe_freq for q in questions], dtype=np.int64),
            n_branches=np.array([len(q.branches) for q in questions], dtype=np.int32),
            n_probes=n_probes,
            probes=probes,
            tokens=tokens,
            final=final,
        )
