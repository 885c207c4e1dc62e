"""Fair shares of the machine for the sessions of a served app: a scheduler for evaluations.

Every job belongs to a session (one browser tab). It needs ``workers`` units: the sandbox worker
processes it may start, 1 for a built-in controller that replays in this process. The scheduler
runs at most ``per_session`` jobs and ``session_workers`` units of one session at once, and at most
``slots`` units in all (default: one per core). Waiting jobs form one line per session, and the
sessions take turns (round-robin): one session's infinite loop holds only its own share, and its
100 queued sweeps wait behind each other, not in front of other sessions' jobs.

A job's position is its place in the order in which the waiting jobs would start. Cancelling a
waiting job removes it; cancelling a running job sets its ``cancel`` event, which ``evaluate``
hands to the sandbox (the job's units are free again once its function returns). Each job runs
in its own thread, so the caller can keep showing the position and progress, and stop it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.policy import PolicyError

WAITING, RUNNING, DONE = "waiting", "running", "done"


class QueueFull(PolicyError):
    """A session asked for more waiting jobs than it may have."""


class Cancelled(Exception):
    """The job was cancelled before it started."""


@dataclass(eq=False)
class Job:
    """One unit of work and what its caller watches: state, progress, cancel event, outcome."""

    session: str
    fn: Callable[[Job], Any]
    label: str = ""
    workers: int = 1
    cancel: threading.Event = field(default_factory=threading.Event)
    state: str = WAITING
    progress: tuple[int, int, str] | None = None
    _done: threading.Event = field(default_factory=threading.Event)
    _result: Any = None
    _error: BaseException | None = None

    def report(self, done: int, total: int, label: str) -> None:
        """An ``engine`` progress callback: the latest (done, total, label), read by the caller."""
        self.progress = (done, total, label)

    def wait(self, timeout: float | None = None) -> bool:
        """True once the job finished (ran, failed or was cancelled)."""
        return self._done.wait(timeout)

    def result(self) -> Any:
        """The function's return value; its exception (or ``Cancelled``) is raised here."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._result


class Admission:
    """The scheduler; thread-safe. ``slots``: units in all; ``per_session``: running jobs per
    session; ``session_workers``: units per session (default half the slots); ``max_waiting``:
    waiting jobs per session."""

    def __init__(self, slots: int | None = None, *, per_session: int = 1, session_workers: int | None = None,
                 max_waiting: int = 4) -> None:
        self.slots = slots or os.cpu_count() or 1
        self.per_session = per_session
        self.session_workers = session_workers or max(1, self.slots // 2)
        self.max_waiting = max_waiting
        self._lock = threading.Lock()
        self._lines: OrderedDict[str, deque[Job]] = OrderedDict()  # waiting jobs by session, in turn order
        self._running: dict[str, list[Job]] = {}

    def submit(self, session: str, fn: Callable[[Job], Any], *, label: str = "", workers: int = 1) -> Job:
        """Queue ``fn(job)`` for ``session``; it starts as soon as the session's turn and a slot come."""
        job = Job(session, fn, label, max(1, min(workers, self.session_workers)))
        with self._lock:
            line = self._lines.setdefault(session, deque())
            if len(line) >= self.max_waiting:
                raise QueueFull(f"you already have {len(line)} evaluations waiting: wait for them or stop one")
            line.append(job)
            self._dispatch()
        return job

    def position(self, job: Job) -> int:
        """1 for the next job to start, 2 for the one after, ...; 0 once it runs or ran."""
        with self._lock:
            order = self._order()
        return order.index(job) + 1 if job in order else 0

    def cancel(self, job: Job) -> None:
        """Stop ``job``: a waiting job leaves the line, a running one gets its cancel event set."""
        job.cancel.set()
        with self._lock:
            line = self._lines.get(job.session)
            if job.state != WAITING or line is None or job not in line:
                return
            line.remove(job)
            if not line:
                del self._lines[job.session]
        job.state, job._error = DONE, Cancelled(f"{job.label or 'job'} was cancelled before it started")
        job._done.set()

    def end_session(self, session: str) -> None:
        """Cancel everything of a session that is gone (its tab closed)."""
        with self._lock:
            jobs = [*self._lines.get(session, ()), *self._running.get(session, ())]
        for job in jobs:
            self.cancel(job)

    def load(self) -> tuple[int, int]:
        """(running jobs, waiting jobs) over all sessions."""
        with self._lock:
            return sum(map(len, self._running.values())), sum(map(len, self._lines.values()))

    # -- scheduling (the lock is held) ---------------------------------------------------------
    def _order(self) -> list[Job]:
        """Waiting jobs in the order they would start: each session's first, in turn order, then
        each session's second, ..."""
        lines = [list(line) for line in self._lines.values()]
        return [line[i] for i in range(max(map(len, lines), default=0)) for line in lines if i < len(line)]

    def _used(self, jobs: list[Job]) -> int:
        return sum(j.workers for j in jobs)

    def _dispatch(self) -> None:
        """Start waiting jobs while the next one in turn fits; a session that started one goes last."""
        while True:
            for session, line in self._lines.items():
                mine = self._running.get(session, [])
                if len(mine) >= self.per_session or self._used(mine) + line[0].workers > self.session_workers:
                    continue  # this session is at its share: the next session's turn
                if self._used([j for js in self._running.values() for j in js]) + line[0].workers > self.slots:
                    return  # the machine is full: wait, keeping the order (no job is starved)
                self._start(line.popleft())
                if line:
                    self._lines.move_to_end(session)
                else:
                    del self._lines[session]
                break
            else:
                return

    def _start(self, job: Job) -> None:
        job.state = RUNNING
        self._running.setdefault(job.session, []).append(job)
        threading.Thread(target=self._run, args=(job,), name=f"admission:{job.label}", daemon=True).start()

    def _run(self, job: Job) -> None:
        try:
            job._result = job.fn(job)
        except BaseException as exc:  # handed to the caller by result()
            job._error = exc
        finally:
            with self._lock:
                mine = self._running[job.session]
                mine.remove(job)
                if not mine:
                    del self._running[job.session]
                job.state = DONE
                self._dispatch()
            job._done.set()
