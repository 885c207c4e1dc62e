"""CMC, the Confidence Momentum Controller that AutoTTS discovered.

It keeps a pool of completed answers, tracks an exponential moving average of the
pool's majority confidence, deepens branches that agree with the leader, abandons
persistent dissenters, widens (opens branches) while confidence stalls, and stops
once the smoothed confidence is high and not falling.
"""

from __future__ import annotations

from typing import Any

from engine.controllers.base import (
    Controller,
    beta_confidence,
    clip01,
    majority,
    safe_probe_more,
    safe_probe_new,
    vote_stats,
)

MAX_ROUNDS = 500
MAX_BRANCHES = 64


def _r4(x: float) -> float:
    return round(x, 4)


class _Branch:
    __slots__ = ("abandoned", "disagree", "finished", "index", "latest", "probe_count")

    def __init__(self, index: int, latest: str, finished: bool):
        self.index = index
        self.latest = latest
        self.finished = finished
        self.abandoned = False
        self.probe_count = 0
        self.disagree = 0

    @property
    def live(self) -> bool:
        return not self.abandoned and not self.finished


def pool_stats(pool: list) -> tuple[Any, int, int, float]:
    winner, top1, top2, _ = vote_stats(pool)
    return winner, top1, top2, beta_confidence(top1, top2)


class CMC(Controller):
    NAME = "cmc"
    DEFAULT_BETA = 0.5

    @classmethod
    def schedule(cls, beta: float) -> dict[str, Any]:
        b = clip01(beta)
        return {
            "n_init": max(2, round(2 + 6 * b)),
            "max_branch_use": min(64, round(4 + 60 * b)),
            "warm_up": max(2, round(2 + 8 * b)),
            "abandon_patience": max(3, round(3 + 9 * b)),
            "T_ema": max(2, round(2 + 6 * b)),
            "ema_alpha": _r4(0.70 - 0.40 * b),
            "conf_thresh": _r4(0.85 + 0.12 * b),
            "delta_slack": _r4(0.04 - 0.03 * b),
            "burst_aligned": max(1, round(1 + 2 * b)),
            "widen_burst": max(1, round(1 + 3 * b)),
            "trend_thresh": _r4(0.04 - 0.03 * b),
            "min_complete": max(2, round(2 + 3 * b)),
        }

    def solve(self, question: Any) -> str | None:
        self._q, self._branches, self._pool = question, [], []
        for _ in range(int(self.knobs["n_init"])):
            if not self._open_one():
                break
        if not self._branches:
            return None
        winner = self._rounds()
        if winner is not None or self._pool:
            return winner
        return majority([b.latest for b in self._branches if not b.abandoned and b.latest is not None])

    def _rounds(self) -> Any:
        kn, pool = self.knobs, self._pool
        alpha, t_ema, warm_up = kn["ema_alpha"], int(kn["T_ema"]), int(kn["warm_up"])
        ema, history = 0.0, []
        for rnd in range(MAX_ROUNDS):
            warm = rnd >= warm_up
            winner, _, _, conf = pool_stats(pool)
            ema = (1 - alpha) * ema + alpha * conf
            history.append(ema)
            if len(history) > t_ema:
                history.pop(0)
            if warm and winner is not None:
                self._abandon_dissenters(winner)
            self._deepen(winner if warm else None)
            winner, _, _, conf = pool_stats(pool)
            ema = (1 - alpha) * ema + alpha * conf
            history[-1] = ema
            delta = history[-1] - history[0] if len(history) >= 2 else 0.0
            confident = ema >= kn["conf_thresh"] and delta >= -kn["delta_slack"]
            if warm and len(pool) >= kn["min_complete"] and confident:
                return winner
            if all(not b.live for b in self._branches):
                break
            if delta <= kn["trend_thresh"] and rnd >= max(1, warm_up // 2) and ema < kn["conf_thresh"]:
                self._widen()
        return majority(pool)

    def _abandon_dissenters(self, winner: Any) -> None:
        live = [b for b in self._branches if b.live]
        for b in live:
            b.disagree = b.disagree + 1 if b.latest != winner else 0
        patience = self.knobs["abandon_patience"]
        dissenters = sorted((b for b in live if b.disagree >= patience), key=lambda b: -b.disagree)
        for b in dissenters[: max(0, len(live) - 2)]:
            b.abandoned = True

    def _deepen(self, winner: Any) -> None:
        """Advance every live branch, deepest first; those agreeing with ``winner`` in bursts."""
        burst = int(self.knobs["burst_aligned"])
        for b in sorted((b for b in self._branches if b.live), key=lambda b: -b.probe_count):
            aligned = winner is not None and b.latest == winner
            self._advance(b, burst if aligned else 1)

    def _advance(self, b: _Branch, steps: int) -> None:
        for _ in range(steps):
            if b.finished:
                return
            step = safe_probe_more(self._q, b.index)
            if step is None:
                b.finished = True
                if b.latest is not None:
                    self._pool.append(b.latest)
                return
            b.latest, b.finished = step
            b.probe_count += 1
            if b.finished:
                self._pool.append(b.latest)
                return

    def _widen(self) -> None:
        cap = min(int(self.knobs["max_branch_use"]), MAX_BRANCHES)
        for _ in range(int(self.knobs["widen_burst"])):
            if len(self._branches) >= cap or not self._open_one():
                return

    def _open_one(self) -> bool:
        opened = safe_probe_new(self._q)
        if opened is None:
            return False
        answer, index, finished = opened
        self._branches.append(_Branch(index, answer, finished))
        if finished:
            self._pool.append(answer)
        return True
