"""What every controller shares: the reference-compatible base class and voting primitives.

Controllers written for the AutoTTS reference subclass ``LLMDesignedMethod``, take a
``config`` dict and implement ``solve(question)``; they run here unmodified. TTS Lab's
own built-ins subclass ``Controller``, which adds a beta schedule: one scalar in [0, 1]
that sets every knob, so one slider traces a controller's accuracy-cost curve.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from functools import cache
from numbers import Integral, Real
from typing import Any, ClassVar

# Errors the question object raises when the pool of branches is exhausted or an
# index is out of range; the reference's helpers swallow exactly these.
POOL_ERRORS = (IndexError, ValueError)


class LLMDesignedMethod:
    """Base class of the reference API: ``config`` dict in, ``solve(question)`` out."""

    NAME = "unnamed_method"

    def __init__(self, config: dict[str, Any] | None = None):
        self.config = config or {}

    def solve(self, question: Any) -> str | None:
        raise NotImplementedError

    def __call__(self, question: Any) -> str | None:
        return self.solve(question)

    def description(self) -> str:
        return f"{self.NAME} | config={self.config}" if self.config else self.NAME


class Controller(LLMDesignedMethod):
    """A built-in controller: knobs come from ``schedule(beta)``, explicit config wins.

    ``config`` may hold ``beta`` and any knob by name; knobs not given explicitly take
    the schedule's value at ``beta`` (default ``DEFAULT_BETA``).
    """

    NAME: ClassVar[str] = "controller"
    DEFAULT_BETA: ClassVar[float] = 1.0

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(dict(config or {}))
        knobs = self.schedule(self._beta())
        unknown = set(self.config) - set(knobs) - {"beta"} - self.ignored_knobs()
        if unknown:
            raise ValueError(
                f"{self.NAME}: unknown knob(s) {sorted(unknown)}; knobs are {sorted(knobs)}"
            )
        knobs.update({k: self._checked(k, v, type(knobs[k])) for k, v in self.config.items() if k in knobs})
        self.knobs = knobs

    def _beta(self) -> float:
        """The configured beta; outside [0, 1] it is refused, never silently clipped."""
        beta = self.config.get("beta", self.DEFAULT_BETA)
        if isinstance(beta, bool) or not isinstance(beta, Real) or not 0.0 <= beta <= 1.0:
            raise ValueError(f"{self.NAME}: beta must be a number in [0, 1], got {beta!r}")
        return float(beta)

    def _checked(self, knob: str, value: Any, expected: type) -> Any:
        """An explicit knob value of the schedule's type (numpy numbers too): an int may stand for a float,
        8.0 for 8."""
        kind = {bool: bool, int: Integral, float: Real}.get(expected, expected)
        whole = isinstance(value, Real) and not isinstance(value, Integral) and float(value).is_integer()
        if expected is int and whole:
            value = int(value)
        if isinstance(value, bool) != (expected is bool) or not isinstance(value, kind):
            raise ValueError(f"{self.NAME}: knob {knob!r} expects {expected.__name__}, got {value!r}")
        return int(value) if expected is int else value

    @classmethod
    def schedule(cls, beta: float) -> dict[str, Any]:
        """Every knob as a function of beta in [0, 1] (the schedule clips; ``Controller`` refuses outside)."""
        raise NotImplementedError

    @classmethod
    def ignored_knobs(cls) -> set[str]:
        """Config keys the reference accepts but never reads."""
        return set()


def clip01(beta: float) -> float:
    return min(1.0, max(0.0, float(beta)))


def majority(answers: list) -> Any:
    """Most frequent answer; ties go to the answer seen first; None for no answers."""
    if not answers:
        return None
    return Counter(answers).most_common(1)[0][0]


def vote_stats(answers: list) -> tuple[Any, int, int, int]:
    """(winner, top1 count, runner-up count, total) in Counter.most_common order."""
    if not answers:
        return None, 0, 0, 0
    common = Counter(answers).most_common(2)
    top2 = common[1][1] if len(common) > 1 else 0
    return common[0][0], common[0][1], top2, len(answers)


@cache
def beta_confidence(top1: int, top2: int) -> float:
    """``1 - I_0.5(top1+1, top2+1)``: the Beta-posterior probability the leader leads.

    With integer arguments ``I_0.5(a, b) = P(Binomial(a+b-1, 1/2) >= a)``, so this is
    P(Binomial(top1+top2+1, 1/2) <= top1), computed exactly and rounded once: no SciPy
    needed, and the value is reproducible.
    """
    if top1 <= 0:
        return 0.0
    n = top1 + top2 + 1
    head = sum(_binomial_row(n)[: top1 + 1])
    return float(Fraction(head, 2**n))


@cache
def _binomial_row(n: int) -> tuple[int, ...]:
    row = [1]
    for k in range(n):
        row.append(row[-1] * (n - k) // (k + 1))
    return tuple(row)


def safe_probe_new(question: Any) -> tuple | None:
    try:
        return question.probe_new()
    except POOL_ERRORS:
        return None


def safe_probe_more(question: Any, index: int) -> tuple | None:
    try:
        return question.probe_more(index)
    except POOL_ERRORS:
        return None


def safe_full_read(question: Any) -> Any:
    try:
        return question.get_new_branch_final_answer()
    except POOL_ERRORS:
        return None
