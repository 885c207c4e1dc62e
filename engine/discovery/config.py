"""What a discovery session is asked to do: proposer, datasets, seeds, betas, objective, budgets.

A config is stored with its session (JSON) and never holds an API key: keys come from the
environment or are handed to the running process in memory only.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from engine.controllers import BETAS
from engine.discovery.objective import CURVE, OBJECTIVES

OFFLINE = "offline"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ConfigError(ValueError):
    """A session config that cannot run (one line, for the user)."""


@dataclass(frozen=True)
class SessionConfig:
    """One session's settings. ``rounds``, ``budget_usd`` and ``budget_seconds`` may grow on resume."""

    name: str
    proposer: str  # a litellm model string, or "offline" for the Optuna family search
    search: tuple[str, ...]
    heldout: tuple[str, ...] = ()
    api_base: str | None = None
    seeds: tuple[str, ...] = ("cmc",)  # built-in beta controllers or saved:<id>; offline: family presets
    betas: tuple[float, ...] = BETAS
    shuffles: int = 100
    # multi-fidelity search: an LLM-written candidate is first evaluated at this many shuffles and gets the
    # full ``shuffles`` evaluation only if its screen score is within ``screen_margin`` of the best's at the
    # same count (None, or >= shuffles: no screening, as in sessions stored before screening existed)
    screen_shuffles: int | None = 10
    screen_margin: float = 1.0  # score points (curve score or point objective) below the best's screen score
    objective: str = CURVE  # the whole beta curve; or a mean point: accuracy, or acc - gamma * ktokens
    gamma: float = 0.01  # accuracy points per 1000 tokens, for "penalised"
    rounds: int = 5
    budget_usd: float | None = None
    budget_seconds: float | None = None
    retries: int = 2  # extra attempts after an invalid candidate, each shown the error
    critic: bool = True
    prompt_budget: int = 6000  # tokens
    top_k: int = 3  # candidates shown in a prompt
    temperature: float = 0.7
    max_tokens: int = 4096  # completion tokens per request
    request_timeout: float = 600.0
    seed: int = 0  # the offline sampler's seed
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.name):
            raise ConfigError(f"session name {self.name!r}: use letters, digits, '_', '-', '.' (max 64)")
        if not self.search:
            raise ConfigError("a session needs at least one search dataset")
        leaked = sorted(set(self.search) & set(self.heldout))
        if leaked:
            raise ConfigError(f"{', '.join(leaked)} cannot be both a search and a held-out dataset")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if not self.betas or any(not 0 <= b <= 1 for b in self.betas):
            raise ConfigError("betas must be a non-empty list of values in [0, 1]")
        if self.rounds < 0 or self.retries < 0 or self.shuffles < 1 or self.top_k < 1:
            raise ConfigError("rounds and retries must be >= 0, shuffles and top_k >= 1")
        if (self.screen_shuffles is not None and self.screen_shuffles < 1) or self.screen_margin < 0:
            raise ConfigError("screen shuffles must be >= 1 (or none: no screening) and the screen margin >= 0")

    @property
    def offline(self) -> bool:
        return self.proposer == OFFLINE

    @property
    def screens(self) -> bool:
        """Whether LLM-written candidates are screened at ``screen_shuffles`` before the full evaluation (the
        offline proposer's family members are evaluated in seconds and never are: docs/discovery.md)."""
        return not self.offline and self.screen_shuffles is not None and self.screen_shuffles < self.shuffles

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SessionConfig:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data.setdefault("screen_shuffles", None)  # stored before screening existed: evaluate as it did then
        for key in ("search", "heldout", "seeds", "betas"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)

    def extended(self, rounds: int | None = None, budget_usd: float | None = None,
                 budget_seconds: float | None = None) -> SessionConfig:
        """The same session with new limits (resuming with more rounds, dollars or time)."""
        changes = {k: v for k, v in (("rounds", rounds), ("budget_usd", budget_usd),
                                     ("budget_seconds", budget_seconds)) if v is not None}
        return replace(self, **changes)
