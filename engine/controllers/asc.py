"""ASC, adaptive self-consistency: sample until the Beta-posterior confidence of the
leading answer exceeds a threshold."""

from __future__ import annotations

from typing import Any

from engine.controllers.base import (
    Controller,
    beta_confidence,
    majority,
    safe_full_read,
    vote_stats,
)
from engine.controllers.sc import budget_from_beta


class ASC(Controller):
    NAME = "asc"

    @classmethod
    def schedule(cls, beta: float) -> dict[str, Any]:
        return {"max_samples": budget_from_beta(beta), "threshold": 0.95}

    def solve(self, question: Any) -> str | None:
        threshold = float(self.knobs["threshold"])
        pool: list = []
        for _ in range(int(self.knobs["max_samples"])):
            answer = safe_full_read(question)
            if answer is None:
                break
            pool.append(answer)
            if len(pool) >= 2:
                winner, top1, top2, _ = vote_stats(pool)
                if beta_confidence(top1, top2) > threshold:
                    return winner
        return majority(pool)
