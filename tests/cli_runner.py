"""Run `python -m engine ...` as a real subprocess against a given database (shared by CLI tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine.paths import PROJECT_ROOT


def cli(*args: str | Path, db: Path, cwd: Path = PROJECT_ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the CLI with TTSLAB_DB=db (importable from any cwd)."""
    env = {**os.environ, "TTSLAB_DB": str(db), "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
