"""Where TTS Lab finds its data and its database (one place, overridable by env vars)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Directory of the AutoTTS replay files (`<model>/<bench>.json`).

    `TTSLAB_DATA` overrides the default `../shared/data/autotts` beside the checkout.
    """
    env = os.environ.get("TTSLAB_DATA")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data" / "autotts"


def default_db() -> Path:
    """The DuckDB file used when no `--db` is given: `TTSLAB_DB` or `cache/ttslab.duckdb`."""
    env = os.environ.get("TTSLAB_DB")
    return Path(env) if env else PROJECT_ROOT / "cache" / "ttslab.duckdb"


def stores_dir() -> Path:
    """The folder of DuckDB stores the app lists and opens by name: `TTSLAB_STORES`, else the default
    store's folder (`cache/`, or wherever `TTSLAB_DB` points)."""
    env = os.environ.get("TTSLAB_STORES")
    return Path(env) if env else default_db().parent
