"""The parameterised controller family the offline proposer searches: CMC's knobs as beta-maps.

Each knob gets its value at beta 0 (``v0``), at beta 1 (``v1``) and a curve shape ``p``:
``knob(beta) = v0 + (v1 - v0) * beta**p`` (rounded for integer knobs, to 4 decimals for the
others, clipped to the knob's range). Every knob is therefore monotonic in beta, as the
one-beta requirement asks, and the family's members run in CMC's compiled kernel: a member is
just CMC with every knob set explicitly in its config (explicit config wins over the schedule).
The preset ``cmc`` reproduces CMC's own schedule exactly.
"""

from __future__ import annotations

from typing import Any

from engine.evaluate import ControllerSpec

BASE = "cmc"
SHAPES = (0.5, 1.0, 2.0)  # concave, linear, convex

# knob: (kind, low, high) — the search range of both v0 and v1.
KNOBS: dict[str, tuple[type, float, float]] = {
    "n_init": (int, 1, 16),
    "max_branch_use": (int, 2, 64),
    "warm_up": (int, 0, 20),
    "abandon_patience": (int, 1, 20),
    "T_ema": (int, 2, 12),
    "ema_alpha": (float, 0.05, 0.95),
    "conf_thresh": (float, 0.5, 0.999),
    "delta_slack": (float, 0.0, 0.2),
    "burst_aligned": (int, 1, 8),
    "widen_burst": (int, 1, 8),
    "trend_thresh": (float, 0.0, 0.2),
    "min_complete": (int, 1, 12),
}

# CMC's schedule (controllers.md) as (v0, v1) pairs, all linear.
CMC_ENDS: dict[str, tuple[float, float]] = {
    "n_init": (2, 8), "max_branch_use": (4, 64), "warm_up": (2, 10), "abandon_patience": (3, 12),
    "T_ema": (2, 8), "ema_alpha": (0.70, 0.30), "conf_thresh": (0.85, 0.97), "delta_slack": (0.04, 0.01),
    "burst_aligned": (1, 3), "widen_burst": (1, 4), "trend_thresh": (0.04, 0.01), "min_complete": (2, 5),
}

Params = dict[str, float]  # flat: "<knob>.v0", "<knob>.v1", "<knob>.p"


def preset(name: str) -> Params:
    """A named member of the family (``cmc``: CMC itself)."""
    if name != "cmc":
        raise KeyError(f"unknown family preset {name!r}; presets: cmc")
    return {f"{k}.{part}": v for k, (v0, v1) in CMC_ENDS.items() for part, v in (("v0", v0), ("v1", v1), ("p", 1.0))}


# +1: the knob grows from beta 0 to beta 1 in CMC (more thorough, dearer); -1: it shrinks.
THOROUGH = {k: 1 if v1 > v0 else -1 for k, (v0, v1) in CMC_ENDS.items()}


def curve_ranges() -> dict[str, tuple[float, float]]:
    """Search ranges that make every member a rising curve: each knob's beta-0 end lies on the cheap side
    of CMC's beta-0.5 value and its beta-1 end on the thorough side (``THOROUGH``), so beta 0 is the
    cheapest setting and beta 1 the most thorough, whatever values are drawn."""
    mid = knobs_at(preset(BASE), 0.5)
    out = {}
    for knob, (_, low, high) in KNOBS.items():
        cheap, thorough = ((low, mid[knob]), (mid[knob], high)) if THOROUGH[knob] > 0 else \
            ((mid[knob], high), (low, mid[knob]))
        out[f"{knob}.v0"], out[f"{knob}.v1"] = cheap, thorough
    return out


def knobs_at(params: Params, beta: float) -> dict[str, Any]:
    """Every knob's value at ``beta`` for the family member ``params``."""
    b = min(1.0, max(0.0, float(beta)))
    out: dict[str, Any] = {}
    for knob, (kind, low, high) in KNOBS.items():
        v0, v1, p = params[f"{knob}.v0"], params[f"{knob}.v1"], params[f"{knob}.p"]
        raw = v0 + (v1 - v0) * b**p
        value = round(raw) if kind is int else round(raw, 4)
        out[knob] = min(high, max(low, value))
    return out


def spec(params: Params, beta: float) -> ControllerSpec:
    """The built-in controller spec of a member at ``beta`` (evaluated by the compiled kernel)."""
    return ControllerSpec.builtin(BASE, {"beta": float(beta), **knobs_at(params, beta)})


def describe(params: Params) -> str:
    """One line per knob: ``name: v0 -> v1 (shape p)``."""
    lines = []
    for knob, (kind, _, _) in KNOBS.items():
        v0, v1, p = params[f"{knob}.v0"], params[f"{knob}.v1"], params[f"{knob}.p"]
        fmt = (lambda x: str(round(x))) if kind is int else (lambda x: f"{x:.4g}")
        lines.append(f"{knob}: {fmt(v0)} -> {fmt(v1)} (shape {p:g})")
    return "\n".join(lines)
