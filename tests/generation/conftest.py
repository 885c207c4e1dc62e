"""Fixtures of the generation tests: one scripted server and one backend per module (litellm's first
call in a process is slow, so it is paid once), a fresh store per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import scripted_model
from servers import ScriptedServer, scripted_server

from engine.generation.openai_backend import OpenAIBackend
from engine.store import Store

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    """The scripted server (content: tests/generation/scripted_model.py), for the whole module."""
    with scripted_server(scripted_model.reply) as srv:
        yield srv


@pytest.fixture(scope="module")
def backend(server: ScriptedServer) -> Iterator[OpenAIBackend]:
    b = OpenAIBackend("scripted", server.base_url, concurrency=4)
    yield b
    b.close()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "gen.duckdb")
