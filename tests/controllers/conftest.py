"""Real AutoTTS datasets from ../shared, loaded once per test session."""

from functools import cache

import pytest

from engine.paths import data_dir


@cache
def _load(name: str):
    from engine.formats.autotts import load_autotts_file

    return load_autotts_file(data_dir() / f"{name}.json", name)


@pytest.fixture(scope="session")
def real_dataset():
    """Factory: real_dataset("Qwen3-8B/aime24") -> Dataset (cached for the session)."""
    return _load
