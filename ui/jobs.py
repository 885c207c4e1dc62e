"""Long evaluations that a click can stop: the work runs in a thread, the script only waits and draws.

Streamlit stops a running script at its next element update when the user clicks (a Stop button, a
slider): this module's wait loop updates the progress bar every tick, so the click lands at once, and
its ``finally`` sets the work's cancel event (the sandbox then kills its workers within a tick).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import streamlit as st

from engine.evaluate import Progress

T = TypeVar("T")
TICK = 0.1  # seconds between progress bar updates (and chances for a click to stop the work)


def stream_stoppable(produce: Callable[[threading.Event, Progress], Iterator[T]], show: Callable[[T], None],
                     label: str) -> T | None:
    """Run ``produce(cancel, progress)`` in a thread and ``show`` each item it yields as it arrives.

    Returns the last item; re-raises the work's exception here. Any rerun (Stop, a changed input, a
    closed tab) interrupts the wait and cancels the work."""
    cancel = threading.Event()
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    status = {"share": 0.0, "text": label}

    def progress(done: int, total: int, text: str) -> None:
        status.update(share=min(1.0, done / total) if total else 1.0, text=text)

    def work() -> None:
        try:
            for item in produce(cancel, progress):
                events.put(("item", item))
        except BaseException as exc:  # handed to the script thread, which raises it
            events.put(("error", exc))
        else:
            events.put(("end", None))

    threading.Thread(target=work, name="ttslab-lab-job", daemon=True).start()
    bar = st.progress(0.0, text=label)
    last = None
    try:
        while True:
            try:
                kind, value = events.get(timeout=TICK)
            except queue.Empty:
                bar.progress(status["share"], text=status["text"])
                continue
            if kind == "error":
                bar.empty()
                raise value
            if kind == "end":
                break
            last = value
            show(value)
    finally:
        cancel.set()
    bar.empty()
    return last
