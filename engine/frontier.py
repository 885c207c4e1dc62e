"""What /frontier evaluates: controllers by their sweeps over datasets, the paper's Table 1 and Figure 3.

A *sweep entry* is one controller with the configs it is swept over: a built-in's default sweep
(budget baselines over their budget knob, beta-controllers over beta, ``controllers.sweep_configs``),
or a saved controller (``saved:<id>``) over beta, run sandboxed. ``run_sweeps`` evaluates them through
``engine.evaluate.sweep`` (cached in the store, progress, cancellable between chunks) and returns
``engine.pareto`` points; the paper presets name their datasets, controllers and settings here.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import controllers, saved
from engine.evaluate import ControllerSpec, EvalResult, result_key, sweep
from engine.generation.records import list_live_runs
from engine.pareto import (
    AVERAGE,
    Matched,
    Point,
    average_over_datasets,
    config_key,
    point_from_result,
    summarize_panel,
)
from engine.paths import PROJECT_ROOT
from engine.plots.frontier import Series as LivePoints
from engine.plots.live import live_series
from engine.replay import COMPAT
from engine.store import Store

Progress = Callable[[int, int, str], None]

PAPER_TABLE = PROJECT_ROOT.parent / "shared" / "docs" / "reference" / "paper_table1.csv"
PAPER_MODELS = ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")
PAPER_BENCHMARKS = ("aime24", "aime25", "hmmt25")
# Table 1's methods and the settings that produced them (controllers.md), by the CSV's method names.
TABLE1_SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "sc64": ("sc64", {}),
    "asc": ("asc64", {}),
    "esc": ("esc64", {}),
    "parallel_probe": ("parallel_probe64", {}),
    "cmc_beta0.5": ("cmc", {"beta": 0.5}),
    "cmc_beta1.0": ("cmc", {"beta": 1.0}),
}
# The paper's Qwen3-4B ASC row used max_samples=40 (controllers.md), not 64.
TABLE1_OVERRIDES = {("Qwen3-4B", "asc"): {"max_samples": 40}}
# Rows no known setting reproduces: shown with ours beside the paper's, flagged, never "fixed".
TABLE1_EXCEPTIONS = {("Qwen3-1.7B", "parallel_probe"): "not reproducible with any known setting (controllers.md)"}

FIGURE3_DATASETS = ("Qwen3-0.6B/aime25", "Qwen3-1.7B/aime25", "Qwen3-4B/hmmt25", "Qwen3-8B/hmmt25")
FIGURE3_CONTROLLERS = ("sc", "asc", "esc", "parallel_probe", "cmc")
# The columns a comparison of runs always shows beside the settings.
OUTCOMES = ("accuracy", "total_tokens", "sequential_tokens")
_MISSING = object()


class Cancelled(Exception):
    """A sweep was stopped; what it computed so far is in the store."""


@dataclass(frozen=True)
class SweepEntry:
    """One controller and the configs it is swept over (``shown`` = the knob the sweep varies)."""

    ref: str  # what a link names: a built-in or ``saved:<id>``
    label: str  # what the legend says
    specs: tuple[ControllerSpec, ...]
    shown: tuple[dict[str, Any], ...]
    trusted: bool = True  # built-ins run in process; saved code always runs sandboxed


def builtin_entry(name: str) -> SweepEntry:
    """A built-in by its default sweep; raises KeyError naming the known ones."""
    if name not in controllers.BUILTINS:
        raise KeyError(f"unknown built-in controller {name!r}; built-ins: {', '.join(sorted(controllers.BUILTINS))}")
    configs = controllers.sweep_configs(name)
    return SweepEntry(name, name, tuple(ControllerSpec.builtin(name, c) for c in configs),
                      tuple(dict(c) for c in configs))


def saved_entry(store: Store, ref: str, betas: Sequence[float] = controllers.BETAS) -> SweepEntry:
    """A saved controller over ``betas``; raises ``saved.UnknownSavedController`` if it is gone."""
    found = saved.get_controller(store, ref)
    specs = tuple(ControllerSpec.from_source(found.source, found.class_name, {"beta": b}, f"{found.name}.py")
                  for b in betas)
    return SweepEntry(f"{saved.PREFIX}{found.id}", f"{found.name} ({found.id[:8]})", specs,
                      tuple({"beta": b} for b in betas), trusted=False)


def entry_for(store: Store, ref: str) -> SweepEntry:
    """``saved:<id>`` or a built-in name -> its sweep entry."""
    return saved_entry(store, ref) if ref.startswith(saved.PREFIX) else builtin_entry(ref)


@dataclass
class SweepRun:
    """Points of a run by dataset, and whether every (dataset, entry, config) was evaluated."""

    points: dict[str, list[Point]] = field(default_factory=dict)
    complete: bool = True
    missing: int = 0

    def all_points(self) -> list[Point]:
        return [p for pts in self.points.values() for p in pts]


def run_sweeps(
    store: Store, datasets: Sequence[str], entries: Sequence[SweepEntry], *, shuffles: int = 100,
    mode: str = COMPAT, progress: Progress | None = None, cancel: threading.Event | None = None,
    cached_only: bool = False, limits: Any = None,
) -> SweepRun:
    """Evaluate every entry's sweep on every dataset (cache first), one chunk per (dataset, entry).

    ``cancel`` stops between chunks and inside sandboxed runs; ``cached_only`` evaluates nothing and
    returns what the store already holds (``complete`` says whether that was everything).
    """
    run = SweepRun()
    total = len(datasets) * sum(len(e.specs) for e in entries)
    done = 0
    for name in datasets:
        dataset = store.load_dataset(name)
        run.points[name] = []
        for entry in entries:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"stopped after {done} of {total} evaluations")
            if cached_only:
                results = _cached(store, dataset, entry, shuffles, mode)
            else:
                offset = done
                results = sweep([dataset], list(entry.specs), shuffles=shuffles, mode=mode, store=store,
                                trusted=entry.trusted, cancel=cancel, limits=limits,
                                progress=_shifted(progress, offset, total, f"{name} {entry.label}"))
            for result, shown in zip(results, entry.shown, strict=True):
                if result is not None:
                    run.points[name].append(point_from_result(result, entry.label, shown))
            done += len(entry.specs)
            run.missing += sum(r is None for r in results)
    run.complete = run.missing == 0
    return run


def _cached(store: Store, dataset: Any, entry: SweepEntry, shuffles: int, mode: str) -> list[EvalResult | None]:
    keys = [result_key(dataset, spec, shuffles, mode) for spec in entry.specs]
    rows = store.get_results(keys)
    return [EvalResult.from_dict(rows[k]["metrics"]) if k in rows else None for k in keys]


def _shifted(progress: Progress | None, offset: int, total: int, label: str) -> Progress | None:
    if progress is None:
        return None
    return lambda done, _n, _label: progress(offset + done, total, label)


# -- the paper's Table 1 ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Table1Row:
    """One cell pair of Table 1: the paper's figures, ours (rounded as the paper does) and the gaps."""

    model: str
    benchmark: str
    method: str
    paper_accuracy: float
    ours_accuracy: float | None
    paper_tokens_k: float
    ours_tokens_k: float | None
    note: str = ""

    @property
    def accuracy_diff(self) -> float | None:
        return None if self.ours_accuracy is None else round(self.ours_accuracy - self.paper_accuracy, 1)

    @property
    def tokens_diff_k(self) -> float | None:
        return None if self.ours_tokens_k is None else round(self.ours_tokens_k - self.paper_tokens_k, 1)

    @property
    def matches(self) -> bool:
        """Both cells equal the paper's after the paper's rounding (0.1 % and 0.1k tokens)."""
        return self.accuracy_diff == 0 and self.tokens_diff_k == 0


def read_paper_table(path: Path = PAPER_TABLE) -> list[dict[str, str]]:
    """The rows of ``paper_table1.csv`` (model, benchmark, method, accuracy_pct, avg_total_tokens_k)."""
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        raise FileNotFoundError(f"the paper's Table 1 is not at {path} (it ships in ../shared/docs/reference)"
                                ) from None


def table1_spec(model: str, method: str) -> ControllerSpec:
    """The setting that produced the paper's cell (with the documented Qwen3-4B ASC exception)."""
    name, config = TABLE1_SETTINGS[method]
    return ControllerSpec.builtin(name, {**config, **TABLE1_OVERRIDES.get((model, method), {})})


def paper_rounding(result: EvalResult) -> tuple[float, float]:
    """(accuracy to 0.1 %, int(tokens) in thousands to 0.1): how the paper prints a cell."""
    return round(result.accuracy, 1), round(int(result.avg_total_tokens) / 1000, 1)


def table1(store: Store, rows: Sequence[dict[str, str]], *, shuffles: int = 100,
           progress: Progress | None = None, cancel: threading.Event | None = None) -> list[Table1Row]:
    """Every Table 1 row with ours beside it; a dataset missing from the store leaves ours empty.

    Rows are evaluated one dataset at a time through ``sweep`` (one cache read, batched writes);
    ``cancel`` stops between datasets (``Cancelled``), what was evaluated stays in the store.
    """
    stored = {info.name for info in store.list_datasets()}
    ours: dict[int, tuple[float, float]] = {}
    by_dataset: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_dataset.setdefault(f"{row['model']}/{row['benchmark']}", []).append(i)
    done = 0
    for name, indices in by_dataset.items():
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"Table 1 stopped after {done} of {len(rows)} rows")
        if name in stored:
            specs = [table1_spec(rows[i]["model"], rows[i]["method"]) for i in indices]
            results = sweep([store.load_dataset(name)], specs, shuffles=shuffles, store=store)
            ours.update({i: paper_rounding(r) for i, r in zip(indices, results, strict=True)})
        done += len(indices)
        if progress is not None:
            progress(done, len(rows), name)
    return [_table1_row(row, ours.get(i), f"{row['model']}/{row['benchmark']}" in stored) for i, row in enumerate(rows)]


def _table1_row(row: dict[str, str], ours: tuple[float, float] | None, stored: bool) -> Table1Row:
    model, bench, method = row["model"], row["benchmark"], row["method"]
    note = TABLE1_EXCEPTIONS.get((model, method), "") if stored else f"{model}/{bench} is not in the store"
    acc, tokens = ours if ours is not None else (None, None)
    return Table1Row(model, bench, method, float(row["accuracy_pct"]), acc, float(row["avg_total_tokens_k"]),
                     tokens, note)


# -- comparing runs ---------------------------------------------------------------------------------

def entry_settings(entry: SweepEntry) -> list[dict[str, Any]]:
    """Every setting of each config of an entry: a built-in's full knob table, a saved one's config."""
    rows = []
    for spec in entry.specs:
        knobs = spec.build().knobs if spec.is_builtin else {}
        rows.append({"controller": entry.label, **dict(spec.config), **knobs})
    return rows


def run_rows(entry: SweepEntry, points: Sequence[Point]) -> list[dict[str, Any]]:
    """One row per point of ``entry``: its settings, accuracy and tokens (for comparing runs)."""
    settings = {config_key(shown): row for shown, row in zip(entry.shown, entry_settings(entry), strict=True)}
    return [{**settings[config_key(p.config)], "dataset": p.dataset, "accuracy": p.accuracy,
             "total_tokens": round(p.total_tokens), "sequential_tokens": round(p.sequential_tokens)}
            for p in points if p.controller == entry.label and config_key(p.config) in settings]


def differing(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Keys whose values are not the same in every row (a key missing from a row differs)."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return [k for k in keys if len({repr(row.get(k, _MISSING)) for row in rows}) > 1]


def numeric_dimensions(rows: Sequence[dict[str, Any]], outcomes: Sequence[str] = OUTCOMES) -> list[str]:
    """Numeric settings that vary across ``rows`` (the knobs a sweep turns), then the outcome columns."""
    knobs = [k for k in differing(rows) if k not in outcomes
             and all(isinstance(row.get(k), int | float) and not isinstance(row.get(k), bool) for row in rows)]
    return [*knobs, *outcomes]


# -- what the page shows ----------------------------------------------------------------------------

def panel_title(dataset: str, heldout: Sequence[str]) -> str:
    """``Qwen3-4B/hmmt25 (held-out)`` or ``(search)``: the user's split, shown on every panel."""
    return f"{dataset} ({'held-out' if dataset in heldout else 'search'})"


def live_points(store: Store, datasets: Sequence[str], heldout: Sequence[str] = ()) -> dict[str, list[LivePoints]]:
    """Live runs (``engine.generation``) of the chosen datasets as point series keyed by panel title,
    to overlay on the replay curves of the same model and questions (total tokens: what a live run costs)."""
    out: dict[str, list[LivePoints]] = {}
    for name in datasets:
        series = live_series(list_live_runs(store, name))
        if series:
            out[panel_title(name, heldout)] = [LivePoints(s.name, s.tokens, s.accuracy) for s in series]
    return out


def panels(run: SweepRun, heldout: Sequence[str] = ()) -> dict[str, list[Point]]:
    """One panel per dataset, plus the average over datasets when there are several."""
    out = {panel_title(name, heldout): pts for name, pts in run.points.items()}
    if len(run.points) > 1:
        out[AVERAGE] = average_over_datasets(run.all_points())
    return out


def baseline_options(points: Sequence[Point]) -> list[str]:
    """``controller | config`` of every swept config, the choices of a matched-accuracy baseline."""
    return list(dict.fromkeys(baseline_ref(p) for p in points))


def baseline_ref(p: Point) -> str:
    return f"{p.controller} | {p.label}"


def summary_rows(panel_points: dict[str, list[Point]], baseline: str | None, axis: str = "total") -> list[dict]:
    """The per-controller summary of every panel as table rows (see ``engine.pareto`` for each figure)."""
    rows = []
    for title, pts in panel_points.items():
        base = next((p for p in pts if baseline_ref(p) == baseline), None)
        for s in summarize_panel(pts, base, axis):
            rows.append({
                "panel": title, "controller": s.controller,
                "best accuracy %": s.best.accuracy, "best at tokens": round(s.best.tokens(axis)),
                "best config": s.best.label,
                f"tokens at {baseline or 'baseline'} accuracy": matched_text(s.matched, base),
                "frontier score %": round(s.score, 2), "points on frontier": f"{s.on_frontier}/{s.n_points}",
            })
    return rows


def matched_text(matched: Matched | None, base: Point | None) -> str:
    """'38% (beta=0.5)', 'never reaches it', or '' without a baseline in the panel."""
    if base is None:
        return ""
    if matched is None:
        return f"never reaches {base.accuracy:.2f}%"
    return f"{matched.ratio:.0%} ({matched.point.label})"


def points_rows(points: Sequence[Point]) -> list[dict[str, Any]]:
    """Every point as a flat row (the CSV export)."""
    return [{"dataset": p.dataset, "controller": p.controller, "config": p.label, "accuracy": p.accuracy,
             "ci_low": p.ci_low, "ci_high": p.ci_high, "avg_total_tokens": p.total_tokens,
             "avg_sequential_tokens": p.sequential_tokens} for p in points]
