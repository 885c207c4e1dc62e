"""Built-in controllers by name, their reference presets and their budget/beta sweeps."""

from __future__ import annotations

from typing import Any

from engine.controllers.asc import ASC
from engine.controllers.base import Controller, LLMDesignedMethod
from engine.controllers.cmc import CMC
from engine.controllers.esc import ESC
from engine.controllers.parallel_probe import REFERENCE_KNOBS, ParallelProbe
from engine.controllers.sc import SC

BUILTINS: dict[str, type[Controller]] = {c.NAME: c for c in (SC, ASC, ESC, ParallelProbe, CMC)}

# The knob each handcrafted baseline's budget sweep varies; beta-controllers sweep beta.
BUDGET_KNOB = {"sc": "k", "asc": "max_samples", "esc": "max_samples", "parallel_probe": "num_chains"}
BUDGETS = (1, 4, 8, 16, 32, 64)
BETAS = tuple(round(0.1 * i, 1) for i in range(11))

# The settings of controllers.md's reference table, by name: (controller, config).
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "sc64": ("sc", {"k": 64}),
    "asc64": ("asc", {"max_samples": 64, "threshold": 0.95}),
    "esc64": ("esc", {"max_samples": 64, "window_size": 8}),
    "parallel_probe64": ("parallel_probe", {"num_chains": 64, **REFERENCE_KNOBS}),
    "cmc_beta0.5": ("cmc", {"beta": 0.5}),
    "cmc_beta1.0": ("cmc", {"beta": 1.0}),
}

__all__ = [
    "BETAS", "BUDGETS", "BUDGET_KNOB", "BUILTINS", "PRESETS", "Controller", "LLMDesignedMethod",
    "resolve", "sweep_configs",
]


def resolve(name: str, config: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """A built-in name or preset name plus overrides -> (builtin name, full config)."""
    if name in PRESETS:
        base, preset = PRESETS[name]
        return base, {**preset, **(config or {})}
    if name in BUILTINS:
        return name, dict(config or {})
    known = sorted(BUILTINS) + sorted(PRESETS)
    raise KeyError(f"unknown controller {name!r}; built-ins and presets: {', '.join(known)}")


def sweep_configs(name: str) -> list[dict[str, Any]]:
    """The default sweep of a built-in: its budget knob over BUDGETS, or beta over BETAS."""
    base, config = resolve(name)
    knob = BUDGET_KNOB.get(base)
    if knob is None:
        return [{**config, "beta": b} for b in BETAS]
    return [{**config, knob: k} for k in BUDGETS]
