"""The data types every evaluation path shares: what to run, what came out, and the trace event shape.

They sit below ``engine.evaluate`` (which picks the compiled kernel, plain Python or the sandbox) so
that ``engine.controllers.kernels`` and ``engine.sandbox`` import them without importing the
evaluator: the layers read top-down, store -> dataset -> replay/controllers -> spec -> kernels and
sandbox -> evaluate -> cli/app.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import controllers
from engine.controllers import loader
from engine.controllers.loader import ControllerError
from engine.replay import Episode, shuffled_order

ENGINE_VERSION = "1"  # bump when episode rules or metrics change, to invalidate cached results

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ControllerSpec:
    """Which controller to run: a built-in (or preset) by name, or user source code."""

    name: str
    config: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None
    class_name: str | None = None
    filename: str = "<controller>"

    @classmethod
    def builtin(cls, name: str, config: Mapping[str, Any] | None = None) -> ControllerSpec:
        base, full = controllers.resolve(name, dict(config or {}))
        return cls(name=base, config=full)

    @classmethod
    def from_source(
        cls, source: str, class_name: str | None = None, config: Mapping[str, Any] | None = None,
        filename: str = "<controller>",
    ) -> ControllerSpec:
        name = class_name or "controller"
        return cls(name=name, config=dict(config or {}), source=source, class_name=class_name,
                   filename=filename)

    @property
    def is_builtin(self) -> bool:
        return self.source is None

    def code_hash(self) -> str:
        """Identity of the code: user source, or the built-in's name and engine version."""
        text = self.source if self.source is not None else f"builtin:{self.name}:{ENGINE_VERSION}"
        return loader.source_hash(text)

    def build(self) -> Any:
        """Instantiate in this process (trusted code only)."""
        if self.is_builtin:
            return controllers.BUILTINS[self.name](dict(self.config))
        cls = loader.load_class(self.source, self.class_name, self.filename)
        try:
            return cls(config=dict(self.config)) if self.config else cls()
        except Exception as exc:
            raise ControllerError(
                f"constructing {cls.__name__} failed:\n{loader.user_traceback(exc, self.filename)}"
            ) from None


@dataclass
class Outcomes:
    """Raw per-episode outcomes, indexed [seed, question]."""

    answers: list[list[str | None]]
    total_tokens: np.ndarray
    sequential_tokens: np.ndarray
    n_actions: np.ndarray
    traces: dict[tuple[int, int], list[dict]] = field(default_factory=dict)
    actions: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # (seed, question): traces or on request


def action_events(rq: Any, actions: list[int], seed: int) -> list[dict]:
    """Trace events derived from an action log by replaying it (same shape as the reference's).

    One event per action: ``{"event": "branch"|"read"|"probe", "input": {...},
    "output": {"answer", "branch", "finished"}, "state": {"total_tokens"}}``.
    """
    ep = Episode(rq, shuffled_order(seed, rq.n_branches))
    events = []
    for a in actions:
        if a == -1:
            answer, index, finished = ep.probe_new()
            event, inp = "branch", {}
        elif a == -2:
            answer, index, finished = ep.get_new_branch_final_answer(), ep.n_opened - 1, True
            event, inp = "read", {}
        else:
            (answer, finished), index = ep.probe_more(a), a
            event, inp = "probe", {"branch": a}
        events.append({"event": event, "input": inp,
                       "output": {"answer": answer, "branch": index, "finished": finished},
                       "state": {"total_tokens": ep.total_tokens}})
    return events
