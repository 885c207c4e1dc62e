"""`python -m engine import|export|datasets` run as real subprocesses against temporary databases."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from cli_runner import cli


@pytest.fixture
def real_db(real_store_path: Path, tmp_path: Path) -> Path:
    """A private copy of the store holding all 12 real datasets."""
    return Path(shutil.copy(real_store_path, tmp_path / "real.duckdb"))


def _changed_copy(source: Path, target: Path) -> Path:
    """``source`` with the first question's gold answer changed, written to ``target``."""
    doc = json.loads(source.read_bytes())
    doc[0]["gold_answer"] += "0"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(doc))
    return target


def test_import_real_file(tmp_db: Path, data_dir: Path) -> None:
    """Importing a real file prints one summary line and exits 0."""
    done = cli("import", data_dir / "Qwen3-8B" / "aime24.json", db=tmp_db)
    assert (done.returncode, done.stdout) == (0, "imported Qwen3-8B/aime24 (30 questions, 3840 branches)\n")


def test_reimport_is_a_noop(real_db: Path, data_dir: Path, db_snapshot) -> None:
    """Importing a file whose content is already stored reports 'unchanged' and writes nothing."""
    before = db_snapshot(real_db)
    done = cli("import", data_dir / "Qwen3-4B" / "hmmt25.json", db=real_db)
    assert (done.returncode, done.stdout) == (0, "unchanged Qwen3-4B/hmmt25 (30 questions, 3840 branches)\n")
    assert db_snapshot(real_db) == before


def test_changed_file_refused_then_replaced(real_db: Path, data_dir: Path, tmp_path: Path) -> None:
    """Changed content under a stored name exits 2 with one error line; --replace then overwrites it."""
    changed = _changed_copy(data_dir / "Qwen3-8B" / "aime24.json", tmp_path / "Qwen3-8B" / "aime24.json")
    refused = cli("import", changed, db=real_db)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: dataset 'Qwen3-8B/aime24' already exists with different content")
    assert refused.stderr.count("\n") == 1
    replaced = cli("import", changed, "--replace", db=real_db)
    assert (replaced.returncode, replaced.stdout) == (0, "replaced Qwen3-8B/aime24 (30 questions, 3840 branches)\n")


def test_malformed_file_exit_2_db_unchanged(real_db: Path, tmp_path: Path, db_snapshot) -> None:
    """A malformed file gives exit code 2, a single error line without traceback, and no db change."""
    bad = tmp_path / "Qwen3-8B" / "bad.json"
    bad.parent.mkdir()
    bad.write_text('[{"question": "q", "gold_answer": "1", "probe_freq": 500, "each_branch": [[[], 5]]}]')
    before = db_snapshot(real_db)
    done = cli("import", bad, db=real_db)
    assert done.returncode == 2
    assert done.stderr == (f"error: {bad}: question 0, branch 0: field 'each_branch[0]' must be a 3-list "
                           "[probe_list, branch_tokens, final_answer], got list of 2\n")
    assert db_snapshot(real_db) == before


def test_export_autotts_round_trip(real_db: Path, data_dir: Path, tmp_path: Path) -> None:
    """An exported AutoTTS file equals the original file as JSON values."""
    out = tmp_path / "out.json"
    done = cli("export", "Qwen3-0.6B/hmmt25", "--format", "autotts", "-o", out, db=real_db)
    assert (done.returncode, done.stdout) == (0, f"exported Qwen3-0.6B/hmmt25 to {out}\n")
    assert json.loads(out.read_bytes()) == json.loads((data_dir / "Qwen3-0.6B" / "hmmt25.json").read_bytes())


def test_export_parquet_default_name_readable(real_db: Path, tmp_path: Path) -> None:
    """Parquet export lands in cwd as <model>__<bench>.parquet, one row per branch, all probes kept."""
    done = cli("export", "Qwen3-8B/aime25", "--format", "parquet", db=real_db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "Qwen3-8B__aime25.parquet"
    rows = duckdb.sql(f"SELECT count(*), sum(len(probes)), count(DISTINCT q_idx) FROM '{out}'").fetchall()[0]
    con = duckdb.connect(str(real_db))
    try:
        n_probes = con.execute("SELECT count(*) FROM probes WHERE dataset = 'Qwen3-8B/aime25'").fetchone()[0]
    finally:
        con.close()
    assert rows == (3840, n_probes, 30)


def test_datasets_listing(real_db: Path) -> None:
    """`datasets` prints a header and one row per dataset with its facts; --json gives the same rows."""
    table = cli("datasets", db=real_db).stdout.splitlines()
    assert table[0].split()[:7] == ["name", "questions", "branches", "interval", "pass@1", "majority", "any"]
    assert len(table) == 13
    assert table[10].split()[:7] == ["Qwen3-8B/aime24", "30", "3840", "500", "75.7", "80.0", "93.3"]
    rows = json.loads(cli("datasets", "--json", db=real_db).stdout)
    assert [r["name"] for r in rows] == [line.split()[0] for line in table[1:]]


def test_db_flag_overrides_env(real_db: Path, tmp_path: Path) -> None:
    """--db wins over TTSLAB_DB, and the env database is not even created."""
    unused = tmp_path / "env.duckdb"
    done = cli("--db", real_db, "datasets", "--json", db=unused)
    assert len(json.loads(done.stdout)) == 12
    assert not unused.exists()


@pytest.mark.parametrize("command", [("datasets", "--json"), ("datasets", "--json", "--db")])
def test_db_flag_before_or_after_the_subcommand(real_db: Path, tmp_path: Path, command: tuple) -> None:
    """`--db FILE` works before the subcommand and after it (people type options last)."""
    unused = tmp_path / "env.duckdb"
    args = ("--db", real_db, *command) if command[-1] != "--db" else (*command, real_db)
    done = cli(*args, db=unused)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 12
    assert not unused.exists()


def test_import_with_db_after_the_paths(tmp_path: Path, data_dir: Path) -> None:
    """`import PATH --db FILE` imports into FILE, as the README's habit suggests."""
    target, unused = tmp_path / "mine.duckdb", tmp_path / "env.duckdb"
    done = cli("import", data_dir / "Qwen3-8B" / "aime24.json", "--db", target, db=unused)
    assert (done.returncode, done.stdout) == (0, "imported Qwen3-8B/aime24 (30 questions, 3840 branches)\n")
    assert target.exists() and not unused.exists()
