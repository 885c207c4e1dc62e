"""Evaluate a controller on a dataset: episodes over shuffles, metrics, CIs, cache.

One evaluation = every question x every shuffle seed. Built-in controllers run in a
compiled batch kernel (same numbers as their Python twins, which the tests check);
everything else runs episode by episode through ``engine.replay.Episode``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine import controllers
from engine.controllers import loader
from engine.controllers.loader import ControllerError
from engine.dataset import Dataset
from engine.replay import COMPAT, MODES, Episode, InvalidAction, replay_questions, shuffled_order
from engine.spec import ENGINE_VERSION, ControllerSpec, Outcomes, Progress, action_events

__all__ = ["ENGINE_VERSION", "ControllerSpec", "EvalResult", "Outcomes", "Progress", "SandboxOptions", "action_events",
           "evaluate", "evaluate_pairs", "run_episodes", "run_python", "summarize", "sweep"]

BOOTSTRAP_ITERATIONS = 1000
SWEEP_WRITE_BATCH = 16  # results a sweep computes before it writes them to the store


@dataclass(frozen=True)
class SandboxOptions:
    """How untrusted code runs: ``engine.sandbox.Limits``, a cancel event, extra paths to hide."""

    limits: Any = None
    cancel: threading.Event | None = None
    hide: tuple[Any, ...] = ()

    @classmethod
    def hiding_store(cls, limits: Any, cancel: threading.Event | None, store: Any) -> SandboxOptions:
        """Options that also hide ``store``'s database file from controllers (wherever it lies)."""
        return cls(limits, cancel, (store.path,) if store is not None else ())


@dataclass
class EvalResult:
    """Metrics of one evaluation, as plain data (JSON-ready via ``to_dict``)."""

    dataset: str
    controller: str
    config: dict[str, Any]
    shuffles: int
    mode: str
    accuracy: float
    avg_total_tokens: float
    avg_sequential_tokens: float
    ci95: tuple[float, float]
    seconds: float
    per_question_accuracy: list[float]
    per_question_tokens: list[float]
    avg_actions: float
    cached: bool = False
    startup_seconds: float = 0.0  # loading compiled code before the replay (not part of ``seconds``)
    key: str = ""
    # Per-episode records (seed, question, answer, correct, tokens, actions): only when asked for.
    episodes: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci95"] = list(self.ci95)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvalResult:
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        fields["ci95"] = tuple(fields["ci95"])
        return cls(**fields)


def result_key(dataset: Dataset, spec: ControllerSpec, shuffles: int, mode: str, strict: bool = False) -> str:
    """The cache key of an evaluation. ``strict``: untrusted code judged by the strict judge, whose guarantee
    is stronger than the default sampled judge's, so its results are kept apart (a strict request is never
    served a sampled result; keys of every other evaluation are unchanged)."""
    parts = [dataset.content_hash or dataset.name, spec.code_hash(), spec.class_name,
             dict(spec.config), shuffles, mode, ENGINE_VERSION]
    payload = json.dumps([*parts, "strict judge"] if strict else parts, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def evaluate(
    dataset: Dataset,
    spec: ControllerSpec,
    *,
    shuffles: int = 100,
    mode: str = COMPAT,
    store: Any = None,
    progress: Progress | None = None,
    traces: bool = False,
    trusted: bool = False,
    episodes: bool = False,
    limits: Any = None,
    cancel: threading.Event | None = None,
) -> EvalResult:
    """Replay ``spec`` on ``dataset`` over ``shuffles`` seeds; served from ``store`` when cached.

    User code (``spec.source``) runs in the sandbox (``limits``: ``engine.sandbox.Limits``;
    setting ``cancel`` stops it) unless ``trusted``. ``episodes`` adds per-episode records
    to the result; ``traces`` also stores execution traces.
    """
    key = result_key(dataset, spec, shuffles, mode, _strict(spec, limits, trusted))
    if store is not None and not traces and not episodes:
        cached = store.get_result(key)
        if cached is not None:
            return _from_cache(cached, key)
    sandbox = SandboxOptions.hiding_store(limits, cancel, store)
    result, outcomes = _compute(dataset, spec, key, shuffles=shuffles, mode=mode, progress=progress,
                                traces=traces, trusted=trusted, sandbox=sandbox)
    if episodes:
        result.episodes = episode_records(dataset, outcomes)
    if store is not None:
        store.put_result(key, _result_row(dataset, spec, result))
        if traces:
            store.put_traces(key, [(q, s, ev) for (s, q), ev in outcomes.traces.items()])
    return result


def sweep(
    datasets: list[Dataset],
    specs: list[ControllerSpec],
    *,
    shuffles: int = 100,
    mode: str = COMPAT,
    store: Any = None,
    progress: Progress | None = None,
    trusted: bool = False,
    limits: Any = None,
    cancel: threading.Event | None = None,
) -> list[EvalResult]:
    """Evaluate every (dataset, spec) pair, datasets outermost (``evaluate_pairs`` of their product)."""
    return evaluate_pairs([(ds, spec) for ds in datasets for spec in specs], shuffles=shuffles, mode=mode,
                          store=store, progress=progress, trusted=trusted, limits=limits, cancel=cancel)


def evaluate_pairs(
    pairs: list[tuple[Dataset, ControllerSpec]],
    *,
    shuffles: int = 100,
    mode: str = COMPAT,
    store: Any = None,
    progress: Progress | None = None,
    trusted: bool = False,
    limits: Any = None,
    cancel: threading.Event | None = None,
    on_result: Callable[[int, EvalResult], None] | None = None,
) -> list[EvalResult]:
    """``evaluate`` for each (dataset, spec) pair, with the same cache keys and figures, faster.

    The cache is read in one query and new results are written in batches, so a sweep served from
    the cache costs one round trip and an interrupted sweep keeps most of what it computed. Sandboxed
    pairs that share their code (same source, class and file name) run as one batch
    (``engine.sandbox.run_sandboxed_batch``: one pool loads the code once, one audit covers them all),
    so their results all arrive when the batch has passed its audit. ``on_result(i, result)`` is called
    for each pair once its result is in the store (or known, without a store), e.g. to record progress.
    """
    keys = [result_key(ds, spec, shuffles, mode, _strict(spec, limits, trusted)) for ds, spec in pairs]
    cached = store.get_results(keys) if store is not None else {}
    sandbox = SandboxOptions.hiding_store(limits, cancel, store)
    batched = _run_batches(pairs, keys, cached, shuffles=shuffles, mode=mode, progress=progress,
                           trusted=trusted, sandbox=sandbox)
    results, pending, ready = [], {}, []
    for i, ((ds, spec), key) in enumerate(zip(pairs, keys, strict=True)):
        if key in cached:
            results.append(_from_cache(cached[key], key))
        else:
            result = batched.get(i) or _compute(ds, spec, key, shuffles=shuffles, mode=mode, trusted=trusted,
                                                sandbox=sandbox)[0]
            results.append(result)
            if store is not None:
                pending[key] = _result_row(ds, spec, result)
        ready.append(i)
        if pending and (len(pending) >= SWEEP_WRITE_BATCH or i == len(pairs) - 1):
            store.put_results(pending)
            pending = {}
        if on_result and not pending:
            for j in ready:
                on_result(j, results[j])
            ready = []
        if progress:
            progress(i + 1, len(pairs), f"{ds.name} {spec.name} {dict(spec.config)}")
    return results


def _run_batches(
    pairs: list[tuple[Dataset, ControllerSpec]], keys: list[str], cached: Mapping[str, Any], *, shuffles: int,
    mode: str, progress: Progress | None, trusted: bool, sandbox: SandboxOptions,
) -> dict[int, EvalResult]:
    """Results of the uncached sandboxed pairs, by position: one sandbox batch per controller code."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, (_, spec) in enumerate(pairs):
        if keys[i] not in cached and _sandboxed(spec, trusted):
            groups.setdefault((spec.source, spec.class_name, spec.filename), []).append(i)
    if not groups:
        return {}
    from engine import sandbox as sandboxing

    results = {}
    for members in groups.values():
        start = time.perf_counter()
        outs = sandboxing.run_sandboxed_batch([pairs[i] for i in members], shuffles=shuffles, mode=mode,
                                              progress=progress, limits=sandbox.limits, cancel=sandbox.cancel,
                                              hide=sandbox.hide)
        seconds = (time.perf_counter() - start) / len(members)  # (the replay's share of each pair)
        for i, out in zip(members, outs, strict=True):
            ds, spec = pairs[i]
            results[i] = summarize(ds, spec, out, shuffles, mode, seconds)
            results[i].key = keys[i]
    return results


def _sandboxed(spec: ControllerSpec, trusted: bool) -> bool:
    """Whether ``spec`` runs in the sandbox: user code the caller did not mark as trusted."""
    return not spec.is_builtin and not trusted


def _strict(spec: ControllerSpec, limits: Any, trusted: bool) -> bool:
    """Whether ``spec`` runs sandboxed under the strict judge (``Limits.judge``)."""
    return _sandboxed(spec, trusted) and getattr(limits, "judge", None) == "strict"


def _compute(
    dataset: Dataset, spec: ControllerSpec, key: str, *, shuffles: int, mode: str,
    progress: Progress | None = None, traces: bool = False, trusted: bool = False,
    sandbox: SandboxOptions | None = None,
) -> tuple[EvalResult, Outcomes]:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    startup = _load_kernel(spec, traces)
    start = time.perf_counter()
    outcomes = run_episodes(dataset, spec, shuffles=shuffles, mode=mode, progress=progress,
                            traces=traces, trusted=trusted, sandbox=sandbox)
    result = summarize(dataset, spec, outcomes, shuffles, mode, time.perf_counter() - start)
    result.key, result.startup_seconds = key, round(startup, 4)
    return result, outcomes


def _load_kernel(spec: ControllerSpec, traces: bool) -> float:
    """Seconds spent importing and loading the compiled kernel ``spec`` will run on (0 when loaded).

    Kept out of ``EvalResult.seconds``, which measures the replay alone.
    """
    if not spec.is_builtin or traces:
        return 0.0
    start = time.perf_counter()
    fresh = "engine.controllers.kernels" not in sys.modules
    from engine.controllers import kernels  # numba is slow to import: only when a kernel will run

    loaded = kernels.warm_up(spec.name, spec.build().knobs)
    return time.perf_counter() - start if fresh or loaded else 0.0


def _from_cache(row: Mapping[str, Any], key: str) -> EvalResult:
    return EvalResult.from_dict({**row["metrics"], "cached": True, "key": key})


def _result_row(dataset: Dataset, spec: ControllerSpec, result: EvalResult) -> dict[str, Any]:
    metrics = {k: v for k, v in result.to_dict().items() if k != "episodes"}
    return {
        "dataset": dataset.name, "dataset_hash": dataset.content_hash,
        "controller": spec.name, "controller_hash": spec.code_hash(),
        "config": dict(spec.config), "shuffles": result.shuffles, "mode": result.mode,
        "metrics": metrics,
    }


def run_episodes(
    dataset: Dataset, spec: ControllerSpec, *, shuffles: int, mode: str = COMPAT,
    progress: Progress | None = None, traces: bool = False, trusted: bool = False,
    sandbox: SandboxOptions | None = None,
) -> Outcomes:
    """All episodes of an evaluation, through the fastest path that gives exact numbers."""
    if spec.is_builtin and not traces:
        from engine.controllers import kernels  # compiled lazily: numba is slow to import

        fast = kernels.run(dataset, spec.name, controllers.BUILTINS[spec.name](dict(spec.config)).knobs,
                           shuffles, mode)
        if fast is not None:
            if progress:
                progress(shuffles, shuffles, "replayed (compiled kernel)")
            return fast
    if _sandboxed(spec, trusted):
        from engine import sandbox as sandboxing

        opts = sandbox or SandboxOptions()
        return sandboxing.run_sandboxed(dataset, spec, shuffles=shuffles, mode=mode, progress=progress,
                                        traces=traces, limits=opts.limits, cancel=opts.cancel, hide=opts.hide)
    return run_python(dataset, spec.build(), shuffles=shuffles, mode=mode, progress=progress,
                      traces=traces, filename=spec.filename)


def run_python(
    dataset: Dataset, controller: Any, *, shuffles: int, mode: str = COMPAT,
    progress: Progress | None = None, traces: bool = False, filename: str = "<controller>",
    seeds: range | None = None,
) -> Outcomes:
    """The straightforward path: one ``Episode`` per (seed, question), in this process."""
    questions = replay_questions(dataset)
    seeds = seeds if seeds is not None else range(shuffles)
    n_s, n_q = len(seeds), len(questions)
    answers = [[None] * n_q for _ in range(n_s)]
    total = np.zeros((n_s, n_q), dtype=np.int64)
    seq = np.zeros((n_s, n_q), dtype=np.int64)
    n_act = np.zeros((n_s, n_q), dtype=np.int64)
    out = Outcomes(answers, total, seq, n_act)
    solve = controller.solve
    for si, s in enumerate(seeds):
        for qi, rq in enumerate(questions):
            ep = Episode(rq, shuffled_order(s, rq.n_branches), mode)
            answers[si][qi] = _solve_one(solve, ep, qi, s, filename)
            total[si, qi], seq[si, qi], n_act[si, qi] = ep.total_tokens, ep.sequential_tokens, len(ep.actions)
            if traces:
                out.traces[(s, qi)] = episode_trace(controller, rq, ep, s)
                out.actions[(s, qi)] = list(ep.actions)
        if progress:
            progress(si + 1, n_s, f"shuffle {si + 1}/{n_s}")
    return out


def _solve_one(solve: Callable, ep: Episode, qi: int, seed: int, filename: str) -> str | None:
    where = f"question {qi}, shuffle {seed}"
    try:
        answer = solve(ep)
    except InvalidAction as exc:
        raise ControllerError(f"strict mode, {where}: {exc}") from None
    except Exception as exc:
        trace = loader.user_traceback(exc, filename)
        raise ControllerError(f"controller raised at {where}:\n{trace}") from None
    if answer is not None and not isinstance(answer, str):
        raise ControllerError(
            f"controller returned {type(answer).__name__} at {where}; solve() must return a str or None"
        )
    return answer


def episode_trace(controller: Any, rq: Any, ep: Episode, seed: int) -> list[dict]:
    """The controller's own trace (``get_last_trace``) if it keeps one, else the action log."""
    get = getattr(controller, "get_last_trace", None)
    if callable(get):
        trace = get()
        if isinstance(trace, list):
            return json.loads(json.dumps(trace, default=str))
    return action_events(rq, ep.actions, seed)


def episode_records(dataset: Dataset, out: Outcomes) -> list[dict[str, Any]]:
    """One plain dict per episode, in (seed, question) order."""
    golds = [q.gold for q in dataset.questions]
    return [
        {"seed": s, "question": q, "answer": a, "correct": a is not None and a == golds[q],
         "total_tokens": int(out.total_tokens[s, q]), "sequential_tokens": int(out.sequential_tokens[s, q]),
         "actions": int(out.n_actions[s, q])}
        for s, row in enumerate(out.answers) for q, a in enumerate(row)
    ]


def summarize(
    dataset: Dataset, spec: ControllerSpec, out: Outcomes, shuffles: int, mode: str, seconds: float
) -> EvalResult:
    golds = [q.gold for q in dataset.questions]
    correct = np.array(
        [[a is not None and a == g for a, g in zip(row, golds, strict=True)] for row in out.answers],
        dtype=bool,
    )
    per_q = correct.mean(axis=0)
    return EvalResult(
        dataset=dataset.name,
        controller=spec.name,
        config=dict(spec.config),
        shuffles=shuffles,
        mode=mode,
        accuracy=round(float(correct.mean(axis=1).mean()) * 100, 2),
        avg_total_tokens=float(out.total_tokens.mean(axis=1).mean()),
        avg_sequential_tokens=float(out.sequential_tokens.mean()),
        ci95=bootstrap_ci(per_q),
        seconds=round(seconds, 4),
        per_question_accuracy=[round(float(p) * 100, 2) for p in per_q],
        per_question_tokens=[float(t) for t in out.total_tokens.mean(axis=0)],
        avg_actions=float(out.n_actions.mean()),
    )


def bootstrap_ci(per_question: np.ndarray, iterations: int = BOOTSTRAP_ITERATIONS) -> tuple[float, float]:
    """95% percentile interval of accuracy (%) when questions are resampled (seeded)."""
    if per_question.size == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, per_question.size, size=(iterations, per_question.size))
    boots = per_question[idx].mean(axis=1) * 100
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return (round(float(lo), 2), round(float(hi), 2))
