"""Moving trajectories between DuckDB stores and Parquet files: attach, export-db, Parquet import.

A TTS Lab store is a file people pass around. ``attach`` copies chosen datasets of another store
(opened read-only, checked like any store) into this one, optionally with their cached results,
traces and saved controllers; ``export_db`` writes a subset as a new standalone store;
``import_parquet`` reads back the engine's own Parquet exports. Content hashes decide duplicates,
as for JSON import: the same content is a no-op, other content under the same name needs ``replace``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from engine.dataset import Dataset
from engine.formats.autotts import FormatError
from engine.store import (
    _DATASET_TABLES,
    DatasetConflict,
    ImportReport,
    Store,
    StoreError,
    UnknownDataset,
    _transaction,
    check_file,
    check_schema,
    peek_datasets,
    rebuild_questions,
)

SOURCE, TARGET = "ttslab_source", "ttslab_target"  # aliases of attached files
PARQUET_COLUMNS = ("dataset", "q_idx", "question", "gold", "probe_freq", "b_idx", "tokens", "final", "probes")


@dataclass(frozen=True)
class TransferReport:
    """What a copy between stores did: one ImportReport per dataset, and the extra rows it added."""

    datasets: list[ImportReport]
    results: int = 0
    traces: int = 0
    saved: int = 0

    def lines(self) -> list[str]:
        """Human summary, one line per dataset then one for the extras (if any were copied)."""
        out = [f"{r.status} {r.name} ({r.n_questions} questions, {r.n_branches} branches)" for r in self.datasets]
        if self.results or self.traces or self.saved:
            out.append(f"copied {self.results} results, {self.traces} traces, {self.saved} saved controllers")
        return out


@dataclass(frozen=True)
class _Copy:
    """One copy between two catalogs of a connection: what to take and how to treat duplicates."""

    src: str
    dst: str
    label: Path  # the source file, for messages
    datasets: list[str] | None
    with_results: bool
    with_saved: bool
    replace: bool = False


def attach(store: Store, source: str | Path, *, datasets: list[str] | None = None, with_results: bool = False,
           with_saved: bool = False, replace: bool = False) -> TransferReport:
    """Copy ``datasets`` (default: all) of the store file ``source`` into ``store``, all or nothing.

    ``with_results`` also copies the cached results of those datasets (by content hash) and their
    traces; ``with_saved`` the saved controllers. ``source`` is attached read-only.
    """
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such store file")
    if source.resolve() == store.path.resolve():
        raise StoreError(f"{source} is the current store; attach another file")
    check_file(source)
    with store.writing() as con:
        _attach(con, source, SOURCE, read_only=True)
        try:
            plan = _Copy(SOURCE, _current(con), source, datasets, with_results, with_saved, replace)
            return _copy(con, plan)
        finally:
            con.execute(f"DETACH {SOURCE}")


def export_db(store: Store, target: str | Path, *, datasets: list[str] | None = None,
              with_results: bool = False, with_saved: bool = False) -> TransferReport:
    """Write ``datasets`` (default: all) of ``store`` as a new standalone store file ``target``.

    The new file is attached to a connection of ``store`` (not the other way round), so an app
    whose other sessions keep using ``store`` is not disturbed.
    """
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"{target} exists; export-db writes a new file (pick another name or delete it)")
    Store(target)  # an empty store of the current schema
    try:
        with store.connect() as con:
            _attach(con, target, TARGET, read_only=False)
            try:
                with _transaction(con):
                    return _copy(con, _Copy(_current(con), TARGET, store.path, datasets, with_results, with_saved))
            finally:
                con.execute(f"DETACH {TARGET}")
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def export_bytes(store: Store, datasets: list[str] | None = None, *, with_results: bool = False,
                 with_saved: bool = False) -> bytes:
    """The bytes of a standalone store holding ``datasets`` of ``store`` (for a download)."""
    with tempfile.TemporaryDirectory(prefix="ttslab-export-") as tmp:
        out = Path(tmp) / "export.duckdb"
        export_db(store, out, datasets=datasets, with_results=with_results, with_saved=with_saved)
        return out.read_bytes()


def adopt_file(data: bytes, target: Path) -> list[str]:
    """Keep ``data`` as the store file ``target`` only if it is a whole TTS Lab store; its dataset names.

    The bytes are checked in a hidden temporary file beside ``target`` and renamed into place after;
    anything wrong (not DuckDB, truncated, foreign, newer schema, ``target`` exists) leaves no file.
    """
    if target.exists():
        raise FileExistsError(f"a store named {target.name} exists already; rename the file and upload it again")
    fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=".tmp", dir=target.parent)
    tmp_path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        names = peek_datasets(tmp_path)
        tmp_path.rename(target)
        return names
    finally:
        tmp_path.unlink(missing_ok=True)
        tmp_path.with_name(tmp_path.name + ".wal").unlink(missing_ok=True)


def _attach(con: duckdb.DuckDBPyConnection, path: Path, alias: str, *, read_only: bool) -> None:
    mode = " (READ_ONLY)" if read_only else ""
    try:
        con.execute(f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS {alias}{mode}")
    except duckdb.Error as exc:
        raise StoreError(f"{path} cannot be attached: {str(exc).splitlines()[0]}") from None


def _current(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("SELECT current_database()").fetchone()[0]


def _copy(con: duckdb.DuckDBPyConnection, plan: _Copy) -> TransferReport:
    if not check_schema(con, plan.label, plan.src):
        raise StoreError(f"{plan.label} is an empty store: nothing to copy")
    src = f'"{plan.src}"'
    rows = {name: (digest, nq, nb) for name, digest, nq, nb in con.execute(
        f"SELECT name, content_hash, n_questions, n_branches_total FROM {src}.datasets ORDER BY name").fetchall()}
    names = list(rows) if plan.datasets is None else plan.datasets
    unknown = [n for n in names if n not in rows]
    if unknown:
        raise UnknownDataset(f"{plan.label} has no dataset {', '.join(map(repr, unknown))} "
                             f"(it has: {', '.join(rows) or 'none'})")
    reports = [_copy_dataset(con, plan, name, *rows[name]) for name in names]
    results = traces = saved = 0
    if plan.with_results:
        results, traces = _copy_results(con, plan, sorted({rows[n][0] for n in names}))
    if plan.with_saved and "saved_controllers" in _tables(con, plan.src):
        saved = con.execute(f'INSERT INTO "{plan.dst}".saved_controllers BY NAME SELECT * FROM '
                            f'{src}.saved_controllers WHERE id NOT IN (SELECT id FROM "{plan.dst}".saved_controllers)'
                            ).fetchone()[0]
    return TransferReport(reports, results, traces, saved)


def _copy_dataset(con: duckdb.DuckDBPyConnection, plan: _Copy, name: str, digest: str, n_questions: int,
                  n_branches: int) -> ImportReport:
    src, dst = f'"{plan.src}"', f'"{plan.dst}"'
    existing = con.execute(f"SELECT content_hash FROM {dst}.datasets WHERE name = ?", [name]).fetchone()
    status = "imported"
    if existing is not None:
        if existing[0] == digest:
            return ImportReport(name, "unchanged", n_questions, n_branches, digest)
        if not plan.replace:
            raise DatasetConflict(f"dataset {name!r} already exists with different content (stored "
                                  f"{existing[0][:12]}, attached {digest[:12]}); use --replace to overwrite it")
        for table, column in _DATASET_TABLES:
            con.execute(f"DELETE FROM {dst}.{table} WHERE {column} = ?", [name])
        status = "replaced"
    for table, column in _DATASET_TABLES:
        con.execute(f"INSERT INTO {dst}.{table} BY NAME SELECT * FROM {src}.{table} WHERE {column} = ?", [name])
    return ImportReport(name, status, n_questions, n_branches, digest)


def _copy_results(con: duckdb.DuckDBPyConnection, plan: _Copy, hashes: list[str]) -> tuple[int, int]:
    """Results of the given dataset hashes that the target lacks (keys hash everything), and their traces."""
    src, dst = f'"{plan.src}"', f'"{plan.dst}"'
    keys = [k for (k,) in con.execute(
        f"SELECT key FROM {src}.results WHERE dataset_hash IN (SELECT unnest(?::VARCHAR[])) "
        f"AND key NOT IN (SELECT key FROM {dst}.results)", [hashes]).fetchall()]
    if not keys:
        return 0, 0
    con.execute(f"INSERT INTO {dst}.results BY NAME SELECT * FROM {src}.results WHERE key IN "
                "(SELECT unnest(?::VARCHAR[]))", [keys])
    traces = con.execute(f"INSERT INTO {dst}.traces BY NAME SELECT * FROM {src}.traces WHERE result_key IN "
                         "(SELECT unnest(?::VARCHAR[]))", [keys]).fetchone()[0]
    return len(keys), traces


def _tables(con: duckdb.DuckDBPyConnection, catalog: str) -> set[str]:
    return {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ?",
                                      [catalog]).fetchall()}


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
