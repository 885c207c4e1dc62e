"""Sessions started from the page run in their own background process (`python -m engine discover
--resume NAME`), so they survive page reloads and a server restart leaves them resumable.

The API key typed into the page goes to the process on its stdin, never on its command line, in
its environment, in the store or in the log file (the log holds the process's own output only).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from engine.discovery import sessions
from engine.paths import PROJECT_ROOT
from engine.store import Store

RUNNING, STARTING, INTERRUPTED = "running", "starting", "interrupted"


def log_path(store: Store, name: str) -> Path:
    """Where the background process of session ``name`` writes its output."""
    return store.path.parent / f"discover-{store.path.stem}-{name}.log"


def spawn(store: Store, name: str, api_key: str | None = None) -> int:
    """Start (or resume) session ``name`` in a detached process; returns its pid."""
    session = sessions.get_session(store, name)
    if is_alive(session.pid, name):
        raise sessions.StoreError(f"session {name!r} is already running (pid {session.pid})")
    cmd = [sys.executable, "-m", "engine", "--db", str(store.path), "discover", "--resume", name]
    if api_key:
        cmd.append("--api-key-stdin")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(PROJECT_ROOT)}
    sessions.update_session(store, name, status=STARTING, pid=None, stop_requested=False, message="")
    with open(log_path(store, name), "a") as log:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdin=subprocess.PIPE, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, text=True)
    proc.stdin.write(f"{api_key or ''}\n")
    proc.stdin.close()
    threading.Thread(target=proc.wait, daemon=True).start()  # reap it when it ends
    sessions.update_session(store, name, pid=proc.pid)
    return proc.pid


def is_alive(pid: int | None, name: str) -> bool:
    """Whether ``pid`` is a live process running session ``name``."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state not in "ZX" and b"discover" in cmdline and name.encode() in cmdline


def state(session: sessions.Session) -> str:
    """The status to show: a running/starting session whose process is gone is 'interrupted'."""
    if session.status in (RUNNING, STARTING) and not is_alive(session.pid, session.name):
        return INTERRUPTED
    return session.status
