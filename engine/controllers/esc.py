"""ESC, early-stopping self-consistency: sample in windows, stop at a unanimous window."""

from __future__ import annotations

from typing import Any

from engine.controllers.base import Controller, majority, safe_full_read
from engine.controllers.sc import budget_from_beta


class ESC(Controller):
    NAME = "esc"

    @classmethod
    def schedule(cls, beta: float) -> dict[str, Any]:
        return {"max_samples": budget_from_beta(beta), "window_size": 8}

    def solve(self, question: Any) -> str | None:
        window_size = int(self.knobs["window_size"])
        pool: list = []
        for _ in range(int(self.knobs["max_samples"]) // window_size):
            window = []
            for _ in range(window_size):
                answer = safe_full_read(question)
                if answer is None:
                    break
                window.append(answer)
            if not window:
                continue
            pool.extend(window)
            if len(set(window)) == 1:
                return window[0]
        return majority(pool)
