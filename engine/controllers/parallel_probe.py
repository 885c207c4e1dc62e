"""Parallel-Probe: run many branches side by side, prune the ones that keep disagreeing
with the majority, stop when the majority has been stable for T steps."""

from __future__ import annotations

from typing import Any

from engine.controllers.base import (
    Controller,
    majority,
    safe_probe_more,
    safe_probe_new,
)
from engine.controllers.sc import budget_from_beta

# The reference sweep's fixed knobs; only num_chains varies along the budget sweep.
REFERENCE_KNOBS = {"T": 40, "prune_patience": 7, "warm_up": 15, "probe_burst": 1, "max_steps": 100}


class _Chain:
    __slots__ = ("finished", "history", "index", "off_track", "pruned")

    def __init__(self, index: int, answer: str, finished: bool):
        self.index = index
        self.history = [answer]
        self.finished = finished
        self.pruned = False
        self.off_track = 0


class ParallelProbe(Controller):
    NAME = "parallel_probe"

    @classmethod
    def schedule(cls, beta: float) -> dict[str, Any]:
        return {"num_chains": budget_from_beta(beta), **REFERENCE_KNOBS}

    @classmethod
    def ignored_knobs(cls) -> set[str]:
        return {"K", "eps_inter", "eps_intra"}

    def solve(self, question: Any) -> str | None:
        chains = self._open(question)
        if not chains:
            return None
        kn = self.knobs
        warm_up, patience, burst = int(kn["warm_up"]), int(kn["prune_patience"]), int(kn["probe_burst"])
        stable, prev_winner = 0, None
        for step in range(int(kn["max_steps"])):
            for ch in chains:
                if not ch.pruned and not ch.finished:
                    self._forward(question, ch, burst)
            active = [ch for ch in chains if not ch.pruned]
            if not active:
                break
            winner = majority([ch.history[-1] for ch in active])
            if step >= warm_up and len(active) > 1:
                if self._prune(active, winner, patience):
                    active = [ch for ch in chains if not ch.pruned]
                    if not active:
                        break
                    winner = majority([ch.history[-1] for ch in active])
            stable = stable + 1 if winner == prev_winner else 0
            prev_winner = winner
            if stable >= int(kn["T"]):
                return winner
            if all(ch.finished or ch.pruned for ch in chains):
                break
        return prev_winner

    def _open(self, question: Any) -> list[_Chain]:
        chains = []
        for _ in range(int(self.knobs["num_chains"])):
            opened = safe_probe_new(question)
            if opened is None:
                break
            answer, index, finished = opened
            chains.append(_Chain(index, answer, finished))
        return chains

    @staticmethod
    def _forward(question: Any, ch: _Chain, burst: int) -> None:
        latest = ch.history[-1]
        for _ in range(burst):
            step = safe_probe_more(question, ch.index)
            if step is None:
                ch.finished = True
                break
            latest, ch.finished = step
            if ch.finished:
                break
        ch.history.append(latest)

    @staticmethod
    def _prune(active: list[_Chain], winner: Any, patience: int) -> bool:
        """Count off-track steps of unfinished chains and prune the persistent dissenters."""
        pruned = False
        for ch in active:
            if not ch.finished:
                ch.off_track = ch.off_track + 1 if ch.history[-1] != winner else 0
        for ch in active:
            if not ch.finished and ch.off_track >= patience:
                ch.pruned = pruned = True
        return pruned
