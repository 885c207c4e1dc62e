"""The generation tables of the store (migration 4; described in ``engine/store.py``): queries only.

Collections are written branch by branch as branches finish, so what a crash loses is the branches
in flight; a finished collection becomes a normal dataset (``Store.import_dataset``). Live runs are
written once they are complete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.dataset import Branch, Dataset, Question
from engine.formats.autotts import content_hash
from engine.store import Store, StoreError

COLLECTING, COMPLETE = "collecting", "complete"


class CollectionConflict(StoreError):
    """A collection or dataset of that name exists already (and resuming was not asked for, or is impossible)."""


@dataclass(frozen=True)
class RunInfo:
    """One row of ``gen_runs`` plus how many branches are in."""

    dataset: str
    status: str
    backend: dict[str, Any]
    settings: dict[str, Any]
    n_questions: int
    n_branches: int
    generated_tokens: int
    generate_seconds: float
    probe_seconds: float
    branches_done: int

    @property
    def branches_total(self) -> int:
        return self.n_questions * self.n_branches


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def create_run(store: Store, dataset: str, questions: list[tuple[str, str]], n_branches: int,
               backend: dict[str, Any], settings: dict[str, Any]) -> None:
    """Record a new collection; refuses a name already used by a collection or a dataset."""
    with store.writing() as con:
        if con.execute("SELECT 1 FROM gen_runs WHERE dataset = ?", [dataset]).fetchone():
            raise CollectionConflict(f"a collection named {dataset!r} exists already; use --resume to finish it "
                                     "or choose another --dataset name")
        if con.execute("SELECT 1 FROM datasets WHERE name = ?", [dataset]).fetchone():
            raise CollectionConflict(f"dataset {dataset!r} exists already; choose another --dataset name")
        now = _now()
        con.execute("INSERT INTO gen_runs VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?)",
                    [dataset, COLLECTING, json.dumps(backend), json.dumps(settings, sort_keys=True),
                     len(questions), n_branches, now, now])
        con.executemany("INSERT INTO gen_questions VALUES (?, ?, ?, ?)",
                        [[dataset, i, text, gold] for i, (text, gold) in enumerate(questions)])


def get_run(store: Store, dataset: str) -> RunInfo | None:
    """The collection ``dataset`` with its progress, or None."""
    with store.connect() as con:
        row = con.execute(
            "SELECT dataset, status, backend, settings, n_questions, n_branches, generated_tokens, "
            "generate_seconds, probe_seconds, (SELECT count(*) FROM gen_branches b WHERE b.dataset = r.dataset) "
            "FROM gen_runs r WHERE dataset = ?", [dataset]).fetchone()
    if row is None:
        return None
    return RunInfo(row[0], row[1], json.loads(row[2]), json.loads(row[3]), *row[4:])


def list_runs(store: Store) -> list[RunInfo]:
    """Every collection, newest first."""
    with store.connect() as con:
        names = [n for (n,) in con.execute("SELECT dataset FROM gen_runs ORDER BY created_at DESC").fetchall()]
    return [r for r in (get_run(store, n) for n in names) if r is not None]


def get_questions(store: Store, dataset: str) -> list[tuple[str, str]]:
    with store.connect() as con:
        return [tuple(r) for r in con.execute(
            "SELECT text, gold FROM gen_questions WHERE dataset = ? ORDER BY q_idx", [dataset]).fetchall()]


def done_branches(store: Store, dataset: str) -> set[tuple[int, int]]:
    """(q_idx, b_idx) of the branches already stored."""
    with store.connect() as con:
        return {(q, b) for q, b in con.execute(
            "SELECT q_idx, b_idx FROM gen_branches WHERE dataset = ?", [dataset]).fetchall()}


def add_branches(store: Store, dataset: str, rows: list[tuple[int, int, int, str, list[str]]],
                 tokens: int, generate_seconds: float, probe_seconds: float) -> None:
    """Store finished branches ``(q_idx, b_idx, tokens, final, probes)`` and add to the run's totals."""
    now = _now()
    with store.writing() as con:
        if rows:
            con.executemany("INSERT INTO gen_branches VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [[dataset, q, b, t, f, p, now] for q, b, t, f, p in rows])
        con.execute("UPDATE gen_runs SET generated_tokens = generated_tokens + ?, "
                    "generate_seconds = generate_seconds + ?, probe_seconds = probe_seconds + ?, updated_at = ? "
                    "WHERE dataset = ?", [tokens, generate_seconds, probe_seconds, now, dataset])


def build_dataset(store: Store, dataset: str, interval: int) -> Dataset:
    """The collected branches as a Dataset (branches in index order)."""
    questions = get_questions(store, dataset)
    with store.connect() as con:
        rows = con.execute("SELECT q_idx, tokens, final, probes FROM gen_branches WHERE dataset = ? "
                           "ORDER BY q_idx, b_idx", [dataset]).fetchall()
    per_q: list[list[Branch]] = [[] for _ in questions]
    for q, tokens, final, probes in rows:
        per_q[q].append(Branch(tuple(probes), int(tokens), final))
    qs = tuple(Question(text, gold, interval, tuple(bs), tuple(b.final for b in bs))
               for (text, gold), bs in zip(questions, per_q, strict=True))
    built = Dataset(name=dataset, questions=qs, source=f"generated:{dataset}")
    return Dataset(name=dataset, questions=qs, content_hash=content_hash(built), source=built.source)


def mark_complete(store: Store, dataset: str) -> None:
    with store.writing() as con:
        con.execute("UPDATE gen_runs SET status = ?, updated_at = ? WHERE dataset = ?", [COMPLETE, _now(), dataset])


# -- live runs ----------------------------------------------------------------------------------
def save_live_run(store: Store, run: dict[str, Any], episodes: list[dict[str, Any]]) -> None:
    """One live run and its episodes, in one transaction."""
    with store.writing() as con:
        con.execute("INSERT INTO live_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [run["id"], run["dataset"], run["controller"], json.dumps(run["config"], sort_keys=True),
                     json.dumps(run["backend"]), json.dumps(run["settings"], sort_keys=True), run["questions"],
                     run["accuracy"], run["avg_tokens"], run["seconds"], _now()])
        con.executemany("INSERT INTO live_episodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [[run["id"], e["q_idx"], e["answer"], e["correct"], e["total_tokens"],
                          e["sequential_tokens"], e["actions"], e["seconds"], e["model_seconds"]] for e in episodes])


def list_live_runs(store: Store, dataset: str | None = None) -> list[dict[str, Any]]:
    """Live runs (newest first), optionally of one dataset; JSON columns decoded."""
    with store.connect() as con:
        cur = con.execute("SELECT id, dataset, controller, config, backend, settings, questions, accuracy, "
                          "avg_tokens, seconds, created_at FROM live_runs WHERE $d IS NULL OR dataset = $d "
                          "ORDER BY created_at DESC", {"d": dataset})
        names = [c[0] for c in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    for r in rows:
        for key in ("config", "backend", "settings"):
            r[key] = json.loads(r[key])
    return rows


def live_episodes(store: Store, run_id: str) -> list[dict[str, Any]]:
    with store.connect() as con:
        cur = con.execute("SELECT * FROM live_episodes WHERE run_id = ? ORDER BY q_idx", [run_id])
        names = [c[0] for c in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
