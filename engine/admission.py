"""Fair shares of the machine for the sessions of a served app: a scheduler for evaluations.

Every job belongs to a session (one browser tab) and to a lane, which its caller declares:

- ``HEAVY`` (the default): anything that runs user code in the sandbox, and sweeps (many
  evaluations: the lab's baselines, the frontier's sweeps, Table 1), even of built-ins only.
  A job needs ``workers`` units: the sandbox worker processes it may start (1 for built-ins).
- ``FAST``: one built-in controller on one dataset, replayed by its compiled kernel in this
  process (a slider move in the lab, the home page's evaluation): at most 1,000 shuffles, a
  fraction of a second on an idle machine. It never waits behind a heavy job.

Each lane has its own slots (units in all; heavy: one per core, fast: 1, since the kernels
already spread one replay over every core) and its own caps per session: at most
``per_session`` running jobs and ``session_workers`` units of one session at once in the heavy
lane, one running job in the fast lane. In each lane, waiting jobs form one line per session, and
the sessions take turns (round-robin): one session's infinite loop holds only its own share, and
its 100 queued sweeps (or slider moves) wait behind each other, not in front of other sessions'
jobs. So a fast job waits behind at most a running and a waiting job of each other session, never
behind a heavy one. (A running kernel cannot be interrupted: Stop frees its slot when it returns.)

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
HEAVY, FAST = "heavy", "fast"


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
    lane: str = HEAVY
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


@dataclass(eq=False)
class Lane:
    """One lane's capacity and its jobs (guarded by the scheduler's lock)."""

    slots: int
    per_session: int
    session_workers: int
    lines: OrderedDict[str, deque[Job]] = field(default_factory=OrderedDict)  # waiting, by session, in turn order
    running: dict[str, list[Job]] = field(default_factory=dict)

    def order(self) -> list[Job]:
        """Waiting jobs in the order they would start: each session's first, in turn order, then
        each session's second, ..."""
        lines = [list(line) for line in self.lines.values()]
        return [line[i] for i in range(max(map(len, lines), default=0)) for line in lines if i < len(line)]

    def next_job(self) -> Job | None:
        """Take the next job in turn that fits now (its session then goes last), or None."""
        used = sum(j.workers for js in self.running.values() for j in js)
        for session, line in self.lines.items():
            mine = self.running.get(session, [])
            if len(mine) >= self.per_session or sum(j.workers for j in mine) + line[0].workers > self.session_workers:
                continue  # this session is at its share: the next session's turn
            if used + line[0].workers > self.slots:
                return None  # the lane is full: wait, keeping the order (no job is starved)
            job = line.popleft()
            if line:
                self.lines.move_to_end(session)
            else:
                del self.lines[session]
            return job
        return None

    def counts(self) -> tuple[int, int]:
        return sum(map(len, self.running.values())), sum(map(len, self.lines.values()))


class Admission:
    """The scheduler; thread-safe. ``slots``: units in all in the heavy lane; ``per_session``: its
    running jobs per session; ``session_workers``: its units per session (default half the slots);
    ``fast_slots``: jobs running at once in the fast lane; ``max_waiting``: waiting jobs per session
    and lane."""

    def __init__(self, slots: int | None = None, *, per_session: int = 1, session_workers: int | None = None,
                 fast_slots: int = 1, max_waiting: int = 4) -> None:
        heavy = slots or os.cpu_count() or 1
        self.lanes = {HEAVY: Lane(heavy, per_session, session_workers or max(1, heavy // 2)),
                      FAST: Lane(max(1, fast_slots), 1, 1)}
        self.max_waiting = max_waiting
        self._lock = threading.Lock()

    def submit(self, session: str, fn: Callable[[Job], Any], *, label: str = "", workers: int = 1,
               lane: str = HEAVY) -> Job:
        """Queue ``fn(job)`` for ``session`` in ``lane``; it starts as soon as the session's turn and
        a slot of that lane come. A fast job gets 1 unit: it starts no sandbox workers."""
        share = self.lanes[lane].session_workers
        job = Job(session, fn, label, max(1, min(workers, share)), lane)
        with self._lock:
            line = self.lanes[lane].lines.setdefault(session, deque())
            if len(line) >= self.max_waiting:
                raise QueueFull(f"you already have {len(line)} evaluations waiting: wait for them or stop one")
            line.append(job)
            self._dispatch(lane)
        return job

    def position(self, job: Job) -> int:
        """1 for the next job to start in its lane, 2 for the one after, ...; 0 once it runs or ran."""
        with self._lock:
            order = self.lanes[job.lane].order()
        return order.index(job) + 1 if job in order else 0

    def cancel(self, job: Job) -> None:
        """Stop ``job``: a waiting job leaves the line, a running one gets its cancel event set."""
        job.cancel.set()
        with self._lock:
            lines = self.lanes[job.lane].lines
            line = lines.get(job.session)
            if job.state != WAITING or line is None or job not in line:
                return
            line.remove(job)
            if not line:
                del lines[job.session]
        job.state, job._error = DONE, Cancelled(f"{job.label or 'job'} was cancelled before it started")
        job._done.set()

    def end_session(self, session: str) -> None:
        """Cancel everything of a session that is gone (its tab closed), in every lane."""
        with self._lock:
            jobs = [j for lane in self.lanes.values()
                    for j in (*lane.lines.get(session, ()), *lane.running.get(session, ()))]
        for job in jobs:
            self.cancel(job)

    def load(self, lane: str | None = None) -> tuple[int, int]:
        """(running jobs, waiting jobs) over all sessions, in ``lane`` or in all lanes."""
        with self._lock:
            counts = [self.lanes[name].counts() for name in ([lane] if lane else self.lanes)]
        return sum(c[0] for c in counts), sum(c[1] for c in counts)

    # -- running (the lock is held in _dispatch) -------------------------------------------------
    def _dispatch(self, lane: str) -> None:
        """Start the lane's waiting jobs while the next one in turn fits."""
        while (job := self.lanes[lane].next_job()) is not None:
            job.state = RUNNING
            self.lanes[lane].running.setdefault(job.session, []).append(job)
            threading.Thread(target=self._run, args=(job,), name=f"admission:{job.label}", daemon=True).start()

    def _run(self, job: Job) -> None:
        try:
            job._result = job.fn(job)
        except BaseException as exc:  # handed to the caller by result()
            job._error = exc
        finally:
            with self._lock:
                running = self.lanes[job.lane].running
                mine = running[job.session]
                mine.remove(job)
                if not mine:
                    del running[job.session]
                job.state = DONE
                self._dispatch(job.lane)
            job._done.set()
