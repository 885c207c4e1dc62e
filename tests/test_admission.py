"""engine.admission with real threads (and a real sandboxed infinite loop): caps, turns, positions, cancel,
and the fast lane that built-in replays take past sandboxed runs."""

import threading
import time
from collections import Counter

import pytest

from engine.admission import FAST, HEAVY, Admission, Cancelled, QueueFull
from engine.evaluate import ControllerSpec, evaluate
from engine.formats.autotts import load_autotts_file
from engine.paths import data_dir
from engine.sandbox import Limits, SandboxError

pytestmark = [pytest.mark.xdist_group("sandbox"), pytest.mark.timeout(120)]

LOOP = "class Loop(LLMDesignedMethod):\n    def solve(self, question):\n        while True:\n            pass\n"


class Recorder:
    """Job functions that log when they start and how many run at once (overall and per session)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: list[str] = []
        self.now: Counter = Counter()
        self.peak: Counter = Counter()

    def job(self, name: str, seconds: float = 0.05):
        def run(job):
            with self.lock:
                self.started.append(name)
                self.now[job.session] += 1
                self.now["all"] += 1
                for key in (job.session, "all"):
                    self.peak[key] = max(self.peak[key], self.now[key])
            time.sleep(seconds)
            with self.lock:
                self.now[job.session] -= 1
                self.now["all"] -= 1
            return name
        return run


def blocker(release: threading.Event):
    return lambda job: release.wait(30)


def test_caps_hold_overall_and_per_session():
    """9 jobs from 3 sessions on 2 slots: never more than 2 at once, never 2 of one session."""
    admission, rec = Admission(slots=2, per_session=1), Recorder()
    jobs = [admission.submit(s, rec.job(f"{s}{i}"), label=f"{s}{i}") for i in range(3) for s in "abc"]
    assert sorted(j.result() for j in jobs) == sorted(f"{s}{i}" for s in "abc" for i in range(3))
    assert rec.peak["all"] == 2
    assert max(rec.peak[s] for s in "abc") == 1
    assert admission.load() == (0, 0)


def test_sessions_take_turns_and_positions_say_so():
    """A session with 4 queued jobs does not go before later sessions' first jobs; positions match."""
    admission, rec, release = Admission(slots=1), Recorder(), threading.Event()
    hold = admission.submit("x", blocker(release))
    jobs = {name: admission.submit(name[0], rec.job(name), label=name) for name in ("a1", "a2", "a3", "a4", "b1", "c1")}
    assert {n: admission.position(j) for n, j in jobs.items()} == {"a1": 1, "b1": 2, "c1": 3, "a2": 4, "a3": 5, "a4": 6}
    assert admission.position(hold) == 0
    release.set()
    for job in jobs.values():
        job.result()
    assert rec.started == ["a1", "b1", "c1", "a2", "a3", "a4"]


def test_cancelling_a_waiting_job_removes_it_and_moves_the_line_up():
    """A cancelled waiting job never runs, says it was cancelled, and the jobs behind it move up."""
    admission, rec, release = Admission(slots=1), Recorder(), threading.Event()
    admission.submit("x", blocker(release))
    first, second, third = (admission.submit(s, rec.job(s), label=s) for s in ("a", "b", "c"))
    admission.cancel(second)
    assert (admission.position(first), admission.position(third)) == (1, 2)
    release.set()
    with pytest.raises(Cancelled, match="b was cancelled before it started"):
        second.result()
    assert third.result() == "c" and rec.started == ["a", "c"]


def test_cancelling_a_running_job_sets_its_event_and_frees_its_slot():
    """The running job sees its cancel event; when it returns, the next job gets the slot."""
    admission, rec = Admission(slots=1), Recorder()
    running = admission.submit("a", lambda job: job.cancel.wait(30))
    waiting = admission.submit("b", rec.job("b"))
    time.sleep(0.1)
    assert admission.position(waiting) == 1
    admission.cancel(running)
    assert running.result() is True and waiting.result() == "b"


def test_a_session_cannot_pile_up_waiting_jobs():
    """Beyond max_waiting, submit refuses with a line the page can show; other sessions still queue."""
    admission, release = Admission(slots=1, max_waiting=2), threading.Event()
    admission.submit("a", blocker(release))
    admission.submit("a", blocker(release))
    admission.submit("a", blocker(release))
    with pytest.raises(QueueFull, match="you already have 2 evaluations waiting"):
        admission.submit("a", blocker(release))
    admission.submit("b", blocker(release))
    release.set()


def test_ending_a_session_cancels_its_jobs_only():
    """A closed tab: its running job is told to stop, its waiting job is dropped; others go on."""
    admission, rec = Admission(slots=2, per_session=1), Recorder()
    running = admission.submit("gone", lambda job: job.cancel.wait(30))
    waiting = admission.submit("gone", rec.job("gone2"))
    other = admission.submit("stays", rec.job("stays"))
    admission.end_session("gone")
    assert running.result() is True
    with pytest.raises(Cancelled):
        waiting.result()
    assert other.result() == "stays" and "gone2" not in rec.started


def test_an_error_reaches_the_caller_and_frees_the_slot():
    """An exception in the job is raised by result(); the slot is not lost."""
    admission = Admission(slots=1)

    def fail(job):
        raise ValueError("bad config")

    with pytest.raises(ValueError, match="bad config"):
        admission.submit("a", fail).result()
    assert admission.submit("a", lambda job: 42).result() == 42


def test_workers_are_capped_per_session():
    """A job asking for more sandbox workers than a session's share gets the share."""
    admission = Admission(slots=4)
    assert admission.submit("a", lambda job: job.workers, workers=16).result() == 2


def test_an_infinite_loop_holds_only_its_own_share():
    """A sandboxed infinite loop runs in one slot; another session's evaluations finish meanwhile;
    cancelling the loop ends it within seconds."""
    dataset = load_autotts_file(data_dir() / "Qwen3-8B" / "aime24.json", "Qwen3-8B/aime24")
    admission = Admission(slots=2, per_session=1)
    loop_spec = ControllerSpec.from_source(LOOP)
    looping = admission.submit("looper", lambda job: evaluate(
        dataset, loop_spec, shuffles=2, limits=Limits(workers=job.workers, episode_seconds=100), cancel=job.cancel))
    for beta in (0.1, 0.3, 0.5, 0.7, 0.9):
        started = time.monotonic()
        result = admission.submit("student", lambda job, b=beta: evaluate(
            dataset, ControllerSpec.builtin("cmc", {"beta": b}), shuffles=20)).result()
        assert result.accuracy > 0 and time.monotonic() - started < 30
    assert not looping.wait(0)  # still looping, in its own slot
    started = time.monotonic()
    admission.cancel(looping)
    with pytest.raises(SandboxError, match="evaluation cancelled"):
        looping.result()
    assert time.monotonic() - started < 10


def aime24():
    return load_autotts_file(data_dir() / "Qwen3-8B" / "aime24.json", "Qwen3-8B/aime24")


def test_a_builtin_replay_in_the_fast_lane_starts_while_both_heavy_slots_are_held():
    """Both heavy slots held (one by this very session) and a heavy job waiting: a fast job (a real
    CMC kernel replay) starts at once, returns the engine's figures, and leaves the heavy line as it was."""
    dataset, release = aime24(), threading.Event()
    admission = Admission(slots=2, per_session=1)
    try:
        admission.submit("student", blocker(release), label="student's sandboxed run")
        admission.submit("looper", blocker(release), label="the loop")
        waiting = admission.submit("third", blocker(release), label="third's sandboxed run")
        spec = ControllerSpec.builtin("cmc", {"beta": 0.35})
        fast = admission.submit("student", lambda job: evaluate(dataset, spec, shuffles=17, progress=job.report),
                                label="replaying cmc", lane=FAST)
        assert admission.position(fast) == 0 and fast.wait(60)
        assert fast.result().accuracy == evaluate(dataset, spec, shuffles=17).accuracy
        assert fast.progress == (17, 17, "replayed (compiled kernel)")
        assert admission.load(HEAVY) == (2, 1) and admission.position(waiting) == 1
        assert admission.load(FAST) == (0, 0)
    finally:
        release.set()


def test_the_fast_lane_takes_turns_between_sessions_and_runs_one_job_per_session():
    """A visitor flooding the fast lane with replays runs one at a time and has one waiting job
    ahead of a later visitor's, not four; positions count within the lane only."""
    admission, rec = Admission(slots=1, fast_slots=2), Recorder()
    release, gate = threading.Event(), threading.Event()
    try:
        admission.submit("x", blocker(release))  # the heavy lane is full: it does not matter here
        first = admission.submit("hog", blocker(release), lane=FAST, label="hog0")
        other = admission.submit("a", blocker(gate), lane=FAST, label="a1")
        jobs = {n: admission.submit("hog", rec.job(n, 0.2), lane=FAST, label=n) for n in ("hog1", "hog2", "hog3")}
        jobs["b1"] = admission.submit("b", rec.job("b1", 0.2), lane=FAST, label="b1")
        assert (admission.position(first), admission.position(other)) == (0, 0)
        assert admission.load(FAST) == (2, 4) and admission.load(HEAVY) == (1, 0)
        assert {n: admission.position(j) for n, j in jobs.items()} == {"hog1": 1, "b1": 2, "hog2": 3, "hog3": 4}
        gate.set()  # a1 ends: hog is at its one running job, so b1 goes next
        until_started = time.monotonic() + 30
        while "b1" not in rec.started:
            assert time.monotonic() < until_started
            time.sleep(0.01)
        release.set()
        for job in jobs.values():
            job.result()
        assert rec.started == ["b1", "hog1", "hog2", "hog3"]
        assert rec.peak["hog"] == 1 and admission.load() == (0, 0)
    finally:
        release.set()
        gate.set()


def test_fast_jobs_are_stopped_like_heavy_ones_and_use_no_sandbox_workers():
    """Cancelling a waiting fast job takes it out of the line; a closed tab ends its jobs in both
    lanes; a fast job asking for sandbox workers gets one unit; an unknown lane is refused."""
    admission, release = Admission(slots=1), threading.Event()
    try:
        hold = admission.submit("other", blocker(release), lane=FAST)
        waiting = admission.submit("tab", lambda job: "ran", lane=FAST, label="replay")
        admission.cancel(waiting)
        with pytest.raises(Cancelled, match="replay was cancelled before it started"):
            waiting.result()
        heavy = admission.submit("gone", lambda job: job.cancel.wait(30))
        queued = admission.submit("gone", lambda job: "ran", lane=FAST)
        assert admission.load() == (2, 1)
        admission.end_session("gone")
        assert heavy.result() is True
        with pytest.raises(Cancelled):
            queued.result()
        release.set()
        hold.result()
        assert admission.submit("a", lambda job: job.workers, workers=8, lane=FAST).result() == 1
        with pytest.raises(KeyError):
            admission.submit("a", lambda job: None, lane="express")
        assert admission.load() == (0, 0)
    finally:
        release.set()
