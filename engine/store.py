"""The trajectory store: one DuckDB file holding datasets, evaluation results and traces.

This module is the only owner of the schema; it changes only by appending to ``MIGRATIONS``.

Tables (one per concept; ``q_idx`` / ``b_idx`` / ``k`` are 0-based positions in file order):

- ``schema_migrations(version, applied_at)``: which entries of ``MIGRATIONS`` were applied, when (UTC).
- ``datasets(name, content_hash, source, probe_freq, n_questions, n_branches_total, imported_at,
  pass_at_1, majority_all, any_correct)``: one row per dataset. ``name`` (key) is e.g.
  ``Qwen3-8B/aime24``; ``content_hash`` is the sha256 of the canonical question content;
  ``source`` the path it was imported from; ``probe_freq`` the probe interval in tokens (NULL when
  questions differ); the last three are percentages from ``engine.facts`` (unrounded).
- ``questions(dataset, q_idx, text, gold, probe_freq, has_trace)``: problem text, gold answer,
  interval, and whether the file carried ``final_answers_trace`` (kept for exact export).
- ``branches(dataset, q_idx, b_idx, tokens, final)``: full length in tokens and final answer.
- ``probes(dataset, q_idx, b_idx, k, answer)``: the answer after ``(k+1) * probe_freq`` tokens.
- ``results(key, dataset, dataset_hash, controller, controller_hash, config, shuffles, mode,
  metrics, created_at)``: one cached evaluation; ``key`` (primary) hashes everything that
  determines it; ``config`` and ``metrics`` are JSON.
- ``traces(result_key, q_idx, seed, events)``: execution trace of one episode of a result;
  ``events`` is zlib-compressed JSON (a list of event dicts).
- ``saved_controllers(id, name, class_name, source, note, parent, origin, created_at)``: controller
  code a user saved (``engine.saved``). ``id`` (key) is the content hash of source + class name;
  ``parent`` the id it was edited from; ``origin`` JSON lineage (e.g. a discovery session and round).
- Discovery sessions (``engine.discovery.sessions`` owns the queries; ``round`` 0 holds the seeds,
  ``attempt`` numbers the candidates of a round: retries, then the critic's revision, or the seed index):
  ``discovery_sessions(name, config, status, step, round, spent_usd, elapsed_seconds, pid,
  stop_requested, message, created_at, updated_at)``: one row per session; ``config`` JSON (never an
  API key); ``status`` running/stopped/done/budget/failed; ``step`` the step in progress.
  ``discovery_calls(session, round, purpose, attempt, prompt, prompt_tokens, response,
  completion_tokens, usd, seconds, error, created_at)``: every proposer request (``purpose`` propose or
  critic); the prompt is written before the request, the response after, so a stored answer is never
  asked again. ``discovery_candidates(session, round, attempt, origin, kind, class_name, code, params,
  valid, error, seconds, created_at)``: each extracted candidate and its validation (``kind`` source,
  family or builtin; ``params`` JSON). ``discovery_evaluations(session, round, attempt, split, dataset,
  beta, result_key, accuracy, tokens, seconds, cached, created_at)``: one row per (dataset, beta)
  evaluation of a candidate (``split`` search, screen (search datasets at the session's screen shuffle
  count) or heldout); ``cached`` marks a result already in ``results``.
  ``discovery_rounds(session, round, attempt, parent, seen, summary, score, accuracy, tokens,
  heldout_accuracy, heldout_tokens, trace, prompt_tokens, usd, seconds, completed_at)``: a finished
  round: its chosen candidate (``attempt`` -1 when none was valid), ``parent`` the round shown as the
  best, ``seen`` (JSON) the rounds the prompt showed, its search figures and, apart, its held-out
  figures (never read by selection); a screened-out round has a candidate and a NULL score.
- Generation (migration 4, queries in ``engine.generation.records``):
  ``gen_runs(dataset, status, backend, settings, n_questions, n_branches, generated_tokens,
  generate_seconds, probe_seconds, created_at, updated_at)``: one collection, keyed by the dataset
  it will become; ``status`` 'collecting' until every branch is in, then 'complete' (the branches
  are then also a normal dataset); ``backend`` / ``settings`` JSON (server address without
  credentials, sampling, interval, caps); the last three are running totals for throughput.
  ``gen_questions(dataset, q_idx, text, gold)``: the questions being collected.
  ``gen_branches(dataset, q_idx, b_idx, tokens, final, probes, created_at)``: each branch as soon as
  it finished (``probes`` a list, as ``probes`` rows would be); a crash loses only branches in flight.
  ``live_runs(id, dataset, controller, config, backend, settings, questions, accuracy, avg_tokens,
  seconds, created_at)``: a controller run live on some questions of a dataset; ``questions`` the
  q_idx list. ``live_episodes(run_id, q_idx, answer, correct, total_tokens, sequential_tokens,
  actions, seconds, model_seconds)``: one live episode (action log as replay codes, wall clock,
  seconds spent waiting for the model).

Versions: ``schema_migrations`` says which migrations a file has. Opening a store written by a newer
engine raises ``SchemaTooNew``; an older one is copied beside itself (``<name>.v<N>.bak``) and then
migrated. A file that is not DuckDB, is truncated, or is another program's database raises
``NotAStore`` before anything is written to it (an empty DuckDB database becomes a new store).

Deleting a dataset keeps its results: they are keyed by content hash and are valid again if the
same content is re-imported.

Feature modules (``engine.saved``, …) own their queries and use ``Store.connect`` / ``Store.writing``.

Connections are short-lived (one per operation) so that the CLI and the app can share the file;
DuckDB lets one process at a time open it, so a busy file is retried for ``busy_timeout``
seconds before ``StoreBusy`` is raised. Every write is one transaction: on error nothing changes.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from engine.dataset import Branch, Dataset, Question
from engine.facts import dataset_facts
from engine.formats.autotts import content_hash, load_autotts_file, write_autotts
from engine.paths import default_db

Progress = Callable[[int, int, str], None]

EXPORT_FORMATS = ("autotts", "parquet")
_HEADER_BYTES = 3 * 4096  # DuckDB's file header and its two database headers precede the data blocks

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
        CREATE TABLE datasets (
            name VARCHAR PRIMARY KEY, content_hash VARCHAR NOT NULL, source VARCHAR NOT NULL,
            probe_freq INTEGER, n_questions INTEGER NOT NULL, n_branches_total INTEGER NOT NULL,
            imported_at TIMESTAMP NOT NULL, pass_at_1 DOUBLE NOT NULL, majority_all DOUBLE NOT NULL,
            any_correct DOUBLE NOT NULL);
        CREATE TABLE questions (
            dataset VARCHAR NOT NULL, q_idx INTEGER NOT NULL, text VARCHAR NOT NULL, gold VARCHAR NOT NULL,
            probe_freq INTEGER NOT NULL, has_trace BOOLEAN NOT NULL);
        CREATE TABLE branches (
            dataset VARCHAR NOT NULL, q_idx INTEGER NOT NULL, b_idx INTEGER NOT NULL, tokens BIGINT NOT NULL,
            final VARCHAR NOT NULL);
        CREATE TABLE probes (
            dataset VARCHAR NOT NULL, q_idx INTEGER NOT NULL, b_idx INTEGER NOT NULL, k INTEGER NOT NULL,
            answer VARCHAR NOT NULL);
        CREATE TABLE results (
            key VARCHAR PRIMARY KEY, dataset VARCHAR NOT NULL, dataset_hash VARCHAR NOT NULL,
            controller VARCHAR NOT NULL, controller_hash VARCHAR NOT NULL, config JSON NOT NULL,
            shuffles INTEGER NOT NULL, mode VARCHAR NOT NULL, metrics JSON NOT NULL,
            created_at TIMESTAMP NOT NULL);
        CREATE TABLE traces (
            result_key VARCHAR NOT NULL, q_idx INTEGER NOT NULL, seed INTEGER NOT NULL, events BLOB NOT NULL);
    """),
    (2, """
        CREATE TABLE saved_controllers (
            id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, class_name VARCHAR NOT NULL, source VARCHAR NOT NULL,
            note VARCHAR NOT NULL, parent VARCHAR, origin JSON NOT NULL, created_at TIMESTAMP NOT NULL);
    """),
    (3, """
        CREATE TABLE discovery_sessions (
            name VARCHAR PRIMARY KEY, config JSON NOT NULL, status VARCHAR NOT NULL, step VARCHAR NOT NULL,
            round INTEGER NOT NULL, spent_usd DOUBLE NOT NULL, elapsed_seconds DOUBLE NOT NULL, pid INTEGER,
            stop_requested BOOLEAN NOT NULL, message VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL);
        CREATE TABLE discovery_calls (
            session VARCHAR NOT NULL, round INTEGER NOT NULL, purpose VARCHAR NOT NULL, attempt INTEGER NOT NULL,
            prompt VARCHAR NOT NULL, prompt_tokens INTEGER NOT NULL, response VARCHAR, completion_tokens INTEGER,
            usd DOUBLE, seconds DOUBLE, error VARCHAR, created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (session, round, purpose, attempt));
        CREATE TABLE discovery_candidates (
            session VARCHAR NOT NULL, round INTEGER NOT NULL, attempt INTEGER NOT NULL, origin VARCHAR NOT NULL,
            kind VARCHAR NOT NULL, class_name VARCHAR, code VARCHAR, params JSON, valid BOOLEAN NOT NULL,
            error VARCHAR, seconds DOUBLE NOT NULL, created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (session, round, attempt));
        CREATE TABLE discovery_evaluations (
            session VARCHAR NOT NULL, round INTEGER NOT NULL, attempt INTEGER NOT NULL, split VARCHAR NOT NULL,
            dataset VARCHAR NOT NULL, beta DOUBLE NOT NULL, result_key VARCHAR NOT NULL, accuracy DOUBLE NOT NULL,
            tokens DOUBLE NOT NULL, seconds DOUBLE NOT NULL, cached BOOLEAN NOT NULL, created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (session, round, attempt, split, dataset, beta));
        CREATE TABLE discovery_rounds (
            session VARCHAR NOT NULL, round INTEGER NOT NULL, attempt INTEGER NOT NULL, parent INTEGER,
            seen JSON NOT NULL, summary VARCHAR NOT NULL, score DOUBLE, accuracy DOUBLE, tokens DOUBLE,
            heldout_accuracy DOUBLE, heldout_tokens DOUBLE, trace VARCHAR NOT NULL, prompt_tokens INTEGER NOT NULL,
            usd DOUBLE NOT NULL, seconds DOUBLE NOT NULL, completed_at TIMESTAMP NOT NULL,
            PRIMARY KEY (session, round, attempt));
    """),
    (4, """
        CREATE TABLE gen_runs (
            dataset VARCHAR PRIMARY KEY, status VARCHAR NOT NULL, backend JSON NOT NULL, settings JSON NOT NULL,
            n_questions INTEGER NOT NULL, n_branches INTEGER NOT NULL, generated_tokens BIGINT NOT NULL,
            generate_seconds DOUBLE NOT NULL, probe_seconds DOUBLE NOT NULL, created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL);
        CREATE TABLE gen_questions (
            dataset VARCHAR NOT NULL, q_idx INTEGER NOT NULL, text VARCHAR NOT NULL, gold VARCHAR NOT NULL);
        CREATE TABLE gen_branches (
            dataset VARCHAR NOT NULL, q_idx INTEGER NOT NULL, b_idx INTEGER NOT NULL, tokens BIGINT NOT NULL,
            final VARCHAR NOT NULL, probes VARCHAR[] NOT NULL, created_at TIMESTAMP NOT NULL);
        CREATE TABLE live_runs (
            id VARCHAR PRIMARY KEY, dataset VARCHAR NOT NULL, controller VARCHAR NOT NULL, config JSON NOT NULL,
            backend JSON NOT NULL, settings JSON NOT NULL, questions INTEGER[] NOT NULL, accuracy DOUBLE NOT NULL,
            avg_tokens DOUBLE NOT NULL, seconds DOUBLE NOT NULL, created_at TIMESTAMP NOT NULL);
        CREATE TABLE live_episodes (
            run_id VARCHAR NOT NULL, q_idx INTEGER NOT NULL, answer VARCHAR, correct BOOLEAN NOT NULL,
            total_tokens BIGINT NOT NULL, sequential_tokens BIGINT NOT NULL, actions INTEGER[] NOT NULL,
            seconds DOUBLE NOT NULL, model_seconds DOUBLE NOT NULL);
    """),
]

# Tables holding a dataset's rows, with the column naming the dataset (children first).
_DATASET_TABLES = (("probes", "dataset"), ("branches", "dataset"), ("questions", "dataset"), ("datasets", "name"))

# One row per branch with its probe answers as a list: read by load_dataset, written by parquet export.
_BRANCHES_SQL = """
    SELECT b.dataset, b.q_idx, q.text AS question, q.gold, q.probe_freq, q.has_trace, b.b_idx, b.tokens, b.final,
           coalesce(p.probes, []::VARCHAR[]) AS probes
    FROM branches b
    JOIN questions q ON q.dataset = b.dataset AND q.q_idx = b.q_idx
    LEFT JOIN (SELECT q_idx, b_idx, list(answer ORDER BY k) AS probes FROM probes WHERE dataset = $name
               GROUP BY q_idx, b_idx) p ON p.q_idx = b.q_idx AND p.b_idx = b.b_idx
    WHERE b.dataset = $name
    ORDER BY b.q_idx, b.b_idx
"""

_RESULT_JSON = ("config", "metrics")
_RESULT_COLUMNS = ("key", "dataset", "dataset_hash", "controller", "controller_hash", "config", "shuffles",
                   "mode", "metrics", "created_at")

# Loaded datasets by (name, content hash, source): repeated loads return the same object (and its arrays),
# also across stores holding the same rows.
_CACHE: dict[tuple[str, str, str], Dataset] = {}


class StoreError(Exception):
    """Base of the store's own errors (all are user-facing, one line)."""


class NotAStore(StoreError):
    """The file is not a whole TTS Lab store: not DuckDB, truncated, or another program's database."""


class SchemaTooNew(StoreError):
    """The store was written by a newer engine (its schema has migrations this one does not know)."""


class StoreBusy(StoreError):
    """Another process held the database file for longer than the busy timeout."""


class DatasetConflict(StoreError):
    """A dataset of that name exists with different content, and replacing was not asked for."""


class UnknownDataset(StoreError, LookupError):
    """No dataset of that name is in the store."""


@dataclass(frozen=True)
class DatasetInfo:
    """One row of the ``datasets`` table."""

    name: str
    content_hash: str
    source: str
    probe_freq: int | None
    n_questions: int
    n_branches_total: int
    imported_at: datetime
    pass_at_1: float
    majority_all: float
    any_correct: float


@dataclass(frozen=True)
class ImportReport:
    """What importing one dataset did: status is 'imported', 'unchanged' or 'replaced'."""

    name: str
    status: str
    n_questions: int
    n_branches: int
    content_hash: str


class Store:
    """A DuckDB file of datasets and results; safe to share between processes (one at a time)."""

    def __init__(self, path: str | Path | None = None, *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path) if path is not None else default_db()
        self.busy_timeout = busy_timeout
        # Where the copy of an older store was written before it was migrated (None: nothing migrated).
        self.backup: Path | None = None
        fresh = not self.path.exists()
        if fresh:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        else:
            check_file(self.path)
        with _write_lock(self.path), self.connect() as con:
            applied = check_schema(con, self.path)  # also when fresh: another process may have just made it
            pending = [(v, sql) for v, sql in MIGRATIONS if v not in applied]
            if applied and pending:
                self.backup = _backup(con, self.path, max(applied))
            _migrate(con, pending)
        with contextlib.suppress(OSError):  # owner only: sandboxed controllers run as another uid
            self.path.chmod(0o600)

    # -- datasets -----------------------------------------------------------------------------

    def import_path(self, path: str | Path, *, replace: bool = False,
                    progress: Progress | None = None) -> list[ImportReport]:
        """Import a file, or a directory of ``<model>/<bench>.json``, all or nothing."""
        path = Path(path)
        files = sorted(path.glob("*/*.json")) if path.is_dir() else [path]
        if not files:
            raise FileNotFoundError(f"{path}: no <model>/<bench>.json files in this directory")
        total = 2 * len(files)
        datasets = []
        for i, file in enumerate(files, 1):
            datasets.append(load_autotts_file(file))
            _report(progress, i, total, f"read {file}")
        step = None if progress is None else (lambda i, _, label: progress(len(files) + i, total, label))
        return self.import_datasets(datasets, replace=replace, progress=step)

    def import_datasets(self, datasets: list[Dataset], *, replace: bool = False,
                        progress: Progress | None = None) -> list[ImportReport]:
        """Store several datasets in one transaction (all or nothing), each as ``import_dataset`` does."""
        reports = []
        with self.writing() as con:
            for i, dataset in enumerate(datasets, 1):
                reports.append(_write_dataset(con, dataset, replace))
                _report(progress, i, len(datasets), f"{reports[-1].status} {dataset.name}")
        return reports

    def import_dataset(self, dataset: Dataset, *, replace: bool = False) -> ImportReport:
        """Store ``dataset``; same content is a no-op, other content under its name needs ``replace``."""
        return self.import_datasets([dataset], replace=replace)[0]

    def list_datasets(self) -> list[DatasetInfo]:
        """All datasets, by name."""
        columns = ", ".join(f.name for f in fields(DatasetInfo))
        with self.connect() as con:
            rows = con.execute(f"SELECT {columns} FROM datasets ORDER BY name").fetchall()
        return [DatasetInfo(*row) for row in rows]

    def has_dataset(self, name: str) -> bool:
        """Whether ``name`` is stored (cheap: no rows are loaded)."""
        with self.connect() as con:
            return _dataset_row(con, name) is not None

    def load_dataset(self, name: str) -> Dataset:
        """The dataset as imported; cached in-process by content hash, so repeated loads are free."""
        with self.connect() as con:
            digest, source = _require_dataset(con, name)
            cached = _CACHE.get((name, digest, source))
            if cached is not None:
                return cached
            questions = con.execute("SELECT text, gold, probe_freq, has_trace FROM questions WHERE dataset = ? "
                                    "ORDER BY q_idx", [name]).fetchall()
            branches = con.execute(f"SELECT q_idx, tokens, final, probes FROM ({_BRANCHES_SQL})",
                                   {"name": name}).fetchall()
        dataset = Dataset(name=name, questions=rebuild_questions(questions, branches), content_hash=digest,
                          source=source)
        _CACHE[(name, digest, source)] = dataset
        return dataset

    def delete_dataset(self, name: str) -> None:
        """Remove a dataset's rows (results stay: they are keyed by content hash)."""
        with self.writing() as con:
            _require_dataset(con, name)
            _delete_rows(con, name)

    def export_dataset(self, name: str, path: str | Path, fmt: str) -> None:
        """Write a dataset as an AutoTTS file, or as parquet with one row per branch."""
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
        if fmt == "autotts":
            write_autotts(self.load_dataset(name), path)
            return
        target = str(path).replace("'", "''")
        with self.connect() as con:
            _require_dataset(con, name)
            con.execute(f"COPY ({_BRANCHES_SQL}) TO '{target}' (FORMAT parquet)", {"name": name})

    # -- results and traces -------------------------------------------------------------------

    def get_result(self, key: str) -> dict[str, Any] | None:
        """A cached evaluation row, with ``config`` and ``metrics`` decoded; None if absent."""
        return self.get_results([key]).get(key)

    def get_results(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The cached rows among ``keys`` in one query (a sweep's cache lookup), by key."""
        if not keys:
            return {}
        with self.connect() as con:
            rows = con.execute(f"SELECT {', '.join(_RESULT_COLUMNS)} FROM results WHERE key IN "
                               "(SELECT unnest(?::VARCHAR[]))", [list(keys)]).fetchall()
        found = {}
        for row in rows:
            result = dict(zip(_RESULT_COLUMNS, row, strict=True))
            for column in _RESULT_JSON:
                result[column] = json.loads(result[column])
            found[result["key"]] = result
        return found

    def put_result(self, key: str, row: dict[str, Any]) -> None:
        """Insert or overwrite the result ``key``; ``created_at`` defaults to now."""
        self.put_results({key: row})

    def put_results(self, rows: dict[str, dict[str, Any]]) -> None:
        """Insert or overwrite several results in one transaction."""
        records = [self._result_record(key, row) for key, row in rows.items()]
        placeholders = ", ".join("?" for _ in _RESULT_COLUMNS)
        with self.writing() as con:
            con.executemany(f"INSERT OR REPLACE INTO results ({', '.join(_RESULT_COLUMNS)}) VALUES ({placeholders})",
                            records)

    @staticmethod
    def _result_record(key: str, row: dict[str, Any]) -> list[Any]:
        values = {**row, "key": key, "created_at": row.get("created_at") or _now()}
        for column in _RESULT_JSON:
            values[column] = json.dumps(values[column], sort_keys=True)
        missing = [c for c in _RESULT_COLUMNS if c not in values]
        if missing:
            raise ValueError(f"result row lacks {', '.join(missing)}")
        return [values[c] for c in _RESULT_COLUMNS]

    def put_traces(self, key: str, traces: list[tuple[int, int, list[dict]]]) -> None:
        """Store episode traces ``(q_idx, seed, events)`` of result ``key``, replacing the same episodes."""
        table = pa.table({
            "q_idx": pa.array([t[0] for t in traces], pa.int32()),
            "seed": pa.array([t[1] for t in traces], pa.int32()),
            "events": pa.array([zlib.compress(json.dumps(t[2]).encode()) for t in traces], pa.binary()),
        })
        with self.writing() as con:
            con.register("new_traces", table)
            con.execute("DELETE FROM traces t WHERE result_key = ? AND EXISTS "
                        "(SELECT 1 FROM new_traces n WHERE n.q_idx = t.q_idx AND n.seed = t.seed)", [key])
            con.execute("INSERT INTO traces BY NAME SELECT ? AS result_key, * FROM new_traces", [key])
            con.unregister("new_traces")

    def get_traces(self, key: str, q_idx: int | None = None,
                   seed: int | None = None) -> list[tuple[int, int, list[dict]]]:
        """Traces of result ``key`` as ``(q_idx, seed, events)``, optionally for one question / seed."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT q_idx, seed, events FROM traces WHERE result_key = $key "
                "AND ($q IS NULL OR q_idx = $q) AND ($s IS NULL OR seed = $s) ORDER BY q_idx, seed",
                {"key": key, "q": q_idx, "s": seed}).fetchall()
        return [(q, s, json.loads(zlib.decompress(events))) for q, s, events in rows]

    # -- connections --------------------------------------------------------------------------

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one operation, retrying while another process holds the file lock."""
        con = self._open()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside one transaction, for one writer of this process at a time.

        DuckDB's optimistic concurrency makes two threads writing the same row (two app users
        caching the same result) fail; they queue here instead.
        """
        with _write_lock(self.path), self.connect() as con, _transaction(con):
            yield con

    def _open(self) -> duckdb.DuckDBPyConnection:
        return open_file(self.path, self.busy_timeout)


def open_file(path: Path, busy_timeout: float) -> duckdb.DuckDBPyConnection:
    """A connection to the DuckDB file ``path``, retried while another process holds its lock.

    Every connection of this process uses the same (read-write) configuration: DuckDB refuses a
    second configuration of a file that is open. Opening writes nothing by itself.
    """
    deadline = time.monotonic() + busy_timeout
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise NotAStore(f"{path} cannot be opened as a DuckDB database (damaged or truncated?): "
                                f"{str(exc).splitlines()[0]}") from None
            if time.monotonic() >= deadline:
                raise StoreBusy(f"database {path} is busy (held by another process for over "
                                f"{busy_timeout:g} s): {str(exc).splitlines()[0]}") from None
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.5)


def peek_datasets(path: Path, busy_timeout: float = 2.0) -> list[str]:
    """The dataset names of an existing store file, checked as ``Store`` checks it but never migrated."""
    check_file(path)
    con = open_file(path, busy_timeout)
    try:
        if not check_schema(con, path):
            return []
        return [n for (n,) in con.execute("SELECT name FROM datasets ORDER BY name").fetchall()]
    finally:
        con.close()


_WRITE_LOCKS: dict[Path, threading.Lock] = {}
_VERIFIED: set[tuple[Path, int]] = set()  # (file, inode) whose blocks were checked against its size
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    """The process-wide lock of one database file."""
    key = path.resolve()
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.Lock())


def schema_version() -> int:
    """The newest schema this engine writes: the last entry of MIGRATIONS."""
    return max(v for v, _ in MIGRATIONS)


def check_file(path: Path) -> None:
    """Refuse, before DuckDB touches it, a file that is empty or not a DuckDB database at all."""
    with path.open("rb") as f:
        head = f.read(_HEADER_BYTES)
    if not head:
        raise NotAStore(f"{path} is empty (0 bytes), not a TTS Lab store")
    if head[8:12] != b"DUCK":
        raise NotAStore(f"{path} is not a DuckDB database (no DuckDB header)")
    if len(head) < _HEADER_BYTES:
        raise NotAStore(f"{path} is truncated ({len(head)} bytes, shorter than a DuckDB header)")


def check_schema(con: duckdb.DuckDBPyConnection, path: Path, catalog: str | None = None) -> set[int]:
    """The migrations a DuckDB database recorded, after checking that it is a TTS Lab store.

    Call ``check_file`` on the file first. Raises ``NotAStore`` for a truncated file, a foreign
    database or missing tables, and
    ``SchemaTooNew`` when it was written by a newer engine. An empty database counts as a new store.
    ``catalog`` names an attached database (default: the one the connection opened).
    """
    name = catalog or con.execute("SELECT current_database()").fetchone()[0]
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ?",
                                        [name]).fetchall()}
    if not tables:
        return set()
    _check_blocks(con, path, name, tables)
    if "schema_migrations" not in tables:
        raise NotAStore(f"{path} is a DuckDB database but not a TTS Lab store (it has tables "
                        f"{', '.join(sorted(tables)[:5])}{', ...' if len(tables) > 5 else ''}, no schema_migrations)")
    applied = {v for (v,) in con.execute(f'SELECT version FROM "{name}".schema_migrations').fetchall()}
    known = {v for v, _ in MIGRATIONS}
    if applied - known:
        raise SchemaTooNew(f"{path} has schema version {max(applied)}, newer than this engine's "
                           f"{schema_version()}: update TTS Lab to open it")
    expected = set()
    for version, sql in MIGRATIONS:
        if version in applied:
            expected = (expected | set(_table_names("CREATE", sql))) - set(_table_names("DROP", sql))
    missing = sorted(expected - tables)
    if missing:
        raise NotAStore(f"{path} is not a whole TTS Lab store: missing tables {', '.join(missing)}")
    return applied


def _check_blocks(con: duckdb.DuckDBPyConnection, path: Path, catalog: str, tables: set[str]) -> None:
    """Refuse a file cut short: every data block its tables use must lie inside the file.

    Done once per file and process (it reads the storage layout of every table, not the data).
    """
    key = (path.resolve(), path.stat().st_ino)
    if key in _VERIFIED:
        return
    per_table = " UNION ALL ".join(
        f"SELECT max(greatest(block_id, coalesce(list_max(additional_block_ids), -1))) AS b "
        f"FROM pragma_storage_info('\"{catalog}\".\"{t}\"') WHERE persistent" for t in sorted(tables))
    last = con.execute(f"SELECT max(b) FROM ({per_table})").fetchone()[0]
    block_size = con.execute("SELECT block_size FROM pragma_database_size() WHERE database_name = ?",
                             [catalog]).fetchone()[0]
    needed = _HEADER_BYTES + (last + 1) * block_size if last is not None else 0
    if path.stat().st_size < needed:
        raise NotAStore(f"{path} is truncated: {path.stat().st_size} bytes, but its tables use blocks up to "
                        f"byte {needed}")
    _VERIFIED.add(key)


def _table_names(verb: str, sql: str) -> list[str]:
    """Tables a migration creates (``verb`` CREATE) or drops (DROP)."""
    return re.findall(rf"{verb} TABLE (?:IF (?:NOT )?EXISTS )?(\w+)", sql, flags=re.IGNORECASE)


def _backup(con: duckdb.DuckDBPyConnection, path: Path, version: int) -> Path:
    """Copy the store beside itself (``<name>.v<version>.bak``) before migrating it; returns the copy."""
    con.execute("CHECKPOINT")  # everything in the main file; this connection's lock keeps writers out
    target = path.with_name(f"{path.name}.v{version}.bak")
    if target.exists():
        target = path.with_name(f"{path.name}.v{version}.{datetime.now(UTC):%Y%m%dT%H%M%S%f}.bak")
    shutil.copyfile(path, target)
    return target


def _migrate(con: duckdb.DuckDBPyConnection, pending: list[tuple[int, str]]) -> None:
    """Apply ``pending`` entries of MIGRATIONS in order, each in its own transaction."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "applied_at TIMESTAMP NOT NULL)")
    for version, sql in pending:
        with _transaction(con):
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?)", [version, _now()])


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


def _write_dataset(con: duckdb.DuckDBPyConnection, dataset: Dataset, replace: bool) -> ImportReport:
    digest = dataset.content_hash or content_hash(dataset)
    existing = _dataset_row(con, dataset.name)
    status = "imported"
    if existing is not None:
        if existing[0] == digest:
            return _import_report(dataset, "unchanged", digest)
        if not replace:
            raise DatasetConflict(f"dataset {dataset.name!r} already exists with different content "
                                  f"(stored {existing[0][:12]}, new {digest[:12]}); import with --replace "
                                  "(replace=True) to overwrite it")
        _delete_rows(con, dataset.name)
        status = "replaced"
    for table, data in _dataset_tables(dataset).items():
        con.register("new_rows", data)
        con.execute(f"INSERT INTO {table} BY NAME SELECT ? AS dataset, * FROM new_rows", [dataset.name])
        con.unregister("new_rows")
    _insert_dataset_row(con, dataset, digest)
    return _import_report(dataset, status, digest)


def _dataset_tables(dataset: Dataset) -> dict[str, pa.Table]:
    """Arrow tables of the questions, branches and probes rows (without the dataset column)."""
    qs = dataset.questions
    branches = [(qi, bi, b) for qi, q in enumerate(qs) for bi, b in enumerate(q.branches)]
    counts = np.array([len(b.probes) for _, _, b in branches], dtype=np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return {
        "questions": pa.table({
            "q_idx": pa.array(range(len(qs)), pa.int32()),
            "text": [q.text for q in qs],
            "gold": [q.gold for q in qs],
            "probe_freq": pa.array([q.probe_freq for q in qs], pa.int32()),
            "has_trace": [q.final_answers_trace is not None for q in qs],
        }),
        "branches": pa.table({
            "q_idx": pa.array([qi for qi, _, _ in branches], pa.int32()),
            "b_idx": pa.array([bi for _, bi, _ in branches], pa.int32()),
            "tokens": pa.array([b.tokens for _, _, b in branches], pa.int64()),
            "final": [b.final for _, _, b in branches],
        }),
        "probes": pa.table({
            "q_idx": np.repeat(np.array([qi for qi, _, _ in branches], dtype=np.int32), counts),
            "b_idx": np.repeat(np.array([bi for _, bi, _ in branches], dtype=np.int32), counts),
            "k": (np.arange(counts.sum()) - starts).astype(np.int32),
            "answer": pa.array(list(chain.from_iterable(b.probes for _, _, b in branches)), pa.string()),
        }),
    }


def _insert_dataset_row(con: duckdb.DuckDBPyConnection, dataset: Dataset, digest: str) -> None:
    facts = dataset_facts(dataset)
    freqs = {q.probe_freq for q in dataset.questions}
    info = DatasetInfo(
        name=dataset.name, content_hash=digest, source=dataset.source,
        probe_freq=freqs.pop() if len(freqs) == 1 else None, n_questions=dataset.n_questions,
        n_branches_total=sum(len(q.branches) for q in dataset.questions), imported_at=_now(),
        pass_at_1=facts.pass_at_1, majority_all=facts.majority_all, any_correct=facts.any_correct,
    )
    names = [f.name for f in fields(DatasetInfo)]
    con.execute(f"INSERT INTO datasets ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                [getattr(info, n) for n in names])


def _import_report(dataset: Dataset, status: str, digest: str) -> ImportReport:
    n_branches = sum(len(q.branches) for q in dataset.questions)
    return ImportReport(dataset.name, status, dataset.n_questions, n_branches, digest)


def rebuild_questions(questions: list[tuple], branches: list[tuple]) -> tuple[Question, ...]:
    """Questions from rows ``(text, gold, probe_freq, has_trace)`` and ``(q_idx, tokens, final, probes)``.

    Both in index order, as the questions table and ``_BRANCHES_SQL`` (or a Parquet export) give them.
    """
    per_question: list[list[Branch]] = [[] for _ in questions]
    for q_idx, tokens, final, probes in branches:
        per_question[q_idx].append(Branch(probes=tuple(probes), tokens=tokens, final=final))
    return tuple(
        Question(text=text, gold=gold, probe_freq=freq, branches=tuple(bs),
                 final_answers_trace=tuple(b.final for b in bs) if has_trace else None)
        for (text, gold, freq, has_trace), bs in zip(questions, per_question, strict=True)
    )


def _dataset_row(con: duckdb.DuckDBPyConnection, name: str) -> tuple[str, str] | None:
    return con.execute("SELECT content_hash, source FROM datasets WHERE name = ?", [name]).fetchone()


def _require_dataset(con: duckdb.DuckDBPyConnection, name: str) -> tuple[str, str]:
    row = _dataset_row(con, name)
    if row is None:
        known = [n for (n,) in con.execute("SELECT name FROM datasets ORDER BY name").fetchall()]
        hint = f"known: {', '.join(known)}" if known else "none imported; use `python -m engine import PATH`"
        raise UnknownDataset(f"unknown dataset {name!r} ({hint})")
    return row


def _delete_rows(con: duckdb.DuckDBPyConnection, name: str) -> None:
    for table, column in _DATASET_TABLES:
        con.execute(f"DELETE FROM {table} WHERE {column} = ?", [name])


def _report(progress: Progress | None, done: int, total: int, label: str) -> None:
    if progress is not None:
        progress(done, total, label)


def _now() -> datetime:
    """Naive UTC: DuckDB TIMESTAMP has no zone."""
    return datetime.now(UTC).replace(tzinfo=None)
