"""Run a page's evaluation through the app-wide fair queue (``engine.admission``): one polling loop.

``stream_fairly(produce, label=...)`` queues ``produce(job)`` for this browser session and ``show``s
each item it yields as it arrives; ``run_fairly(work, label=...)`` is the same for work that returns
one value. While the job waits or runs, the visitor sees their place in line or the progress, and a
Stop button. The work runs in the scheduler's thread; this script thread only polls, and every poll
is a Streamlit yield point: a Stop click, a new input (a rerun) or a closed tab (Streamlit stops the
session's script) raises there, and the ``finally`` cancels the job. ``work`` gets the job: pass
``job.report`` as the progress callback, ``job.cancel`` as the cancel event, ``sandbox_limits(job)``
as the limits. ``lane=FAST`` declares one built-in controller on one dataset (compiled kernel, no
sandbox): it does not wait behind sandboxed runs and sweeps (``engine.admission``).
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from engine.admission import HEAVY, Admission, Job, QueueFull

T = TypeVar("T")
POLL_SECONDS = 0.1  # between status updates: each is a chance for a click to stop the work

# One per server process: every session of the app shares the machine through it.
# TTSLAB_SLOTS sets the heavy lane's units (sandbox workers) in all, default one per core;
# TTSLAB_FAST_SLOTS the built-in replays running at once in the fast lane, default 1.
ADMISSION = Admission(int(os.environ.get("TTSLAB_SLOTS") or 0) or None,
                      fast_slots=int(os.environ.get("TTSLAB_FAST_SLOTS") or 1))


def sandbox_limits(job: Job) -> Any:
    """``engine.sandbox.Limits`` for a job: the safe defaults, with the workers the scheduler granted."""
    from engine.sandbox import Limits  # imported on use: it loads the compiled kernels

    return Limits(workers=job.workers)


def run_fairly(work: Callable[[Job], T], *, label: str, workers: int = 1, lane: str = HEAVY,
               stop: str | None = "evaluation") -> T | None:
    """``work(job)`` once this session's turn comes; None if the visitor pressed Stop (see ``stream_fairly``)."""
    def produce(job: Job) -> Iterator[T]:
        yield work(job)

    return stream_fairly(produce, label=label, workers=workers, lane=lane, stop=stop)


def stream_fairly(produce: Callable[[Job], Iterator[T]], *, label: str, show: Callable[[T], None] | None = None,
                  workers: int = 1, lane: str = HEAVY, stop: str | None = "evaluation") -> T | None:
    """Queue ``produce(job)`` for this session, ``show`` each item it yields; the last item, or None.

    ``workers``: the sandbox workers the work would like (user code; 1 for built-ins), capped by the
    session's share. ``lane``: FAST for one built-in on one dataset, else HEAVY (the default).
    ``stop`` names this call's Stop button (one per call site on a page); None when the page draws
    its own (one that remembers the stop). The Stop click's rerun does not start the
    work again: it returns None. The work's exception is raised here."""
    holder = st.empty()
    with holder.container():
        status = st.empty()
        stopped = stop is not None and st.button("Stop", key=f"stop_{stop}", icon=":material/stop_circle:")
    if stopped:
        holder.info(f"Stopped {label}. Change an input to run it again.", icon=":material/stop_circle:")
        return None
    items: queue.Queue[T] = queue.Queue()

    def work(job: Job) -> None:
        for item in produce(job):
            items.put(item)

    session = session_id()
    try:
        job = ADMISSION.submit(session, work, label=label, workers=workers, lane=lane)
    except QueueFull:
        holder.empty()
        raise
    last: Any = None
    try:
        while not (job.wait(0) and items.empty()):
            try:
                last = items.get(timeout=POLL_SECONDS)
            except queue.Empty:
                show_status(status, job)
                if not _connected(session):
                    ADMISSION.end_session(session)
                    return None
                continue
            if show is not None:
                show(last)
        job.result()  # the work's exception, if any, is raised here
    finally:
        if not job.wait(0):
            ADMISSION.cancel(job)
        holder.empty()
    return last


def show_status(status: Any, job: Job) -> None:
    """The place in line, or the progress once running (a Streamlit call: also a yield point)."""
    position = ADMISSION.position(job)
    if position:
        running, waiting = ADMISSION.load(job.lane)
        status.info(f"Waiting for a free slot: you are number {position} of {waiting} in line "
                    f"({running} running). {job.label}", icon=":material/hourglass_top:")
    else:
        done, total, text = job.progress or (0, 1, f"{job.label} ...")
        status.progress(min(done / max(total, 1), 1.0), text=text)


def session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"


def _connected(session: str) -> bool:
    """False once the session's browser tab is gone (Streamlit also stops the script then)."""
    return not runtime.exists() or bool(runtime.get_instance().is_active_session(session))
