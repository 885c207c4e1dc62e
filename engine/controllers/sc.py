"""SC@k, self-consistency: read k branches to the end and take the majority vote."""

from __future__ import annotations

from typing import Any

from engine.controllers.base import Controller, clip01, majority, safe_full_read


def budget_from_beta(beta: float) -> int:
    """Shared by the handcrafted baselines: beta 0..1 maps to 1..64 samples, log-spaced,
    so the budget sweep {1, 4, 8, 16, 32, 64} is beta = log2(k) / 6."""
    return round(2 ** (6 * clip01(beta)))


class SC(Controller):
    NAME = "sc"

    @classmethod
    def schedule(cls, beta: float) -> dict[str, Any]:
        return {"k": budget_from_beta(beta)}

    def solve(self, question: Any) -> str | None:
        answers = []
        for _ in range(int(self.knobs["k"])):
            answer = safe_full_read(question)
            if answer is None:
                break
            answers.append(answer)
        return majority(answers)
