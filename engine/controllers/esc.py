"""ESC, early-stopping self-consistency: sample in windows, stop at a unanimous window."""

from __future__ import annotations

from typing import Any

from engine.controllers.base import Controller, majority, safe_full_read
from engine.controllers.sc import budget_from_beta


def default_window(budget: int) -> int:
    """The reference window is 8; a smaller budget gets one window of its own size, not zero windows."""
    return max(1, min(8, budget))


class ESC(Controller):
    NAME = "esc"

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        if "window_size" not in self.config:  # follow an explicit budget, as the schedule does
            self.knobs["window_size"] = default_window(int(self.knobs["max_samples"]))

    @classmethod
    def schedule(cls, beta: float) -> dict[str, Any]:
        budget = budget_from_beta(beta)
        return {"max_samples": budget, "window_size": default_window(budget)}

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
