"""The controller lab's logic (``/lab``): what can be picked, starting code, the progressive plan for user
code, the curves of the built-in baselines, the per-question table and where an error points.

No Streamlit here: ``views/lab.py`` only draws what these functions return. User code is never executed
in this process: it is read with ``ast`` (to name its class) and evaluated with ``trusted=False``.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from engine import controllers, saved
from engine.controllers import BUDGET_KNOB, BUILTINS, PRESETS
from engine.dataset import Dataset
from engine.evaluate import ControllerSpec, EvalResult, Progress, evaluate, result_key, sweep
from engine.replay import COMPAT
from engine.store import Store

NEW = "new"  # the picker's entry for code written in the lab (not a link target: links carry ids, never code)
EDITOR_FILE = "controller.py"  # the file name user code gets in tracebacks
FIRST_ESTIMATE_SHUFFLES = 5  # a first estimate within about a second, before the full shuffle count
SWEEP_BETAS = (0.0, 0.25, 0.5, 0.75, 1.0)  # a user controller's scaling curve: few points, each sandboxed
BASELINES = ("sc", "asc", "esc", "parallel_probe", "cmc")  # the curves every result is drawn over
EPISODE_PAGE = "/episode"
QUESTION_CHARS = 90  # question text shown per table row

TEMPLATE = '''"""My controller, in the reference API: a class with solve(question) that returns an answer.

question.probe_new()                  -> (answer, index, finished)  open a branch: its first interval
question.probe_more(index)            -> (answer, finished)         advance a branch by one interval
question.get_new_branch_final_answer() -> answer                    read a new branch to its end
Each raises IndexError or ValueError when the pool of branches runs out. Every call costs tokens.
self.config["beta"] in [0, 1] is the lab's slider: use it to trade accuracy for tokens.
"""

from collections import Counter


class LeadMargin(LLMDesignedMethod):
    """Read whole branches until the leading answer is `lead` votes ahead of the runner-up."""

    def solve(self, question):
        beta = float(self.config.get("beta", 0.5))
        max_branches = 2 + round(30 * beta)
        lead = 1 + round(4 * beta)
        answers = []
        for _ in range(max_branches):
            try:
                answers.append(question.get_new_branch_final_answer())
            except (IndexError, ValueError):
                break
            counts = Counter(answers).most_common(2)
            runner_up = counts[1][1] if len(counts) > 1 else 0
            if counts[0][1] - runner_up >= lead:
                break
        return Counter(answers).most_common(1)[0][0] if answers else None
'''


def starters() -> dict[str, str]:
    """Code a new controller can start from: the template, or any built-in's own module source."""
    return {"template": TEMPLATE, **{name: builtin_source(name) for name in sorted(BUILTINS)}}


def builtin_source(name: str) -> str:
    """A built-in's module source; it runs unmodified as user code (sandboxed), with the same figures."""
    return inspect.getsource(sys.modules[BUILTINS[name].__module__])


def controller_refs(versions: Sequence[saved.Version]) -> list[str]:
    """Every value the controller picker (and the ``controller`` query key) accepts, in picker order."""
    return [*sorted(BUILTINS), *PRESETS, *(f"{saved.PREFIX}{v.controller.id}" for v in versions), NEW]


def ref_label(ref: str, versions: Sequence[saved.Version]) -> str:
    """What the picker shows for a reference: presets with their settings, saved ones by name and version."""
    if ref in PRESETS:
        base, config = PRESETS[ref]
        return f"{ref} ({base}: " + ", ".join(f"{k}={v}" for k, v in config.items()) + ")"
    if ref.startswith(saved.PREFIX):
        found = [v for v in versions if f"{saved.PREFIX}{v.controller.id}" == ref]
        return f"saved: {found[0].label}" if found else ref
    if ref == NEW:
        return "new (write your own)"
    return ref


def kind_of(ref: str) -> str:
    """'builtin', 'preset', 'saved' or 'new'."""
    if ref in BUILTINS:
        return "builtin"
    if ref in PRESETS:
        return "preset"
    return "new" if ref == NEW else "saved"


def budget_knob(ref: str) -> str | None:
    """The knob a handcrafted baseline's budget sets (built-ins only: a preset fixes its knobs)."""
    return BUDGET_KNOB.get(ref) if kind_of(ref) == "builtin" else None


def lab_config(ref: str, beta: float, budget: int) -> dict[str, Any]:
    """The config the lab's sliders give: the budget knob for baselines, beta otherwise, nothing for presets."""
    kind = kind_of(ref)
    if kind == "preset":
        return {}
    knob = budget_knob(ref)
    return {knob: int(budget)} if knob else {"beta": round(float(beta), 4)}  # 0.55, not 0.5500000000000002


def user_spec(source: str, config: Mapping[str, Any], *, class_name: str | None = None,
              filename: str = EDITOR_FILE) -> ControllerSpec:
    """User code (saved or typed) with the lab's config; it only ever runs sandboxed."""
    return ControllerSpec.from_source(source, class_name, config, filename)


def class_name(source: str) -> str:
    """The controller class of ``source``, read with ``ast`` (never executed here), for saving it.

    The one top-level class deriving from ``LLMDesignedMethod`` or ``Controller``, else the only class."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"line {exc.lineno}: SyntaxError: {exc.msg}") from None
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    bases = {"LLMDesignedMethod", "Controller"}
    derived = [c for c in classes if any(_base_name(b) in bases for b in c.bases)]
    found = derived or classes
    if len(found) != 1:
        names = ", ".join(c.name for c in found) or "none"
        raise ValueError(f"cannot tell which class is the controller (candidates: {names}); keep one")
    return found[0].name


def _base_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def progressive_plan(shuffles: int, first: int = FIRST_ESTIMATE_SHUFFLES) -> list[int]:
    """Shuffle counts to evaluate in turn: a quick first estimate, then the full count."""
    return [first, shuffles] if shuffles > first else [shuffles]


def cached_result(store: Store, dataset: Dataset, spec: ControllerSpec, shuffles: int, mode: str) -> EvalResult | None:
    """The stored result of exactly this evaluation, or None (nothing runs)."""
    row = store.get_result(result_key(dataset, spec, shuffles, mode))
    return EvalResult.from_dict({**row["metrics"], "cached": True}) if row is not None else None


def progressive(dataset: Dataset, spec: ControllerSpec, *, shuffles: int, mode: str = COMPAT,
                store: Store | None = None, limits: Any = None, cancel: threading.Event | None = None,
                progress: Progress | None = None) -> Iterator[EvalResult]:
    """Yield a first estimate from a few shuffles, then the full result (only the full one if cached).

    Sandboxed when ``spec`` is user code; setting ``cancel`` stops it (``SandboxError`` 'cancelled')."""
    plan = progressive_plan(shuffles)
    if store is not None and cached_result(store, dataset, spec, shuffles, mode) is not None:
        plan = [shuffles]
    total = sum(plan)
    done = 0
    for n in plan:
        stage = "first estimate" if n < shuffles else "full result"
        report = None if progress is None else _stage_progress(progress, done, n, total, f"{stage}, {n} shuffles")
        yield evaluate(dataset, spec, shuffles=n, mode=mode, store=store, trusted=False, limits=limits,
                       cancel=cancel, progress=report)
        done += n


def each_point(dataset: Dataset, specs: Sequence[ControllerSpec], *, shuffles: int, mode: str = COMPAT,
               store: Store | None = None, limits: Any = None, cancel: threading.Event | None = None,
               progress: Progress | None = None) -> Iterator[EvalResult]:
    """Yield the result of each spec in turn (a user controller's sweep: each point sandboxed and cached)."""
    for i, spec in enumerate(specs):
        report = None if progress is None else _stage_progress(progress, i, 1, len(specs), point_label(spec.config))
        yield evaluate(dataset, spec, shuffles=shuffles, mode=mode, store=store, trusted=False, limits=limits,
                       cancel=cancel, progress=report)


def _stage_progress(progress: Progress, before: int, size: int, total: int, label: str) -> Progress:
    """Progress of one stage (``size`` shuffles after ``before``) as thousandths of the whole plan."""
    def report(done: int, of: int, _: str) -> None:
        share = done / of if of else 1.0
        progress(round(1000 * (before + share * size)), 1000 * total, f"{label}: {done}/{of} episodes")
    return report


def sweep_specs(spec: ControllerSpec, betas: Sequence[float] = SWEEP_BETAS) -> list[ControllerSpec]:
    """A user controller's scaling curve: its spec at each beta."""
    return [replace(spec, config={**spec.config, "beta": b}) for b in betas]


def own_sweep(spec: ControllerSpec) -> list[ControllerSpec]:
    """The points of this controller's own scaling curve: a built-in's budget or beta sweep, else betas."""
    if spec.is_builtin:
        return [ControllerSpec.builtin(spec.name, c) for c in controllers.sweep_configs(spec.name)]
    return sweep_specs(spec)


def baseline_specs() -> dict[str, list[ControllerSpec]]:
    """SC, ASC, ESC, Parallel-Probe by their budget sweeps (reference knobs) and CMC by beta."""
    return {name: [ControllerSpec.builtin(name, c) for c in controllers.sweep_configs(name)] for name in BASELINES}


def baseline_curves(store: Store | None, dataset: Dataset, *, shuffles: int, mode: str = COMPAT,
                    progress: Progress | None = None) -> dict[str, list[EvalResult]]:
    """Every baseline's curve on ``dataset`` (one cache query; compiled kernels for what is missing).

    Kept in memory by dataset content, shuffles and mode (they never change), so a slider move in the
    lab costs no store round trip for them."""
    kept = cached_curves(dataset, shuffles=shuffles, mode=mode)
    if kept is not None:
        return kept
    specs = baseline_specs()
    flat = [s for name in BASELINES for s in specs[name]]
    results = iter(sweep([dataset], flat, shuffles=shuffles, mode=mode, store=store, progress=progress))
    curves = {name: [next(results) for _ in specs[name]] for name in BASELINES}
    if dataset.content_hash:
        while len(_CURVES) >= CURVES_KEPT:
            _CURVES.pop(next(iter(_CURVES)))
        _CURVES[(dataset.content_hash, shuffles, mode)] = curves
    return curves


def cached_curves(dataset: Dataset, *, shuffles: int, mode: str = COMPAT) -> dict[str, list[EvalResult]] | None:
    """The baselines' curves if this process already holds them (nothing runs), else None."""
    return _CURVES.get((dataset.content_hash, shuffles, mode)) if dataset.content_hash else None


CURVES_KEPT = 64  # baseline curve sets kept in memory (each is 35 small results)
_CURVES: dict[tuple[str, int, str], dict[str, list[EvalResult]]] = {}


def cached_points(store: Store, dataset: Dataset, specs: Sequence[ControllerSpec], shuffles: int,
                  mode: str) -> list[EvalResult]:
    """The points of a curve already in the store, in sweep order (user code is never run for this)."""
    keys = [result_key(dataset, s, shuffles, mode) for s in specs]
    found = store.get_results(keys)
    return [EvalResult.from_dict({**found[k]["metrics"], "cached": True}) for k in keys if k in found]


def point_label(config: Mapping[str, Any]) -> str:
    """'beta=0.5' or 'k=8': the knob a curve's point differs by, for hovers and tables."""
    for knob in ("beta", *BUDGET_KNOB.values()):
        if knob in config:
            return f"{knob}={config[knob]}"
    return ", ".join(f"{k}={v}" for k, v in config.items()) or "preset"


@dataclass(frozen=True)
class QuestionRow:
    """One row of the per-question table."""

    question: int
    accuracy: float
    avg_tokens: float
    gold: str
    text: str
    episode: str | None


def question_rows(dataset: Dataset, result: EvalResult, *, controller: str | None, seed: int = 0) -> list[QuestionRow]:
    """Accuracy, tokens and gold answer per question; ``controller`` (a link id) adds episode links."""
    link = None
    if controller is not None:
        def link(q: int) -> str:
            return episode_link(dataset.name, controller, q, seed, result.config, result.mode)
    return [QuestionRow(i, acc, tokens, str(q.gold), _short(q.text), link(i) if link else None)
            for i, (q, acc, tokens) in enumerate(zip(dataset.questions, result.per_question_accuracy,
                                                     result.per_question_tokens, strict=True))]


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= QUESTION_CHARS else text[: QUESTION_CHARS - 1] + "…"


def episode_link(dataset: str, controller: str, question: int, seed: int, config: Mapping[str, Any],
                 mode: str = COMPAT) -> str:
    """The episode viewer's URL for one episode, with the same query keys as every page."""
    params: dict[str, Any] = {"dataset": dataset, "controller": controller, "question": question, "seed": seed}
    if "beta" in config:
        params["beta"] = config["beta"]
    knob = BUDGET_KNOB.get(controller)
    if knob in config:
        params["budget"] = config[knob]
    if mode != COMPAT:
        params["mode"] = mode
    return f"{EPISODE_PAGE}?{urlencode(params)}"


def link_ref(ref: str) -> str | None:
    """The id a link may carry for this pick: built-ins, presets and saved ids; None for unsaved code."""
    return None if ref == NEW else ref


_LINE = re.compile(r'File "(?P<file>[^"]+)", line (?P<a>\d+)|^(?P<file2>[^\s:]+):(?P<b>\d+): ', re.MULTILINE)


def error_line(message: str, filename: str = EDITOR_FILE) -> int | None:
    """The line of the user's file an error message points at (its innermost frame), if any."""
    lines = [int(m["a"] or m["b"]) for m in _LINE.finditer(message) if (m["file"] or m["file2"]) == filename]
    return lines[-1] if lines else None


def excerpt(source: str, line: int, context: int = 2) -> str:
    """The lines around ``line``, numbered, with the failing one marked: what the error points at."""
    lines = source.splitlines()
    lo, hi = max(1, line - context), min(len(lines), line + context)
    return "\n".join(f"{'>' if n == line else ' '} {n:4} | {lines[n - 1]}" for n in range(lo, hi + 1))


def knob_table(spec: ControllerSpec) -> list[tuple[str, str]]:
    """(knob, value) a built-in runs with: its schedule at beta, explicit knobs winning."""
    return [(k, str(v)) for k, v in spec.build().knobs.items()]
