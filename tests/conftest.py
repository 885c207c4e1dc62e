"""Shared fixtures: the real AutoTTS data from ../shared, DuckDB paths, and a small valid document."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from engine import paths
from engine.dataset import Dataset
from engine.formats.autotts import parse_autotts
from engine.store import Store

N_REAL_FILES = 12
TABLES = ("schema_migrations", "datasets", "questions", "branches", "probes", "results", "traces")

TINY_DOC: list[dict[str, Any]] = [
    {
        "question": "What is 3 + 4?",
        "final_answers_trace": ["7", "8", "7"],
        "each_branch": [[["No", "7"], 1200, "7"], [["8"], 900, "8"], [[], 300, "7"]],
        "gold_answer": "7",
        "probe_freq": 500,
    },
    {
        "question": "What is 2 * 5?",
        "each_branch": [[["10", "ERR", "10"], 1400, "10"], [["12"], 600, "12"]],
        "gold_answer": "10",
        "probe_freq": 500,
    },
]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data directory; fails (never skips) when the 12 files are not all there."""
    root = paths.data_dir()
    found = sorted(root.glob("*/*.json"))
    if len(found) != N_REAL_FILES:
        pytest.fail(f"expected {N_REAL_FILES} AutoTTS files <model>/<bench>.json under {root}, found {len(found)} "
                    "(the real data lives in ../shared/data/autotts; TTSLAB_DATA overrides)", pytrace=False)
    return root


@pytest.fixture
def tmp_db(tmp_path: Path) -> Path:
    """Path of a fresh (not yet created) DuckDB file."""
    return tmp_path / "ttslab.duckdb"


@pytest.fixture(scope="session")
def real_store_path(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A DuckDB file holding all 12 real datasets, imported once per session; do not modify it."""
    path = tmp_path_factory.mktemp("real_store") / "real.duckdb"
    Store(path).import_path(data_dir)
    return path


@pytest.fixture
def tiny_doc() -> list[dict[str, Any]]:
    """A small valid AutoTTS document (a fresh copy, free to mutate)."""
    return copy.deepcopy(TINY_DOC)


@pytest.fixture
def tiny_dataset() -> Dataset:
    """TINY_DOC parsed as the dataset ``m/tiny`` (with its content hash)."""
    return parse_autotts(json.dumps(TINY_DOC), name="m/tiny", source="m/tiny.json")


@pytest.fixture
def db_snapshot() -> Callable[[Path], tuple]:
    """Function giving a DuckDB file's row count per table and its (name, content hash) list."""

    def snapshot(path: Path) -> tuple:
        con = duckdb.connect(str(path))
        try:
            counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
            names = con.execute("SELECT name, content_hash FROM datasets ORDER BY name").fetchall()
        finally:
            con.close()
        return counts, names

    return snapshot
