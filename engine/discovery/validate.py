"""The gate a proposed controller passes before its sweep: it parses, defines one controller class,
runs smoke episodes in the sandbox at beta 0 and 1, returns answers, and beta changes what it does.

The error text goes back to the proposer for a retry, so it says what to fix in one or two lines
(plus the user's own traceback lines).
"""

from __future__ import annotations

import ast
import threading
from dataclasses import dataclass, replace

from engine.controllers.loader import ControllerError
from engine.dataset import Dataset
from engine.evaluate import ControllerSpec, Outcomes, SandboxOptions, run_episodes

SMOKE_QUESTIONS = 3
SMOKE_SHUFFLES = 2
BASE_CLASSES = {"LLMDesignedMethod", "Controller"}


@dataclass(frozen=True)
class Verdict:
    class_name: str | None
    error: str | None

    @property
    def valid(self) -> bool:
        return self.error is None


def controller_class(code: str) -> tuple[str | None, str | None]:
    """(class name, error) from the source alone: it must parse and define one class with ``solve``."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return None, f"line {exc.lineno}: SyntaxError: {exc.msg}"
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)
               and any(isinstance(f, ast.FunctionDef) and f.name == "solve" for f in n.body)]
    based = [c for c in classes if any(_base_name(b) in BASE_CLASSES for b in c.bases)]
    chosen = based or classes
    if len(chosen) != 1:
        names = ", ".join(c.name for c in chosen) or "none"
        return None, f"define exactly one class with a solve(self, question) method subclassing LLMDesignedMethod " \
                     f"(found: {names})"
    return chosen[0].name, None


def _base_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def smoke_dataset(dataset: Dataset) -> Dataset:
    """The first few questions of a search dataset."""
    return replace(dataset, name=f"{dataset.name}[smoke]", questions=dataset.questions[:SMOKE_QUESTIONS])


def validate(code: str, smoke: Dataset, *, limits: object, cancel: threading.Event | None = None,
             hide: tuple = ()) -> Verdict:
    """Check ``code`` as described in the module docstring; never runs it outside the sandbox."""
    class_name, error = controller_class(code)
    if error:
        return Verdict(None, error)
    runs = {}
    sandbox = SandboxOptions(limits, cancel, hide)
    for beta in (0.0, 1.0):
        spec = ControllerSpec.from_source(code, class_name, {"beta": beta}, filename="candidate.py")
        try:
            runs[beta] = run_episodes(smoke, spec, shuffles=SMOKE_SHUFFLES, sandbox=sandbox)
        except ControllerError as exc:
            return Verdict(class_name, f"at beta {beta:g}: {exc}")
    if all(a is None for row in runs[1.0].answers for a in row):
        return Verdict(class_name, "solve() returned None on every smoke episode: it must return an answer string")
    if _same(runs[0.0], runs[1.0]):
        return Verdict(class_name, "beta 0 and beta 1 behave identically on every smoke episode: beta must set the "
                                   "knobs (cheap at 0, thorough at 1)")
    return Verdict(class_name, None)


def _same(a: Outcomes, b: Outcomes) -> bool:
    return a.answers == b.answers and (a.total_tokens == b.total_tokens).all()
