"""The episode environment: one controller solving one question on replayed branches.

This module is the single owner of the episode rules of replay-semantics.md: the
shuffled branch order, the per-branch read pointer, what every action costs, and the
reference quirks that ``compat`` mode keeps (re-charging a finished branch, advancing
the next unopened branch). ``strict`` mode turns those quirks into ``InvalidAction``.

An episode records the actions it took as small integers (``OPEN``, ``READ`` or a
branch index for an advance), so a result can be recomputed from the action log
alone: that is how the sandbox's parent grades untrusted workers.
"""

from __future__ import annotations

import operator
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # sandbox workers import this module and need no numpy
    from engine.dataset import Dataset

COMPAT = "compat"
STRICT = "strict"
MODES = (COMPAT, STRICT)

# Action codes in an episode's action log; non-negative codes are probe_more(index).
OPEN = -1  # probe_new()
READ = -2  # get_new_branch_final_answer()


class InvalidAction(Exception):
    """An action the strict mode forbids. Deliberately not an IndexError/ValueError,
    so the usual ``safe_*`` helpers of controllers do not swallow it."""


@dataclass(frozen=True)
class ReplayQuestion:
    """What an episode needs of a question: branch data only, never the gold answer."""

    text: str
    probe_freq: int
    probes: tuple[tuple[str, ...], ...]
    tokens: tuple[int, ...]
    finals: tuple[str, ...]

    @property
    def n_branches(self) -> int:
        return len(self.tokens)


def replay_questions(dataset: Dataset) -> list[ReplayQuestion]:
    """The gold-free view of a dataset's questions, as plain tuples for fast indexing."""
    return [
        ReplayQuestion(
            text=q.text,
            probe_freq=q.probe_freq,
            probes=tuple(b.probes for b in q.branches),
            tokens=tuple(b.tokens for b in q.branches),
            finals=tuple(b.final for b in q.branches),
        )
        for q in dataset.questions
    ]


@lru_cache(maxsize=4096)
def shuffled_order(seed: int, n_branches: int) -> tuple[int, ...]:
    """Branch order of shuffle ``seed``: ``random.Random(seed).shuffle`` of the branch list.

    Shuffling indices gives the same permutation as shuffling the branches themselves,
    because ``shuffle`` draws depend only on the list length and the seed.
    """
    order = list(range(n_branches))
    random.Random(seed).shuffle(order)
    return tuple(order)


class Episode:
    """The question object a controller sees (reference names plus friendlier aliases).

    ``total_tokens`` is the cost; ``sequential_tokens`` the most tokens charged to any
    single branch (the latency if branches run in parallel).
    """

    __slots__ = (
        "_c",
        "_done",
        "_k",
        "_order",
        "_q",
        "_spent",
        "_strict",
        "actions",
        "n_opened",
        "question",
        "total_tokens",
    )

    def __init__(self, question: ReplayQuestion, order: tuple[int, ...], mode: str = COMPAT):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        n = len(order)
        self._q = question
        self._order = order
        self._strict = mode == STRICT
        self._k = [0] * n  # read pointer: probes revealed so far
        self._c = [0] * n  # tokens counted by the reference (not updated on finish)
        self._spent = [0] * n  # tokens actually charged to the branch
        self._done = [False] * n
        self.n_opened = 0
        self.total_tokens = 0
        self.actions: list[int] = []
        self.question = question.text

    # -- the reference API ------------------------------------------------------
    def probe_new(self) -> tuple[str, int, bool]:
        """Open the next branch and advance it one interval: (answer, index, is_finish)."""
        i = self._take_next("probe_new()")
        answer, finished = self._advance(i)
        self.actions.append(OPEN)
        return answer, i, finished

    def probe_more(self, index: int) -> tuple[str, bool]:
        """Advance branch ``index`` by one interval: (answer, is_finish)."""
        if type(index) is not int:
            index = operator.index(index)  # numpy ints are welcome, floats are a TypeError
        if self._strict or not 0 <= index <= self.n_opened or index >= len(self._order):
            self._refuse_advance(index)
        answer, finished = self._advance(index)
        self.actions.append(index)
        return answer, finished

    def get_new_branch_final_answer(self) -> str:
        """Open the next branch and read it to its end in one go (costs its full length)."""
        i = self._take_next("get_new_branch_final_answer()")
        b = self._order[i]
        tokens = self._q.tokens[b]
        self._k[i] = len(self._q.probes[b])
        self._c[i] = self._spent[i] = tokens
        self._done[i] = True
        self.total_tokens += tokens
        self.actions.append(READ)
        return self._q.finals[b]

    def get_seq_and_total_tokens(self) -> tuple[int, int]:
        """Reference diagnostics; its first element is always 0."""
        return 0, self.total_tokens

    # -- friendlier aliases -----------------------------------------------------
    open_branch = probe_new
    advance = probe_more
    read_branch = get_new_branch_final_answer

    @property
    def n_branches(self) -> int:
        return len(self._order)

    @property
    def probe_freq(self) -> int:
        return self._q.probe_freq

    @property
    def sequential_tokens(self) -> int:
        return max(self._spent, default=0)

    def __repr__(self) -> str:
        return f"<Episode {self.n_opened}/{len(self._order)} branches open, {self.total_tokens} tokens>"

    # -- rules ------------------------------------------------------------------
    def _take_next(self, action: str) -> int:
        i = self.n_opened
        if i >= len(self._order):
            if self._strict:
                raise InvalidAction(f"{action} opens past the pool: all {i} branches are open")
            raise IndexError(f"{action}: all {i} branches are already open")
        self.n_opened = i + 1
        return i

    def _refuse_advance(self, index: int) -> None:
        """Raise if the rules forbid advancing ``index`` (the hot path checks compat mode inline)."""
        opened = self.n_opened
        if self._strict:
            if not 0 <= index < opened:
                raise InvalidAction(f"probe_more({index}) advances an unopened branch ({opened} open)")
            if self._done[index]:
                raise InvalidAction(f"probe_more({index}) advances a finished branch")
        elif index < 0 or index > opened or index >= len(self._order):
            raise IndexError(f"probe_more({index}): branch index out of range ({opened} open)")

    def _advance(self, i: int) -> tuple[str, bool]:
        b = self._order[i]
        probes = self._q.probes[b]
        k = self._k[i]
        if k < len(probes):
            step = self._q.probe_freq
            self._k[i] = k + 1
            self._c[i] += step
            self._spent[i] += step
            self.total_tokens += step
            return probes[k], False
        remainder = max(0, self._q.tokens[b] - self._c[i])
        self._spent[i] += remainder
        self.total_tokens += remainder
        self._done[i] = True
        return self._q.finals[b], True


def replay_actions(
    question: ReplayQuestion, order: tuple[int, ...], actions: list[int], mode: str = COMPAT
) -> Episode:
    """Re-apply an action log to a fresh episode (raises if an action is not allowed)."""
    ep = Episode(question, order, mode)
    for a in actions:
        if a == OPEN:
            ep.probe_new()
        elif a == READ:
            ep.get_new_branch_final_answer()
        else:
            ep.probe_more(a)
    return ep
