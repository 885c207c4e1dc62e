"""Stores as files: attach, export-db and Parquet import, through the real CLI on real DuckDB files."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from cli_runner import cli

from engine import transfer
from engine.evaluate import ControllerSpec, evaluate
from engine.formats.autotts import content_hash
from engine.saved import list_controllers, save_controller
from engine.store import NotAStore, Store, StoreError

PAIR = ("Qwen3-8B/aime24", "Qwen3-4B/aime25")


@pytest.fixture
def source(real_store_path: Path, tmp_path: Path) -> Path:
    """A copy of the real store with a cached result (and traces) on each of PAIR and one saved controller."""
    path = Path(shutil.copy(real_store_path, tmp_path / "source.duckdb"))
    store = Store(path)
    for name in PAIR:
        evaluate(store.load_dataset(name), ControllerSpec.builtin("sc", {"k": 4}), shuffles=3, store=store,
                 traces=True, trusted=True)
    save_controller(store, "class Mine(LLMDesignedMethod):\n    pass\n", "Mine", "mine")
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_export_then_attach_round_trips_datasets_and_results(source: Path, tmp_path: Path) -> None:
    """export-db of two datasets with results, attached into a new store: same content hashes, same results."""
    out, target = tmp_path / "subset.duckdb", tmp_path / "target.duckdb"
    done = cli("export-db", out, "--datasets", ",".join(PAIR), "--with-results", db=source)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"wrote {out}"
    assert [i.name for i in Store(out).list_datasets()] == sorted(PAIR)
    done = cli("attach", out, "--with-results", db=target)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [f"imported {name} (30 questions, 3840 branches)" for name in sorted(PAIR)]
    original, copied = Store(source), Store(target)
    for name in PAIR:
        assert content_hash(copied.load_dataset(name)) == content_hash(original.load_dataset(name))
    sql = "SELECT key, dataset_hash, config, metrics FROM results ORDER BY key"
    assert _rows(target, sql) == _rows(source, sql) and len(_rows(target, sql)) == 2
    traces = "SELECT result_key, q_idx, seed, events FROM traces ORDER BY ALL"
    assert _rows(target, traces) == _rows(source, traces)


def test_attach_again_is_a_noop_and_the_source_is_only_read(source: Path, tmp_path: Path, db_snapshot) -> None:
    """Attaching the same content twice changes nothing the second time; the source file keeps its bytes."""
    target = tmp_path / "target.duckdb"
    before = _digest(source)
    assert cli("attach", source, "--datasets", PAIR[0], db=target).returncode == 0
    snapshot = db_snapshot(target)
    again = cli("attach", source, "--datasets", PAIR[0], "--with-results", db=target)
    assert again.stdout.splitlines()[0] == f"unchanged {PAIR[0]} (30 questions, 3840 branches)"
    assert db_snapshot(target)[1] == snapshot[1]
    assert _digest(source) == before


def test_different_content_under_the_same_name_needs_replace(source: Path, tmp_path: Path, tiny_dataset) -> None:
    """A stored dataset whose content differs from the attached one is refused; --replace overwrites it."""
    target = tmp_path / "target.duckdb"
    Store(target).import_dataset(tiny_dataset.__class__(PAIR[0], tiny_dataset.questions, source="x"))
    refused = cli("attach", source, "--datasets", PAIR[0], db=target)
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"error: dataset '{PAIR[0]}' already exists with different content")
    assert Store(target).load_dataset(PAIR[0]).n_questions == 2
    replaced = cli("attach", source, "--datasets", PAIR[0], "--replace", db=target)
    assert replaced.stdout.splitlines()[0] == f"replaced {PAIR[0]} (30 questions, 3840 branches)"
    assert Store(target).load_dataset(PAIR[0]).n_questions == 30


def test_unknown_names_and_bad_files_are_one_line_errors(source: Path, tmp_path: Path, db_snapshot) -> None:
    """A missing dataset name, a foreign DuckDB file, a truncated store: exit 2, one line, target unchanged."""
    target = tmp_path / "target.duckdb"
    Store(target)
    before = db_snapshot(target)
    done = cli("attach", source, "--datasets", "Qwen3-8B/nope", db=target)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "has no dataset 'Qwen3-8B/nope'" in done.stderr
    foreign = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE t (x INT)")
    con.close()
    done = cli("attach", foreign, db=target)
    assert done.returncode == 2 and "not a TTS Lab store" in done.stderr
    cut = tmp_path / "cut.duckdb"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    done = cli("attach", cut, db=target)
    assert done.returncode == 2 and "truncated" in done.stderr
    assert db_snapshot(target) == before


def test_attach_copies_saved_controllers_when_asked(source: Path, tmp_path: Path) -> None:
    """--with-saved brings the saved controllers along (ids are content hashes, so twice is a no-op)."""
    target = Store(tmp_path / "target.duckdb")
    report = transfer.attach(target, source, datasets=[], with_saved=True)
    assert report.saved == 1 and [c.name for c in list_controllers(target)] == ["mine"]
    assert transfer.attach(target, source, datasets=[], with_saved=True).saved == 0


def test_export_db_refuses_an_existing_file_and_unknown_names(source: Path, tmp_path: Path) -> None:
    """export-db never overwrites a file, and a bad name leaves no half-written store behind."""
    existing = tmp_path / "there.duckdb"
    existing.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        transfer.export_db(Store(source), existing)
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(LookupError, match="has no dataset 'nope/x'"):
        transfer.export_db(Store(source), tmp_path / "new.duckdb", datasets=["nope/x"])
    assert not (tmp_path / "new.duckdb").exists()


def test_attach_refuses_the_current_store_and_bad_sources(source: Path, tmp_path: Path) -> None:
    """The store itself, a text file: errors, not a corrupted copy."""
    with pytest.raises(StoreError, match="is the current store"):
        transfer.attach(Store(source), source)
    text = tmp_path / "t.duckdb"
    text.write_text("x" * 20000)
    with pytest.raises(NotAStore):
        transfer.attach(Store(tmp_path / "fresh.duckdb"), text)


def test_parquet_export_imports_back_with_the_same_content_hash(real_store_path: Path, tmp_path: Path) -> None:
    """`export --format parquet` then `import x.parquet` into another store: the same dataset, hash for hash."""
    out = tmp_path / "ds.parquet"
    assert cli("export", PAIR[0], "--format", "parquet", "-o", out, db=real_store_path).returncode == 0
    target = tmp_path / "target.duckdb"
    done = cli("import", out, db=target)
    assert (done.returncode, done.stdout) == (0, f"imported {PAIR[0]} (30 questions, 3840 branches)\n")
    original = Store(real_store_path).load_dataset(PAIR[0])
    assert content_hash(Store(target).load_dataset(PAIR[0])) == content_hash(original) == original.content_hash
    assert cli("import", out, db=target).stdout.startswith("unchanged")
    assert cli("import", out, db=real_store_path).stdout.startswith("unchanged")  # same hash as the JSON import


def test_parquet_that_is_not_an_export_is_refused(tmp_path: Path) -> None:
    """A Parquet file without the export's columns, or not Parquet at all: one error line, nothing stored."""
    other = tmp_path / "other.parquet"
    duckdb.sql(f"COPY (SELECT 1 AS a) TO '{other}' (FORMAT parquet)")
    done = cli("import", other, db=tmp_path / "t.duckdb")
    assert done.returncode == 2 and "missing columns dataset, q_idx" in done.stderr
    fake = tmp_path / "fake.parquet"
    fake.write_text(json.dumps({"not": "parquet"}))
    done = cli("import", fake, db=tmp_path / "t.duckdb")
    assert done.returncode == 2 and "not a readable Parquet file" in done.stderr
    assert Store(tmp_path / "t.duckdb").list_datasets() == []


def test_export_bytes_while_the_store_is_open_in_this_process(source: Path, tmp_path: Path) -> None:
    """A download of a subset works while another connection of this process uses the store (app sessions)."""
    store = Store(source)
    with store.connect() as busy:
        busy.execute("SELECT count(*) FROM datasets").fetchone()
        data = transfer.export_bytes(store, [PAIR[1]], with_results=True)
    assert data[8:12] == b"DUCK"
    kept = tmp_path / "kept" / "copy.duckdb"
    kept.parent.mkdir()
    assert transfer.adopt_file(data, kept) == [PAIR[1]]
    assert [i.name for i in Store(kept).list_datasets()] == [PAIR[1]]
    assert len(_rows(kept, "SELECT key FROM results")) == 1


@pytest.mark.parametrize("make", [lambda data: b"not a database" * 1000, lambda data: data[: len(data) // 2]])
def test_adopt_file_keeps_nothing_that_is_not_a_whole_store(source: Path, tmp_path: Path, make) -> None:
    """Uploaded bytes that are not DuckDB, or a truncated store, are refused and leave no file behind."""
    folder = tmp_path / "stores"
    folder.mkdir()
    with pytest.raises(NotAStore):
        transfer.adopt_file(make(source.read_bytes()), folder / "up.duckdb")
    assert list(folder.iterdir()) == []


def test_adopt_file_never_overwrites(tmp_path: Path, source: Path) -> None:
    """An upload under the name of an existing store is refused; the existing file is untouched."""
    before = _digest(source)
    with pytest.raises(FileExistsError, match="exists already"):
        transfer.adopt_file(b"x", source)
    assert _digest(source) == before
