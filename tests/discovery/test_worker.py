"""Sessions started for the page run in a detached background process: they finish on their own, stop
on request, and a session whose process died (a server restart, a kill) shows as interrupted and resumes."""

from __future__ import annotations

import os
import signal
import time

from engine.discovery import SessionConfig, sessions, worker
from engine.store import Store
from tests.discovery.conftest import SEARCH

TIMEOUT = 240


def wait_for(predicate, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_background_session_stops_on_request_then_is_killed_and_resumes(store: Store) -> None:
    """A spawned offline session reports running; a stop request ends it at a step boundary; resumed and
    then SIGKILLed it shows 'interrupted'; spawned again it completes all its rounds."""
    config = SessionConfig(name="bg", proposer="offline", search=(SEARCH,), betas=(0.0, 1.0), shuffles=2, rounds=40)
    sessions.create_session(store, config)
    pid = worker.spawn(store, "bg")
    wait_for(lambda: sessions.get_session(store, "bg").round >= 1, "the first round")
    assert worker.state(sessions.get_session(store, "bg")) == worker.RUNNING
    sessions.request_stop(store, "bg")
    wait_for(lambda: not worker.is_alive(pid, "bg"), "the stop")
    stopped = sessions.get_session(store, "bg")
    assert stopped.status == "stopped" and worker.state(stopped) == "stopped"
    done_before = len(sessions.list_rounds(store, "bg"))

    pid = worker.spawn(store, "bg")
    wait_for(lambda: len(sessions.list_rounds(store, "bg")) > done_before, "a round after resuming")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not worker.is_alive(pid, "bg"), "the kill")
    assert worker.state(sessions.get_session(store, "bg")) == worker.INTERRUPTED

    sessions.update_session(store, "bg", config=config.extended(rounds=len(sessions.list_rounds(store, "bg")) + 2))
    pid = worker.spawn(store, "bg")
    wait_for(lambda: sessions.get_session(store, "bg").status == "done", "the end")
    rounds = [r.round for r in sessions.list_rounds(store, "bg")]
    assert rounds == list(range(len(rounds))) and worker.log_path(store, "bg").exists()
