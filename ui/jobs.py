"""Long evaluations that stream results and that a click can stop, queued fairly with other visitors.

The work is a job of the app-wide scheduler (``ui.fair.ADMISSION``, ``engine.admission``): it waits
for this session's turn, then runs in the scheduler's thread while the script only waits and draws.
Streamlit stops a running script at its next element update when the user clicks (a Stop button, a
slider): the wait loop updates the progress bar (or the place in line) every tick, so the click
lands at once, and its ``finally`` cancels the job (the sandbox then kills its workers within a tick).
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import streamlit as st

from engine.admission import Job
from ui.fair import ADMISSION, session_id, show_status

T = TypeVar("T")
TICK = 0.1  # seconds between progress bar updates (and chances for a click to stop the work)


def stream_stoppable(produce: Callable[[Job], Iterator[T]], show: Callable[[T], None], label: str, *,
                     workers: int = 1) -> T | None:
    """Queue ``produce(job)`` for this session and ``show`` each item it yields as it arrives.

    ``produce`` gets the job: its ``cancel`` event, ``report`` progress callback and ``workers`` (the
    sandbox workers granted). Returns the last item; re-raises the work's exception here. Any rerun
    (Stop, a changed input, a closed tab) interrupts the wait and cancels the job."""
    events: queue.Queue[T] = queue.Queue()

    def work(job: Job) -> None:
        for item in produce(job):
            events.put(item)

    job = ADMISSION.submit(session_id(), work, label=label, workers=workers)
    status = st.empty()
    last: Any = None
    try:
        while True:
            try:
                last = events.get(timeout=TICK)
            except queue.Empty:
                if job.wait(0) and events.empty():
                    break
                show_status(status, job)
                continue
            show(last)
        job.result()  # the work's exception, if any, is raised here
    finally:
        if not job.wait(0):
            ADMISSION.cancel(job)
        status.empty()
    return last
