"""Fixtures for discovery tests: a private copy of the real store plus a relabelled held-out dataset."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from engine.dataset import Branch, Dataset, Question
from engine.store import Store

SEARCH = "Qwen3-8B/aime24"
HELDOUT = "Secret/heldout"
HELDOUT_MARK = "zzgold"  # every held-out answer and question carries it: it must never reach a prompt


def relabelled(ds: Dataset) -> Dataset:
    """``ds`` under another name with marked question texts and answers (same voting, same figures)."""
    def mark(a: str) -> str:
        return f"{HELDOUT_MARK}{a}"

    questions = tuple(
        Question(text=f"{HELDOUT_MARK} question {i}: {q.text}", gold=mark(q.gold), probe_freq=q.probe_freq,
                 branches=tuple(Branch(tuple(mark(p) for p in b.probes), b.tokens, mark(b.final)) for b in q.branches))
        for i, q in enumerate(ds.questions))
    return replace(ds, name=HELDOUT, questions=questions, content_hash="", source="relabelled")


def store_with_heldout(real_store_path: Path, path: Path) -> Store:
    """A private copy of the real store at ``path`` holding also ``Secret/heldout`` (Qwen3-0.6B/aime25
    relabelled)."""
    shutil.copy(real_store_path, path)
    store = Store(path)
    store.import_dataset(relabelled(store.load_dataset("Qwen3-0.6B/aime25")))
    return store


@pytest.fixture
def store_path(real_store_path: Path, tmp_path: Path) -> Path:
    """A private copy of the real store holding also ``Secret/heldout``."""
    path = tmp_path / "discovery.duckdb"
    store_with_heldout(real_store_path, path)
    return path


@pytest.fixture
def store(store_path: Path) -> Store:
    return Store(store_path)
