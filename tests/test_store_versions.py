"""Schema versions and damaged files: what the store does with a file before it writes anything."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest

from engine import store as store_module
from engine.store import NotAStore, SchemaTooNew, Store


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _untouched(path: Path) -> tuple[str, list[str]]:
    """The file's bytes and the files beside it: what 'nothing written' compares."""
    return _digest(path), sorted(p.name for p in path.parent.iterdir())


def _versions(path: Path) -> list[int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [v for (v,) in con.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()]
    finally:
        con.close()


def test_newer_schema_is_refused_naming_both_versions(tmp_db: Path) -> None:
    """A store written by a newer engine opens with a message naming its version and ours; no write."""
    Store(tmp_db)
    newer = store_module.schema_version() + 7
    con = duckdb.connect(str(tmp_db))
    con.execute("INSERT INTO schema_migrations VALUES (?, now())", [newer])
    con.close()
    before = _untouched(tmp_db)
    with pytest.raises(SchemaTooNew, match=f"schema version {newer}, newer than this engine's "
                                           f"{store_module.schema_version()}"):
        Store(tmp_db)
    assert _untouched(tmp_db) == before


def test_older_store_is_backed_up_then_migrated(tmp_db: Path, tiny_dataset, monkeypatch) -> None:
    """A store made with the first migration only gets a backup copy beside it, then the other migrations."""
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:1])
    Store(tmp_db).import_dataset(tiny_dataset)
    old_bytes = _digest(tmp_db)
    monkeypatch.undo()
    store = Store(tmp_db)
    assert store.backup == tmp_db.with_name(f"{tmp_db.name}.v1.bak")
    assert _versions(store.backup) == [1]
    assert _digest(store.backup) == old_bytes
    assert _versions(tmp_db) == [v for v, _ in store_module.MIGRATIONS]
    assert store.has_dataset(tiny_dataset.name)
    assert Store(tmp_db).backup is None  # up to date now: no second copy


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"name,score\nalice,3\n" * 400, "is not a DuckDB database"),
])
def test_non_duckdb_files_are_refused_untouched(tmp_path: Path, content: bytes, message: str) -> None:
    """An empty file or a CSV under a .duckdb name: a clear error, the bytes unchanged, no WAL left."""
    path = tmp_path / "x.duckdb"
    path.write_bytes(content)
    before = _untouched(path)
    with pytest.raises(NotAStore, match=message):
        Store(path)
    assert _untouched(path) == before


@pytest.mark.parametrize("fraction", [0.003, 0.5, 0.99])
def test_truncated_store_is_refused_untouched(real_store_path: Path, tmp_path: Path, fraction: float) -> None:
    """A store cut short (a broken download) is refused as truncated or damaged, and left as it was."""
    data = real_store_path.read_bytes()
    path = tmp_path / "cut.duckdb"
    path.write_bytes(data[: int(len(data) * fraction)])
    before = _untouched(path)
    with pytest.raises(NotAStore, match="truncated"):
        Store(path)
    assert _untouched(path) == before


def test_foreign_duckdb_file_is_refused_untouched(tmp_path: Path) -> None:
    """Another program's DuckDB database is not migrated into a store: it is refused, table names shown."""
    path = tmp_path / "sales.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE orders AS SELECT range AS id FROM range(10)")
    con.close()
    before = _untouched(path)
    with pytest.raises(NotAStore, match=r"not a TTS Lab store .*orders"):
        Store(path)
    assert _untouched(path) == before


def test_store_missing_a_table_is_refused(tmp_db: Path) -> None:
    """A store whose recorded migrations do not match its tables (one dropped) is refused by name."""
    Store(tmp_db)
    con = duckdb.connect(str(tmp_db))
    con.execute("DROP TABLE traces")
    con.close()
    with pytest.raises(NotAStore, match="missing tables traces"):
        Store(tmp_db)


def test_empty_duckdb_database_becomes_a_store(tmp_path: Path) -> None:
    """A DuckDB database without any table (just created) is initialised: nothing in it can be lost."""
    path = tmp_path / "blank.duckdb"
    duckdb.connect(str(path)).close()
    assert Store(path).list_datasets() == []
    assert _versions(path) == [v for v, _ in store_module.MIGRATIONS]


def test_copy_of_a_store_opens(real_store_path: Path, tmp_path: Path) -> None:
    """The whole-file checks accept a plain copy of a real store (no false 'truncated')."""
    copy = Path(shutil.copy(real_store_path, tmp_path / "copy.duckdb"))
    assert len(Store(copy).list_datasets()) == 12


def test_cli_on_a_foreign_file_is_one_error_line(tmp_path: Path) -> None:
    """`python -m engine datasets --db NOT_A_STORE` exits 2 with one line and leaves the file alone."""
    from cli_runner import cli

    path = tmp_path / "notes.duckdb"
    path.write_text("just some notes\n" * 1000)
    done = cli("datasets", "--db", path, db=tmp_path / "unused.duckdb")
    assert done.returncode == 2
    assert done.stderr == f"error: {path} is not a DuckDB database (no DuckDB header)\n"
    assert path.read_text() == "just some notes\n" * 1000


def test_cli_names_the_backup_of_a_migrated_store(tmp_db: Path, monkeypatch) -> None:
    """The CLI says where the pre-migration copy went when it migrates an older store."""
    from cli_runner import cli

    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:1])
    Store(tmp_db)
    done = cli("datasets", db=tmp_db)
    assert done.returncode == 0, done.stderr
    assert f"is kept at {tmp_db}.v1.bak" in done.stderr


def test_tables_a_later_migration_drops_are_not_required(tmp_db: Path, monkeypatch) -> None:
    """The whole-store check follows the migrations: a table created then dropped is not 'missing'."""
    new = store_module.schema_version() + 1
    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, (new, "CREATE TABLE tmp_x (a INT)"),
                                                     (new + 1, "DROP TABLE tmp_x")])
    Store(tmp_db)
    assert Store(tmp_db).backup is None
