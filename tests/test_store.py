"""The DuckDB store: schema and migrations, atomic imports, exact reloads, facts, results, locking."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from engine import store as store_module
from engine.dataset import Dataset
from engine.formats.autotts import FormatError, load_autotts_file, parse_autotts
from engine.store import DatasetConflict, Store, StoreBusy, UnknownDataset

# model/bench -> (mean branch tokens, mean probes/branch, pass@1, majority of all, any correct),
# as printed in docs/replay-semantics.md "Facts about the data".
REFERENCE_FACTS = {
    "Qwen3-0.6B/aime24": (15750, 30.7, 10.9, 23.3, 56.7),
    "Qwen3-0.6B/aime25": (13909, 27.0, 16.8, 33.3, 60.0),
    "Qwen3-0.6B/hmmt25": (14660, 28.6, 8.5, 16.7, 50.0),
    "Qwen3-1.7B/aime24": (16033, 31.0, 45.9, 73.3, 80.0),
    "Qwen3-1.7B/aime25": (16476, 31.7, 35.4, 43.3, 76.7),
    "Qwen3-1.7B/hmmt25": (17709, 34.1, 21.5, 23.3, 63.3),
    "Qwen3-4B/aime24": (13851, 27.0, 71.8, 80.0, 90.0),
    "Qwen3-4B/aime25": (17003, 32.8, 64.8, 76.7, 90.0),
    "Qwen3-4B/hmmt25": (18254, 35.2, 38.5, 43.3, 63.3),
    "Qwen3-8B/aime24": (14229, 27.7, 75.7, 80.0, 93.3),
    "Qwen3-8B/aime25": (17567, 34.1, 67.1, 76.7, 90.0),
    "Qwen3-8B/hmmt25": (19802, 38.3, 39.7, 50.0, 60.0),
}

RESULT_ROW = {"dataset": "m/tiny", "dataset_hash": "abc", "controller": "sc", "controller_hash": "def",
              "config": {"n": 8}, "shuffles": 100, "mode": "compat", "metrics": {"accuracy": 71.25}}


def _tiny(doc: list, name: str = "m/tiny") -> Dataset:
    return parse_autotts(json.dumps(doc), name=name, source=f"{name}.json")


def _query(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _write_doc(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_facts_match_reference_table(real_store_path: Path) -> None:
    """Stored facts and branch statistics of all 12 real files equal the published table."""
    stats = dict((name, (tokens, probes)) for name, tokens, probes in _query(real_store_path, """
        SELECT b.dataset, avg(b.tokens), (SELECT count(*) FROM probes p WHERE p.dataset = b.dataset) / count(*)
        FROM branches b GROUP BY b.dataset"""))
    got = {i.name: (round(stats[i.name][0]), round(stats[i.name][1], 1), round(i.pass_at_1, 1),
                    round(i.majority_all, 1), round(i.any_correct, 1)) for i in Store(real_store_path).list_datasets()}
    assert got == REFERENCE_FACTS


def test_dataset_rows_describe_real_files(real_store_path: Path, data_dir: Path) -> None:
    """Each imported real file gets its counts, interval, source path and content hash recorded."""
    info = {i.name: i for i in Store(real_store_path).list_datasets()}["Qwen3-4B/aime25"]
    path = data_dir / "Qwen3-4B" / "aime25.json"
    assert (info.n_questions, info.n_branches_total, info.probe_freq) == (30, 3840, 500)
    assert (info.source, info.content_hash) == (str(path), load_autotts_file(path).content_hash)


def test_load_rebuilds_every_real_dataset_exactly(real_store_path: Path, data_dir: Path) -> None:
    """Loading from the store gives back exactly the parsed questions, hash and source of each file."""
    store = Store(real_store_path)
    for path in sorted(data_dir.glob("*/*.json")):
        parsed = load_autotts_file(path)
        loaded = store.load_dataset(parsed.name)
        assert (loaded.content_hash, loaded.source) == (parsed.content_hash, parsed.source)
        assert loaded.questions == parsed.questions, parsed.name


def test_repeated_load_is_served_from_cache(real_store_path: Path) -> None:
    """A second load returns the same object, so its packed arrays are built only once."""
    store = Store(real_store_path)
    assert store.load_dataset("Qwen3-0.6B/aime24") is store.load_dataset("Qwen3-0.6B/aime24")


def test_import_statuses_and_conflict(tmp_db: Path, tiny_doc: list) -> None:
    """Same content is a no-op, changed content is refused unless replace=True, then it is served."""
    store = Store(tmp_db)
    assert store.import_dataset(_tiny(tiny_doc)).status == "imported"
    assert store.import_dataset(_tiny(tiny_doc)).status == "unchanged"
    tiny_doc[0]["gold_answer"] = "8"
    with pytest.raises(DatasetConflict, match="'m/tiny' already exists with different content"):
        store.import_dataset(_tiny(tiny_doc))
    assert store.import_dataset(_tiny(tiny_doc), replace=True).status == "replaced"
    assert store.load_dataset("m/tiny").questions[0].gold == "8"
    assert len(store.list_datasets()) == 1


def test_malformed_file_leaves_db_unchanged(tmp_db: Path, tmp_path: Path, tiny_doc: list, db_snapshot) -> None:
    """A file that fails validation changes nothing in a database that already holds data."""
    store = Store(tmp_db)
    store.import_dataset(_tiny(tiny_doc))
    before = db_snapshot(tmp_db)
    tiny_doc[1]["each_branch"][0] = [["10"], 5]
    with pytest.raises(FormatError, match="question 1, branch 0"):
        store.import_path(_write_doc(tmp_path / "m" / "bad.json", tiny_doc))
    assert db_snapshot(tmp_db) == before


def test_directory_import_is_all_or_nothing(tmp_db: Path, tmp_path: Path, tiny_doc: list, db_snapshot) -> None:
    """When one file of a directory conflicts, none of the directory's datasets is imported."""
    store = Store(tmp_db)
    _write_doc(tmp_path / "data" / "m" / "a.json", tiny_doc)
    _write_doc(tmp_path / "data" / "m" / "b.json", tiny_doc)
    tiny_doc[0]["gold_answer"] = "8"
    store.import_dataset(_tiny(tiny_doc, "m/b"))
    before = db_snapshot(tmp_db)
    with pytest.raises(DatasetConflict, match="'m/b'"):
        store.import_path(tmp_path / "data")
    assert db_snapshot(tmp_db) == before
    assert [r.status for r in store.import_path(tmp_path / "data", replace=True)] == ["imported", "replaced"]


def test_import_path_reports_progress(tmp_db: Path, tmp_path: Path, tiny_doc: list) -> None:
    """Directory import calls progress(done, total, label) for every file read and written."""
    for bench in ("a", "b"):
        _write_doc(tmp_path / "data" / "m" / f"{bench}.json", tiny_doc)
    calls = []
    Store(tmp_db).import_path(tmp_path / "data", progress=lambda *args: calls.append(args))
    assert [(done, total) for done, total, _ in calls] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert calls[-1][2] == "imported m/b"


def test_migrations_recorded_and_idempotent(tmp_db: Path, tiny_doc: list) -> None:
    """Opening a database again re-applies nothing and keeps its data; the version is recorded."""
    Store(tmp_db).import_dataset(_tiny(tiny_doc))
    Store(tmp_db)
    versions = _query(tmp_db, "SELECT version FROM schema_migrations ORDER BY version")
    assert versions == [(v,) for v, _ in store_module.MIGRATIONS]
    assert Store(tmp_db).has_dataset("m/tiny")


def test_new_migration_applied_once_on_open(tmp_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A migration appended to MIGRATIONS runs on the next open of an existing database, and only once."""
    Store(tmp_db)
    new = store_module.schema_version() + 1
    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, (new, "CREATE TABLE extra (x INT)")])
    Store(tmp_db)
    Store(tmp_db)
    assert _query(tmp_db, "SELECT version FROM schema_migrations ORDER BY version") == [
        (v,) for v, _ in store_module.MIGRATIONS]
    assert _query(tmp_db, "SELECT count(*) FROM extra") == [(0,)]


def test_unknown_dataset_lists_known_names(tmp_db: Path, tiny_doc: list) -> None:
    """Asking for a missing dataset names the ones that exist."""
    store = Store(tmp_db)
    store.import_dataset(_tiny(tiny_doc))
    with pytest.raises(UnknownDataset, match=r"unknown dataset 'm/nope' \(known: m/tiny\)"):
        store.load_dataset("m/nope")


def test_delete_removes_dataset_rows_but_keeps_results(tmp_db: Path, tiny_doc: list, db_snapshot) -> None:
    """Deleting a dataset empties its rows in every dataset table; cached results stay."""
    store = Store(tmp_db)
    store.import_dataset(_tiny(tiny_doc))
    store.put_result("k1", RESULT_ROW)
    store.delete_dataset("m/tiny")
    counts, names = db_snapshot(tmp_db)
    assert names == []
    assert {t: n for t, n in counts.items() if n} == {"schema_migrations": len(store_module.MIGRATIONS), "results": 1}
    with pytest.raises(UnknownDataset):
        store.delete_dataset("m/tiny")


def test_export_autotts_round_trip(real_store_path: Path, data_dir: Path, tmp_path: Path) -> None:
    """An AutoTTS export from the store equals the imported file as JSON values."""
    out = tmp_path / "out.json"
    Store(real_store_path).export_dataset("Qwen3-1.7B/hmmt25", out, "autotts")
    assert json.loads(out.read_bytes()) == json.loads((data_dir / "Qwen3-1.7B" / "hmmt25.json").read_bytes())


def test_export_parquet_one_row_per_branch(tmp_db: Path, tmp_path: Path, tiny_doc: list) -> None:
    """Parquet export has one row per branch with its probes as a list and the question's text and gold."""
    store = Store(tmp_db)
    store.import_dataset(_tiny(tiny_doc))
    out = tmp_path / "it's.parquet"
    store.export_dataset("m/tiny", out, "parquet")
    quoted = str(out).replace("'", "''")
    rows = duckdb.sql(f"SELECT q_idx, b_idx, question, gold, tokens, final, probes FROM '{quoted}'").fetchall()
    assert rows == [
        (0, 0, "What is 3 + 4?", "7", 1200, "7", ["No", "7"]),
        (0, 1, "What is 3 + 4?", "7", 900, "8", ["8"]),
        (0, 2, "What is 3 + 4?", "7", 300, "7", []),
        (1, 0, "What is 2 * 5?", "10", 1400, "10", ["10", "ERR", "10"]),
        (1, 1, "What is 2 * 5?", "10", 600, "12", ["12"]),
    ]


def test_export_rejects_unknown_format_and_dataset(tmp_db: Path, tmp_path: Path) -> None:
    """Export names the valid formats, and refuses datasets that do not exist."""
    store = Store(tmp_db)
    with pytest.raises(ValueError, match="use one of autotts, parquet"):
        store.export_dataset("m/tiny", tmp_path / "x.csv", "csv")
    with pytest.raises(UnknownDataset):
        store.export_dataset("m/tiny", tmp_path / "x.parquet", "parquet")


def test_results_round_trip_and_upsert(tmp_db: Path) -> None:
    """put_result stores JSON columns decoded on read; putting the same key again overwrites it."""
    store = Store(tmp_db)
    assert store.get_result("k1") is None
    store.put_result("k1", RESULT_ROW)
    got = store.get_result("k1")
    assert {k: got[k] for k in RESULT_ROW} == RESULT_ROW and got["key"] == "k1"
    store.put_result("k1", {**RESULT_ROW, "metrics": {"accuracy": 50.0}})
    assert store.get_result("k1")["metrics"] == {"accuracy": 50.0}
    assert _query(tmp_db, "SELECT count(*) FROM results") == [(1,)]


def test_put_result_names_missing_columns(tmp_db: Path) -> None:
    """A result row without the required columns is refused with their names."""
    with pytest.raises(ValueError, match="lacks dataset_hash, mode"):
        Store(tmp_db).put_result("k", {k: v for k, v in RESULT_ROW.items() if k not in ("dataset_hash", "mode")})


def test_traces_round_trip_filter_and_replace(tmp_db: Path) -> None:
    """Traces come back per (question, seed), filterable, and re-putting an episode replaces it."""
    store = Store(tmp_db)
    events = [{"op": "probe_new", "answer": "7", "cost": 500}, {"op": "done", "answer": "7"}]
    store.put_traces("k1", [(0, 0, events), (0, 1, events[:1]), (1, 0, [])])
    assert store.get_traces("k1") == [(0, 0, events), (0, 1, events[:1]), (1, 0, [])]
    assert store.get_traces("k1", q_idx=0, seed=1) == [(0, 1, events[:1])]
    assert store.get_traces("k1", seed=0) == [(0, 0, events), (1, 0, [])]
    store.put_traces("k1", [(0, 1, events)])
    assert store.get_traces("k1", q_idx=0) == [(0, 0, events), (0, 1, events)]
    assert store.get_traces("k2") == []


def test_missing_parent_directory_is_created(tmp_path: Path) -> None:
    """A store path in a directory that does not exist yet works (first run of the app or CLI)."""
    assert Store(tmp_path / "a" / "b" / "db.duckdb").list_datasets() == []


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    """Another process that opens the database, says so, and keeps it for ``seconds``."""
    code = (f"import duckdb, sys, time; con = duckdb.connect({str(path)!r}); print('locked', flush=True); "
            f"time.sleep({seconds})")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_busy_database_raises_store_busy(tmp_db: Path) -> None:
    """While another process holds the file past the timeout, operations fail with StoreBusy, not a crash."""
    store = Store(tmp_db, busy_timeout=0.3)
    holder = _hold_lock(tmp_db, 30)
    try:
        with pytest.raises(StoreBusy, match="is busy"):
            store.list_datasets()
    finally:
        holder.kill()
        holder.wait()


def test_busy_database_is_retried_until_free(tmp_db: Path) -> None:
    """An operation waits for another process to release the file instead of failing at once."""
    store = Store(tmp_db)
    holder = _hold_lock(tmp_db, 0.5)
    try:
        assert store.list_datasets() == []
    finally:
        holder.wait()


def test_concurrent_writers_in_one_process_all_succeed(tmp_db: Path) -> None:
    """Two app users caching results at once (threads, even the same key) both succeed; none is lost."""
    import threading

    store = Store(tmp_db)
    errors: list[str] = []

    def writer(i: int) -> None:
        try:
            for j in range(20):
                store.put_result("same", {**RESULT_ROW, "metrics": {"accuracy": float(i)}})
                store.put_result(f"k{i}-{j}", RESULT_ROW)
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.get_results([f"k{i}-{j}" for i in range(6) for j in range(20)])) == 120
    assert store.get_result("same")["metrics"]["accuracy"] in {float(i) for i in range(6)}
