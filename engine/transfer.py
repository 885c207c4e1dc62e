"""Moving trajectories between DuckDB stores and Parquet files: attach, export-db, Parquet import.

A TTS Lab store is a file people pass around. ``attach`` copies chosen datasets of another store
(opened read-only, checked like any store) into this one, optionally with their cached results,
traces and saved controllers; ``export_db`` writes a subset as a new standalone store;
``import_parquet`` reads back the engine's own Parquet exports. Content hashes decide duplicates,
as for JSON import: the same content is a no-op, other content under the same name needs ``replace``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from engine.dataset import Dataset
from engine.formats.autotts import FormatError
from engine.store import (
    DatasetConflict,
    ImportReport,
    Store,
    StoreError,
    UnknownDataset,
    check_file,
    check_schema,
    rebuild_questions,
)

ALIAS = "ttslab_source"
# Tables copied with a dataset, by the column naming it (parents last, as _DATASET_TABLES).
_ROWS = (("questions", "dataset"), ("branches", "dataset"), ("probes", "dataset"), ("datasets", "name"))
PARQUET_COLUMNS = ("dataset", "q_idx", "question", "gold", "probe_freq", "b_idx", "tokens", "final", "probes")


@dataclass(frozen=True)
class TransferReport:
    """What a copy between stores did: one ImportReport per dataset, and the extra rows it added."""

    datasets: list[ImportReport]
    results: int = 0
    traces: int = 0
    saved: int = 0

    def lines(self) -> list[str]:
        """Human summary, one line per dataset then one for the extras (if any were asked for)."""
        out = [f"{r.status} {r.name} ({r.n_questions} questions, {r.n_branches} branches)" for r in self.datasets]
        if self.results or self.traces or self.saved:
            out.append(f"copied {self.results} results, {self.traces} traces, {self.saved} saved controllers")
        return out


def attach(store: Store, source: str | Path, *, datasets: list[str] | None = None, with_results: bool = False,
           with_saved: bool = False, replace: bool = False) -> TransferReport:
    """Copy ``datasets`` (default: all) of the store file ``source`` into ``store``, all or nothing.

    ``with_results`` also copies the cached results of those datasets (by content hash) and their
    traces; ``with_saved`` the saved controllers. ``source`` is only read.
    """
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such store file")
    if source.resolve() == store.path.resolve():
        raise StoreError(f"{source} is the current store; attach another file")
    check_file(source)
    with store.writing() as con:
        try:
            con.execute(f"ATTACH '{_quoted(source)}' AS {ALIAS} (READ_ONLY)")
        except duckdb.Error as exc:
            raise StoreError(f"{source} cannot be attached: {str(exc).splitlines()[0]}") from None
        try:
            return _copy(con, source, datasets, with_results, with_saved, replace)
        finally:
            con.execute(f"DETACH {ALIAS}")


def export_db(store: Store, target: str | Path, *, datasets: list[str] | None = None,
              with_results: bool = False, with_saved: bool = False) -> TransferReport:
    """Write ``datasets`` (default: all) of ``store`` as a new standalone store file ``target``."""
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"{target} exists; export-db writes a new file (pick another name or delete it)")
    known = {i.name for i in store.list_datasets()}
    missing = sorted(set(datasets or []) - known)
    if missing:
        raise UnknownDataset(f"unknown dataset(s) {', '.join(missing)} (known: {', '.join(sorted(known))})")
    try:
        return attach(Store(target), store.path, datasets=datasets, with_results=with_results, with_saved=with_saved)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def store_summary(path: str | Path) -> list[str]:
    """Dataset names of a store file, read without changing it (validated as ``attach`` does)."""
    path = Path(path)
    check_file(path)
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{_quoted(path)}' AS {ALIAS} (READ_ONLY)")
        if not check_schema(con, path, ALIAS):
            return []
        return [n for (n,) in con.execute(f"SELECT name FROM {ALIAS}.datasets ORDER BY name").fetchall()]
    except duckdb.Error as exc:
        raise StoreError(f"{path} cannot be read as a TTS Lab store: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def _copy(con: duckdb.DuckDBPyConnection, source: Path, datasets: list[str] | None, with_results: bool,
          with_saved: bool, replace: bool) -> TransferReport:
    applied = check_schema(con, source, ALIAS)
    if not applied:
        raise StoreError(f"{source} is an empty store: nothing to attach")
    rows = {name: (digest, nq, nb) for name, digest, nq, nb in con.execute(
        f"SELECT name, content_hash, n_questions, n_branches_total FROM {ALIAS}.datasets ORDER BY name").fetchall()}
    names = list(rows) if datasets is None else datasets
    unknown = [n for n in names if n not in rows]
    if unknown:
        raise UnknownDataset(f"{source} has no dataset {', '.join(map(repr, unknown))} "
                             f"(it has: {', '.join(rows) or 'none'})")
    reports = [_copy_dataset(con, name, *rows[name], replace) for name in names]
    hashes = sorted({rows[n][0] for n in names})
    results = traces = saved = 0
    if with_results:
        results, traces = _copy_results(con, hashes)
    if with_saved and "saved_controllers" in _tables(con):
        saved = _insert_new(con, "saved_controllers", "id")
    return TransferReport(reports, results, traces, saved)


def _copy_dataset(con: duckdb.DuckDBPyConnection, name: str, digest: str, n_questions: int, n_branches: int,
                  replace: bool) -> ImportReport:
    existing = con.execute("SELECT content_hash FROM datasets WHERE name = ?", [name]).fetchone()
    status = "imported"
    if existing is not None:
        if existing[0] == digest:
            return ImportReport(name, "unchanged", n_questions, n_branches, digest)
        if not replace:
            raise DatasetConflict(f"dataset {name!r} already exists with different content (stored "
                                  f"{existing[0][:12]}, attached {digest[:12]}); use --replace to overwrite it")
        for table, column in _ROWS:
            con.execute(f"DELETE FROM {table} WHERE {column} = ?", [name])
        status = "replaced"
    for table, column in _ROWS:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {ALIAS}.{table} WHERE {column} = ?", [name])
    return ImportReport(name, status, n_questions, n_branches, digest)


def _copy_results(con: duckdb.DuckDBPyConnection, hashes: list[str]) -> tuple[int, int]:
    """Results of the given dataset hashes that this store lacks (keys hash everything), and their traces."""
    keys = [k for (k,) in con.execute(
        f"SELECT key FROM {ALIAS}.results WHERE dataset_hash IN (SELECT unnest(?::VARCHAR[])) "
        "AND key NOT IN (SELECT key FROM results)", [hashes]).fetchall()]
    if not keys:
        return 0, 0
    con.execute(f"INSERT INTO results BY NAME SELECT * FROM {ALIAS}.results WHERE key IN "
                "(SELECT unnest(?::VARCHAR[]))", [keys])
    traces = con.execute(f"INSERT INTO traces BY NAME SELECT * FROM {ALIAS}.traces WHERE result_key IN "
                         "(SELECT unnest(?::VARCHAR[]))", [keys]).fetchone()[0]
    return len(keys), traces


def _insert_new(con: duckdb.DuckDBPyConnection, table: str, key: str) -> int:
    return con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {ALIAS}.{table} WHERE {key} NOT IN "
                       f"(SELECT {key} FROM {table})").fetchone()[0]


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ?",
                                      [ALIAS]).fetchall()}


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


# -- Parquet ------------------------------------------------------------------------------------

def import_parquet(store: Store, path: str | Path, *, replace: bool = False) -> list[ImportReport]:
    """Import a Parquet file written by ``export --format parquet`` (one row per branch), all or nothing."""
    path = Path(path)
    found = _read_parquet(path)
    return store.import_datasets([_parquet_dataset(name, rows, str(path)) for name, rows in found.items()],
                                 replace=replace)


def _read_parquet(path: Path) -> dict[str, list[tuple]]:
    """Rows (q_idx, question, gold, probe_freq, has_trace, b_idx, tokens, final, probes) by dataset."""
    con = duckdb.connect(":memory:")
    try:
        try:
            columns = {c for (c, *_) in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()}
        except duckdb.Error as exc:
            raise FormatError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
        missing = [c for c in PARQUET_COLUMNS if c not in columns]
        if missing:
            raise FormatError(f"{path}: not a TTS Lab Parquet export (missing columns {', '.join(missing)})")
        trace = "has_trace" if "has_trace" in columns else "false"
        rows = con.execute(
            f"SELECT dataset, q_idx, question, gold, probe_freq, {trace}, b_idx, tokens, final, probes "
            "FROM read_parquet(?) ORDER BY dataset, q_idx, b_idx", [str(path)]).fetchall()
    finally:
        con.close()
    if not rows:
        raise FormatError(f"{path}: no rows")
    found: dict[str, list[tuple]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(row[1:])
    return found


def _parquet_dataset(name: str, rows: list[tuple], source: str) -> Dataset:
    questions: dict[int, tuple] = {}
    n_branches: dict[int, int] = {}
    branches = []
    for q_idx, text, gold, freq, has_trace, b_idx, tokens, final, probes in rows:
        questions.setdefault(q_idx, (text, gold, freq, bool(has_trace)))
        if b_idx != n_branches.get(q_idx, 0):
            raise FormatError(f"{source}: dataset {name!r}, question {q_idx}: branch {b_idx} is missing or repeated")
        n_branches[q_idx] = b_idx + 1
        branches.append((q_idx, tokens, final, list(probes or [])))
    if sorted(questions) != list(range(len(questions))):
        raise FormatError(f"{source}: dataset {name!r}: question indices are not 0..{len(questions) - 1}")
    return Dataset(name=name, questions=rebuild_questions(list(questions.values()), branches), source=source)
