"""The fair queue (ui.fair over engine.admission) as the pages use it, through Streamlit's AppTest.

The pages run in this process, so the test holds the queue's slots itself (``ui.fair.ADMISSION`` is
swapped for a fresh two-slot scheduler) and watches what the page's evaluations do: wait their turn,
leave the line when the script stops, skip the line when the cache holds the answer, and a built-in's
replay takes the fast lane past sandboxed runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from streamlit.testing.v1 import AppTest

import ui.fair
from engine import frontier as fr
from engine import lab
from engine.admission import FAST, HEAVY, Admission
from engine.evaluate import ControllerSpec, evaluate, result_key
from engine.paths import PROJECT_ROOT, data_dir
from engine.store import Store

pytestmark = [pytest.mark.timeout(300)]

APP = str(PROJECT_ROOT / "app.py")
LAB = str(PROJECT_ROOT / "views" / "lab.py")
DATASET = "Qwen3-8B/aime24"


@pytest.fixture
def store(tmp_path, monkeypatch) -> Store:
    """A temp store (TTSLAB_DB) holding one real dataset; no data dir to import from."""
    s = Store(tmp_path / "fair.duckdb")
    s.import_path(data_dir() / f"{DATASET}.json")
    monkeypatch.setenv("TTSLAB_DB", str(s.path))
    monkeypatch.setenv("TTSLAB_DATA", str(tmp_path / "no-data"))
    return s


@pytest.fixture
def admission(monkeypatch) -> Iterator[Admission]:
    """The app's scheduler, fresh: two slots, one running job per session."""
    fresh = Admission(slots=2, per_session=1)
    monkeypatch.setattr(ui.fair, "ADMISSION", fresh)
    yield fresh


def hold(admission: Admission, session: str, release: threading.Event, jobs: int = 1, lane: str = HEAVY) -> None:
    """``jobs`` jobs of another visitor that run until ``release`` is set."""
    for _ in range(jobs):
        admission.submit(session, lambda job: release.wait(60), label=f"{session}'s job", lane=lane)


def until(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def in_thread(at: AppTest) -> threading.Thread:
    thread = threading.Thread(target=at.run, daemon=True)
    thread.start()
    return thread


def frontier(shuffles: int) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page("views/frontier.py")
    at.query_params.update(datasets=DATASET, controllers="sc", shuffles=str(shuffles))
    return at


def test_a_frontier_sweep_waits_for_a_free_slot_then_draws(store, admission):
    """With both slots taken by other visitors, the page's sweep waits in line (nothing evaluated);
    when one slot frees, it runs and the page draws the frontier from the engine's results."""
    release = threading.Event()
    hold(admission, "other-a", release)
    hold(admission, "other-b", release)
    at = frontier(shuffles=7)
    thread = in_thread(at)
    dataset = store.load_dataset(DATASET)
    keys = [result_key(dataset, spec, 7, "compat") for spec in fr.builtin_entry("sc").specs]
    until(lambda: admission.load() == (2, 1))
    time.sleep(1)
    assert thread.is_alive() and admission.load() == (2, 1) and not store.get_results(keys)
    release.set()
    thread.join(180)
    assert not thread.is_alive() and not at.exception, [e.value for e in at.exception]
    assert at.get("plotly_chart") and admission.load() == (0, 0)
    stored = store.get_results(keys)
    sc8 = ControllerSpec.builtin("sc", {"k": 8})
    assert len(stored) == len(keys)
    assert stored[result_key(dataset, sc8, 7, "compat")]["metrics"]["accuracy"] == evaluate(dataset, sc8,
                                                                                             shuffles=7).accuracy


def test_another_visitors_queued_sweeps_do_not_delay_this_one(store, admission):
    """A visitor running one job with four more queued holds one slot; this page's sweep takes the
    other slot at once and finishes while the hog's jobs still wait behind each other."""
    release = threading.Event()
    try:
        hold(admission, "hog", release, jobs=5)
        assert admission.load() == (1, 4)
        at = frontier(shuffles=8)
        at.run(timeout=120)
        assert not at.exception and at.get("plotly_chart")
        assert admission.load() == (1, 4)
    finally:
        release.set()


def test_the_labs_builtin_replay_queues_leaves_the_line_when_stopped_and_skips_it_when_cached(store, admission):
    """The lab's baselines and replay wait for a slot; a script stopped while waiting (a closed tab,
    a new input) takes its job out of the line; once computed, the same view draws at once even
    with every slot taken, since the cache answers without queueing."""
    release = threading.Event()
    hold(admission, "other-a", release)
    hold(admission, "other-b", release)
    at = AppTest.from_file(LAB, default_timeout=180)
    at.query_params.update(dataset=DATASET, shuffles="9", beta="0.45")
    stopped: list[Exception] = []

    def run_until_stopped() -> None:
        try:
            at.run(timeout=5)  # AppTest stops the script after 5 s, as a closed tab would
        except RuntimeError as exc:
            stopped.append(exc)

    thread = threading.Thread(target=run_until_stopped, daemon=True)
    thread.start()
    until(lambda: admission.load() == (2, 1))  # the baselines' curves wait in line
    thread.join(60)
    assert "timed out" in str(stopped[0])
    until(lambda: admission.load() == (2, 0), seconds=10)
    release.set()
    until(lambda: admission.load() == (0, 0))
    at.run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    want = evaluate(store.load_dataset(DATASET), ControllerSpec.builtin("cmc", {"beta": 0.45}), shuffles=9)
    assert {m.label: m.value for m in at.metric}["accuracy"] == f"{want.accuracy:.2f}%"

    again = threading.Event()
    hold(admission, "other-c", again)
    hold(admission, "other-d", again)
    try:
        fresh = AppTest.from_file(LAB, default_timeout=180)
        fresh.query_params.update(dataset=DATASET, shuffles="9", beta="0.45")
        fresh.run(timeout=60)
        assert {m.label: m.value for m in fresh.metric}["accuracy"] == f"{want.accuracy:.2f}%"
        assert admission.load() == (2, 0)
    finally:
        again.set()


def lab_at(shuffles: int, beta: float) -> AppTest:
    at = AppTest.from_file(LAB, default_timeout=180)
    at.query_params.update(dataset=DATASET, shuffles=str(shuffles), beta=str(beta))
    return at


def lab_accuracy(at: AppTest) -> str:
    return {m.label: m.value for m in at.metric}["accuracy"]


def test_a_slider_moves_replay_does_not_wait_behind_sandboxed_runs(store, admission):
    """With both heavy slots held by other visitors' runs (and the baselines' curves in memory), a
    slider move's built-in replay takes the fast lane: the lab draws the engine's figures at once,
    and the heavy jobs are still running, none started or dropped."""
    dataset = store.load_dataset(DATASET)
    lab.baseline_curves(store, dataset, shuffles=12)  # the page found them on its first run
    release = threading.Event()
    try:
        hold(admission, "looper", release)
        hold(admission, "typist", release, jobs=2)
        for beta in (0.35, 0.45):  # not on the baselines' beta grid: not cached
            spec = ControllerSpec.builtin("cmc", {"beta": beta})
            assert not store.get_results([result_key(dataset, spec, 12, "compat")])
            at = lab_at(12, beta)
            at.run(timeout=60)
            assert not at.exception, [e.value for e in at.exception]
            want = evaluate(dataset, spec, shuffles=12)
            assert lab_accuracy(at) == f"{want.accuracy:.2f}%"
            assert admission.load(HEAVY) == (2, 1) and admission.load(FAST) == (0, 0)
    finally:
        release.set()


def test_a_replay_waits_its_turn_in_the_fast_lane_and_leaves_it_when_stopped(store, admission):
    """When another visitor's replay holds the fast lane, this page's replay waits in that line
    (placed 1st, the heavy lane untouched); a script stopped while waiting takes it out of the line;
    once the lane frees, the page draws the engine's figures."""
    dataset = store.load_dataset(DATASET)
    lab.baseline_curves(store, dataset, shuffles=14)
    release = threading.Event()
    hold(admission, "other", release, lane=FAST)
    at = lab_at(14, 0.65)
    stopped: list[Exception] = []

    def run_until_stopped() -> None:
        try:
            at.run(timeout=5)  # AppTest stops the script after 5 s, as a new input or a closed tab would
        except RuntimeError as exc:
            stopped.append(exc)

    thread = threading.Thread(target=run_until_stopped, daemon=True)
    thread.start()
    until(lambda: admission.load(FAST) == (1, 1))
    assert admission.load(HEAVY) == (0, 0)
    thread.join(60)
    assert "timed out" in str(stopped[0])
    until(lambda: admission.load(FAST) == (1, 0), seconds=10)
    release.set()
    until(lambda: admission.load() == (0, 0))
    at.run(timeout=60)
    want = evaluate(dataset, ControllerSpec.builtin("cmc", {"beta": 0.65}), shuffles=14)
    assert not at.exception and lab_accuracy(at) == f"{want.accuracy:.2f}%"


def test_stream_fairly_shows_each_item_and_run_fairly_returns_one(admission):
    """The one polling loop: every item a job yields is shown in order, the last is returned;
    run_fairly returns the work's value; the work's exception reaches the page."""
    def page() -> None:
        import time

        import streamlit as st

        from ui.fair import run_fairly, stream_fairly

        def produce(job):
            for i in range(3):
                time.sleep(0.2)
                yield i

        last = stream_fairly(produce, label="counting", show=lambda i: st.write(f"item {i}"))
        st.write(f"last {last}")
        st.write(f"value {run_fairly(lambda job: job.workers * 42, label='one value', stop='one')}")
        try:
            run_fairly(lambda job: int("x"), label="failing", stop="failing")
        except ValueError as exc:
            st.error(f"failed: {exc}")

    at = AppTest.from_function(page, default_timeout=60).run()
    assert [m.value for m in at.markdown] == ["item 0", "item 1", "item 2", "last 2", "value 42"]
    assert at.error[0].value.startswith("failed: invalid literal for int()")
    assert admission.load() == (0, 0)
