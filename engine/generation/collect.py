"""Collect a trajectory dataset from a model: N branches per question, probed every Δ tokens.

Branches are generated ``parallel`` at a time (a sliding window over all (question, branch) pairs,
so a batch stays full across question boundaries); each step advances every branch in the window
by one interval and probes it (``BranchEngine.advance``). A branch is written to the store the
moment it finishes, so a crash or Ctrl-C loses only the branches in flight and ``resume=True``
finishes the rest with the settings recorded at the start. When every branch is in, the collection
becomes a normal dataset (the same tables as an imported AutoTTS file), ready for replay and
``python -m engine export NAME --format autotts``.
"""

from __future__ import annotations

import csv
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.dataset import Dataset
from engine.generation import records
from engine.generation.backend import Backend, Sampling, prompt_format
from engine.generation.branches import BranchEngine, BranchState, GrowthSettings, Timing
from engine.store import Store

Progress = Callable[[int, int, str], None]
DEFAULT_BRANCHES = 128


@dataclass(frozen=True)
class CollectSettings:
    """What a collection records and resumes with (defaults: how the public data was made)."""

    branches: int = DEFAULT_BRANCHES
    growth: GrowthSettings = field(default_factory=GrowthSettings)
    parallel: int = 16  # branches in flight at once

    def __post_init__(self) -> None:
        if self.branches < 1 or self.parallel < 1:
            raise ValueError("branches and parallel must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CollectSettings:
        g = dict(d["growth"])
        g["sampling"] = Sampling(**g["sampling"])
        return cls(branches=d["branches"], growth=GrowthSettings(**g), parallel=d["parallel"])


@dataclass
class CollectReport:
    """What a collection call did (this call only, except ``dataset``)."""

    dataset: str
    branches_written: int
    branches_total: int
    timing: Timing
    seconds: float
    complete: bool

    @property
    def tokens_per_second(self) -> float:
        return self.timing.tokens / self.seconds if self.seconds else 0.0

    @property
    def probe_share(self) -> float:
        """Probe time as a share of generation time."""
        t = self.timing
        return t.probe_seconds / t.generate_seconds if t.generate_seconds else 0.0


def read_questions(source: str, store: Store | None = None) -> list[tuple[str, str]]:
    """(question, gold) pairs from a JSONL or CSV file with ``question`` and ``answer`` (or
    ``gold_answer``) fields, or from a stored dataset of that name."""
    path = Path(source)
    if not path.exists():
        if store is not None and store.has_dataset(source):
            return [(q.text, q.gold) for q in store.load_dataset(source).questions]
        raise FileNotFoundError(f"{source}: no such file, and no stored dataset of that name")
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    else:
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{source}, line {n}: not JSON ({exc.msg})") from None
    if not rows:
        raise ValueError(f"{source}: no questions in the file")
    return [_question_row(row, f"{source}, row {i + 1}") for i, row in enumerate(rows)]


def _question_row(row: Any, where: str) -> tuple[str, str]:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected an object with 'question' and 'answer'")
    question, gold = row.get("question"), row.get("answer", row.get("gold_answer"))
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"{where}: field 'question' must be a non-empty string")
    if gold is None or isinstance(gold, dict | list):
        raise ValueError(f"{where}: field 'answer' (or 'gold_answer') is missing")
    return question, str(gold)


def collect(
    store: Store, dataset: str, backend: Backend, *, questions: list[tuple[str, str]] | None = None,
    settings: CollectSettings | None = None, resume: bool = False, progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> CollectReport:
    """Collect (or, with ``resume``, finish) the dataset ``dataset``; see the module docstring."""
    settings = _start(store, dataset, backend, questions, settings, resume)
    growth = settings.growth
    engine = BranchEngine(backend, prompt_format(growth.prompt_format), growth)
    texts = [q for q, _ in records.get_questions(store, dataset)]
    total = len(texts) * settings.branches
    done = records.done_branches(store, dataset)
    pending = [(q, b) for q in range(len(texts)) for b in range(settings.branches) if (q, b) not in done]
    pending.reverse()  # pop() from the end = file order
    window: list[BranchState] = []
    timing, start, written = Timing(), time.perf_counter(), 0
    while pending or window:
        if cancel is not None and cancel.is_set():
            break
        while pending and len(window) < settings.parallel:
            q, b = pending.pop()
            window.append(engine.new_branch(q, b, texts[q]))
        step = engine.advance(window)
        timing.add(step)
        finished = [s for s in window if s.done]
        window = [s for s in window if not s.done]
        records.add_branches(store, dataset, [(s.q_idx, s.b_idx, s.tokens, s.final, s.probes) for s in finished],
                             step.tokens, step.generate_seconds, step.probe_seconds)
        written += len(finished)
        if progress is not None:
            progress(len(done) + written, total, _label(timing, time.perf_counter() - start, written,
                                                        total - len(done) - written))
    complete = not pending and not window
    if complete:
        store.import_dataset(records.build_dataset(store, dataset, growth.interval))
        records.mark_complete(store, dataset)
    return CollectReport(dataset, written, total, timing, time.perf_counter() - start, complete)


def _start(store: Store, dataset: str, backend: Backend, questions: list[tuple[str, str]] | None,
           settings: CollectSettings | None, resume: bool) -> CollectSettings:
    """Create the run, or check the one to resume; returns the settings to use."""
    run = records.get_run(store, dataset)
    if resume:
        if run is None:
            raise records.CollectionConflict(f"no collection named {dataset!r} to resume")
        made_with = run.backend.get("model")
        if made_with != backend.model:
            raise records.CollectionConflict(f"collection {dataset!r} was made with model {made_with!r}, "
                                             f"not {backend.model!r}; resume it with the same model")
        return CollectSettings.from_dict(run.settings)
    if questions is None:
        raise ValueError("questions are needed to start a collection")
    settings = settings or CollectSettings()
    records.create_run(store, dataset, questions, settings.branches, backend.describe(), settings.to_dict())
    return settings


def _label(timing: Timing, elapsed: float, written: int, remaining: int) -> str:
    rate = timing.tokens / elapsed if elapsed else 0.0
    eta = elapsed / written * remaining if written else float("nan")
    eta_text = f"ETA {eta:,.0f} s" if eta == eta else "ETA ?"
    return f"{rate:,.1f} tokens/s, {eta_text}"


def load_collected(store: Store, dataset: str) -> Dataset:
    """The finished collection as a dataset (raises if it is still collecting)."""
    run = records.get_run(store, dataset)
    if run is not None and run.status != records.COMPLETE:
        raise records.CollectionConflict(f"collection {dataset!r} is not complete ({run.branches_done}/"
                                         f"{run.branches_total} branches); finish it with --resume")
    return store.load_dataset(dataset)
