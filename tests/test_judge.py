"""The judge cannot be fooled: a sandboxed controller learns only what its actions paid for.

Hostile controllers search everything they can reach (attributes, slots, gc referents, frames,
closures, the engine's modules, raw memory through numpy and ctypes) for branch data. Each runs
trusted in this process (the control: there the question object holds every branch, so the search
must succeed, or the test proves nothing) and sandboxed under both judges: the strict judge, where
every marker it finds must be one that some action of the evaluation revealed, and so was charged
for; and the sampled judge (the worker holds its pairs' branch data, the audit re-runs a sample
strictly), where the run is refused or, again, holds only what was paid for.

Data: a synthetic dataset whose every probe and final answer is a unique marker string, so a
search that finds data cannot mistake it for anything else; and the real Qwen3-8B/aime24 file.
"""

from __future__ import annotations

import csv
import dataclasses
import platform
import re
import uuid
import zlib
from functools import cache

import numpy as np
import pytest

from engine import sandbox
from engine.dataset import Branch, Dataset, Question
from engine.evaluate import ControllerSpec, evaluate, result_key, run_python
from engine.formats.autotts import load_autotts_file
from engine.paths import PROJECT_ROOT, data_dir
from engine.replay import shuffled_order
from engine.sandbox import Limits, SandboxError, run_sandboxed
from engine.store import Store

pytestmark = [pytest.mark.xdist_group("sandbox"), pytest.mark.timeout(300)]

TOKEN = uuid.uuid4().hex
MARKER = re.compile(rf"[PF]-{TOKEN}-q\d+-b\d+(?:-k\d+)?")
LIMITS = Limits(episode_seconds=30, startup_seconds=30, evaluation_seconds=240, workers=2)
NO_AUDIT = dataclasses.replace(LIMITS, audit_episodes=0)  # the first layer alone: no unrevealed data in the worker
# Both judges with a small audit, as the tests force: the sampled one runs fast whenever a run has more episodes.
JUDGES = {"strict": dataclasses.replace(LIMITS, judge="strict", audit_episodes=8),
          "sampled": dataclasses.replace(LIMITS, audit_episodes=2)}
N_BRANCHES, N_PROBES = 8, 3
EXAMPLES = PROJECT_ROOT / "examples" / "controllers"
REFERENCE = PROJECT_ROOT.parent / "shared" / "docs" / "reference"


@cache
def markers() -> Dataset:
    """Two questions of eight branches, three probes each; every answer is a unique marker."""
    questions = tuple(
        Question(text=f"question {q} of the judge test", gold=f"F-{TOKEN}-q{q}-b0", probe_freq=500,
                 branches=tuple(Branch(probes=tuple(f"P-{TOKEN}-q{q}-b{b}-k{k}" for k in range(N_PROBES)),
                                       tokens=2000, final=f"F-{TOKEN}-q{q}-b{b}") for b in range(N_BRANCHES)))
        for q in range(2))
    return Dataset(name="judge/markers", questions=questions, content_hash=f"judge-{TOKEN}")


@cache
def real(name: str) -> Dataset:
    return load_autotts_file(data_dir() / f"{name}.json", name)


def revealed(ds: Dataset, shuffles: int) -> set[str]:
    """What one probe_new per episode reveals over the evaluation: each episode's first branch's first probe."""
    return {q.branches[shuffled_order(s, len(q.branches))[0]].probes[0]
            for s in range(shuffles) for q in ds.questions}


HUNTER = '''
import gc, re, sys
from collections import deque

TOKEN = "%TOKEN%"
PATTERN = re.compile(("[PF]-" + TOKEN + r"-q[0-9]+-b[0-9]+(?:-k[0-9]+)?").encode())
POOL = 0x4000  # pymalloc pools are 16 KiB, aligned: reading inside one never faults


def scan(blob, found):
    if isinstance(blob, str):
        blob = blob.encode("utf-8", "replace")
    if isinstance(blob, (bytes, bytearray, memoryview)):
        found.update(m.decode() for m in PATTERN.findall(bytes(blob)))


def walk(roots, found, limit=300_000, code=True):
    """Everything reachable from roots: gc referents (containers, __dict__, slots, frames, closures,
    globals, code constants) and every attribute dir() lists, properties included; with code=False,
    data only (not through functions, classes and modules)."""
    seen, queue = set(), deque(roots)  # breadth first: what the roots hold comes before the rest of the heap
    while queue and len(seen) < limit:
        obj = queue.popleft()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (str, bytes, bytearray)):
            scan(obj, found)
            continue
        if isinstance(obj, (int, float, complex, type(None), type(sys))) or not (code or not callable(obj)):
            continue
        queue.extend(gc.get_referents(obj))
        if not isinstance(obj, (dict, list, tuple, set, frozenset)):
            for name in dir(obj):
                try:
                    queue.append(getattr(obj, name))
                except BaseException:
                    pass


def frames(question, found):
    """The caller's frames, the scheduler's suspended frames, a refused action's traceback, closures."""
    roots = []
    frame = sys._getframe()
    while frame is not None:
        roots += [frame.f_locals, frame.f_globals, frame.f_code]
        frame = frame.f_back
    try:
        import greenlet
        hub = greenlet.getcurrent().parent
        frame = hub.gr_frame if hub is not None else None
        while frame is not None:
            roots += [frame.f_locals, frame.f_code]
            frame = frame.f_back
    except ImportError:
        pass
    try:
        question.probe_more(10 ** 6)
    except Exception as exc:
        tb = exc.__traceback__
        while tb is not None:
            roots.append(tb.tb_frame.f_locals)
            tb = tb.tb_next
    for name in ("probe_new", "probe_more", "get_new_branch_final_answer"):
        fn = getattr(getattr(question, name), "__func__", None)
        if fn is not None:
            roots += [fn.__closure__, fn.__globals__, fn.__code__.co_consts]
    walk(roots, found, limit=50_000)


def engine_modules(found):
    """Import the engine's modules inside the worker and search them for loaded data."""
    import importlib
    for name in ("engine.replay", "engine.dataset", "engine.store", "engine.evaluate", "engine.sandbox",
                 "engine.sandbox_worker", "engine.sandbox_episodes", "engine.controllers.kernels"):
        try:
            importlib.import_module(name)
        except BaseException:
            pass
    modules = [m for name, m in list(sys.modules.items()) if name.startswith("engine") and m is not None]
    walk([value for m in modules for value in vars(m).values()], found, code=False)


def numpy_overread(answer, found):
    """Read past the end of a revealed array (as_strided) and the raw memory around a revealed string."""
    import numpy as np
    base = np.frombuffer(answer.encode(), dtype=np.uint8)
    data = base.__array_interface__["data"][0]
    past = np.lib.stride_tricks.as_strided(base, shape=((data | (POOL - 1)) + 1 - data,), strides=(1,))
    scan(past.tobytes(), found)

    class Raw:
        __array_interface__ = {"data": (id(answer) & ~(POOL - 1), True), "shape": (POOL,), "typestr": "|u1",
                               "version": 3}
    scan(np.asarray(Raw()).tobytes(), found)


def native(answer, found):
    """Switch the audit hook off, then read the memory around a revealed string with ctypes."""
    import ctypes
    for obj in gc.get_objects():
        if type(obj).__name__ == "Guard":
            obj.busy = True
    scan(ctypes.string_at(id(answer) & ~(POOL - 1), POOL), found)


class Hunter(LLMDesignedMethod):
    def solve(self, question):
        answer, _, _ = question.probe_new()  # pays for one probe: that much is fair game
        found = set()
        try:
            if ROUTE == "walk":
                walk([question], found, limit=50_000)
                for obj in gc.get_objects():  # and every string any tracked object holds, a level deep
                    for ref in gc.get_referents(obj):
                        scan(ref, found)
                        if type(ref) is tuple:
                            for item in ref:
                                scan(item, found)
            elif ROUTE == "frames":
                frames(question, found)
            elif ROUTE == "engine":
                engine_modules(found)
            elif ROUTE == "numpy":
                numpy_overread(answer, found)
            elif ROUTE == "ctypes":
                native(answer, found)
        except Exception as exc:
            found.add("error: " + type(exc).__name__)
        return "|".join(sorted(found))
'''

ROUTES = ("walk", "frames", "engine", "numpy", "ctypes")


def hunter(route: str) -> ControllerSpec:
    source = HUNTER.replace("%TOKEN%", TOKEN).replace("class Hunter", f"ROUTE = {route!r}\n\n\nclass Hunter")
    return ControllerSpec.from_source(source, filename="hunter.py")


def found_markers(answers: list[list[str | None]]) -> set[str]:
    return {m for row in answers for a in row for m in MARKER.findall(a or "")}


@pytest.mark.filterwarnings("ignore")  # the in-process control pokes at every object of pytest's process
@pytest.mark.parametrize("route", ROUTES)
def test_a_hostile_controller_finds_only_what_was_paid_for(route: str, tmp_path) -> None:
    """Trusted, the search finds unrevealed answers (finals, later probes); under the strict judge, every
    marker it finds was revealed by an action of the evaluation, and the costs are those of its actions.
    (As in the server, the dataset is loaded through the store, so the engine's own cache holds it here.
    The audit is off: it would refuse the routes that find what other episodes in flight revealed.)
    Under the sampled judge the fast worker holds the branch data, so the search finds unpaid markers
    there too, and the audit (one episode, forced) refuses the run; a route that found nothing unpaid
    may pass, holding only what was paid for."""
    store = Store(tmp_path / "judge.duckdb")
    store.import_dataset(markers())
    ds, shuffles = store.load_dataset(markers().name), 2
    paid = revealed(ds, shuffles)
    control = found_markers(run_python(ds, hunter(route).build(), shuffles=1).answers)
    assert control - revealed(ds, 1), f"the {route} search must find unpaid data in process, or it proves nothing"
    out = run_sandboxed(ds, hunter(route), shuffles=shuffles, limits=NO_AUDIT)
    assert found_markers(out.answers) <= paid
    assert (out.total_tokens == 500).all() and (out.n_actions == 1).all()
    try:
        out = run_sandboxed(ds, hunter(route), shuffles=shuffles, limits=JUDGES["sampled"], audit=[(1, 1)])
    except SandboxError as exc:
        assert exc.kind == "audit" and (exc.shuffle, exc.question) == (1, 1), str(exc)
    else:
        assert found_markers(out.answers) <= paid, f"the {route} search passed the audit with unpaid data"
        assert (out.total_tokens == 500).all() and (out.n_actions == 1).all()


PEEK = '''
import gc
from collections import Counter


class OptimalController(LLMDesignedMethod):
    """The issue's peek controller: majority of every final answer it can reach, at zero cost."""

    def solve(self, question):
        seen, stack, finals = set(), [question], []
        while stack and len(seen) < 200_000:
            obj = stack.pop()
            if id(obj) in seen or isinstance(obj, (str, int, float, type(None))):
                continue
            seen.add(id(obj))
            if type(obj).__name__ == "ReplayQuestion":
                return Counter(obj.finals).most_common(1)[0][0]
            stack.extend(gc.get_referents(obj))
            for name in getattr(type(obj), "__slots__", ()):
                stack.append(getattr(obj, name, None))
        return None
'''


def test_the_peek_controller_gets_nothing_sandboxed(tmp_path) -> None:
    """The issue's example: majority of all 128 finals at zero cost works in process (the control);
    under the strict judge it finds nothing (no answer, no accuracy, no cost); under the sampled judge
    it finds the data in the fast run, and the audit, re-running an episode strictly, refuses the run
    with one line and nothing is cached."""
    ds = real("Qwen3-8B/aime24")
    spec = ControllerSpec.from_source(PEEK, filename="peek.py")
    assert evaluate(ds, spec, shuffles=2, trusted=True).accuracy == 80.0
    sandboxed = evaluate(ds, spec, shuffles=2, limits=JUDGES["strict"])
    assert (sandboxed.accuracy, sandboxed.avg_total_tokens) == (0.0, 0.0)
    store = Store(tmp_path / "judge.duckdb")
    with pytest.raises(SandboxError) as info:
        evaluate(ds, spec, shuffles=2, store=store, limits=JUDGES["sampled"])
    assert info.value.kind == "audit" and "\n" not in str(info.value)
    assert "gave a different answer" in str(info.value)
    assert store.get_result(result_key(ds, spec, 2, "compat")) is None


CHAMELEON = PEEK.replace("class OptimalController", "class Chameleon").replace(
    """        return None
""", """        finals = [question.get_new_branch_final_answer() for _ in range(4)]  # no data in reach: honest SC@4
        return Counter(finals).most_common(1)[0][0]
""")


def test_a_cheater_that_is_honest_when_it_sees_no_data_is_caught() -> None:
    """A controller that peeks when the data is in reach and plays honest SC@4 when it is not (as in the
    audit's strict workers, or under the strict judge): strict, it is exactly SC@4; sampled, its run
    peeks everywhere, and the audited episode, honest alone, differs in actions: refused."""
    ds = real("Qwen3-0.6B/hmmt25")
    spec = ControllerSpec.from_source(CHAMELEON, filename="chameleon.py")
    honest = run_python(ds, ControllerSpec.builtin("sc", {"k": 4}).build(), shuffles=2)
    strict = run_sandboxed(ds, spec, shuffles=2, limits=JUDGES["strict"])
    assert strict.answers == honest.answers and np.array_equal(strict.total_tokens, honest.total_tokens)
    with pytest.raises(SandboxError) as info:
        run_sandboxed(ds, spec, shuffles=2, limits=JUDGES["sampled"], audit=[(1, 7)])
    assert info.value.kind == "audit" and (info.value.shuffle, info.value.question) == (1, 7)
    assert "(0 actions, 0 tokens in the run; 4 actions" in str(info.value)


RARE = CHAMELEON.replace("class Chameleon", "class Rare").replace(
    "    def solve(self, question):\n", """    def solve(self, question):
        if zlib.crc32(question.question.encode()) % 8:  # honest SC@4 on 7 questions in 8, peeks on the rest
            finals = [question.get_new_branch_final_answer() for _ in range(4)]
            return Counter(finals).most_common(1)[0][0]
""").replace("import gc\n", "import gc\nimport zlib\n")


def test_cheating_on_a_small_fraction_of_episodes_is_caught_by_the_random_draw() -> None:
    """A controller peeking only on the questions whose text hashes to 0 mod 8 (here 3 of 30 questions,
    10 % of the episodes) against the sampled judge's default audit, drawn at random after the run
    (300 of 600 episodes): a run passes only if no peeking episode is drawn, which never happens here
    (probability below 10^-10); the run is refused at a peeking episode."""
    ds = real("Qwen3-0.6B/hmmt25")
    peeking = [qi for qi, q in enumerate(ds.questions) if zlib.crc32(q.text.encode()) % 8 == 0]
    assert 0 < len(peeking) <= 6
    spec = ControllerSpec.from_source(RARE, filename="rare.py")
    with pytest.raises(SandboxError) as info:
        run_sandboxed(ds, spec, shuffles=20, limits=LIMITS)
    assert info.value.kind == "audit" and info.value.question in peeking


# -- exactness: honest controllers' figures do not change ------------------------------------------------
def builtin_as_source(name: str) -> str:
    """The built-in's Python twin as untrusted source: it runs in the sandbox against a RemoteEpisode."""
    return ("from engine.controllers import BUILTINS\n\n\nclass Twin(LLMDesignedMethod):\n"
            "    def __init__(self, config=None):\n        super().__init__(config)\n"
            f"        self.inner = BUILTINS[{name!r}](dict(self.config))\n\n"
            "    def solve(self, question):\n        return self.inner.solve(question)\n")


PAPER_SETTINGS = [("sc", {"k": 64}), ("asc", {"max_samples": 64, "threshold": 0.95}),
                  ("esc", {"max_samples": 64, "window_size": 8}), ("cmc", {"beta": 0.5}), ("cmc", {"beta": 1.0}),
                  ("parallel_probe", {"num_chains": 64, "T": 40, "prune_patience": 7, "warm_up": 15,
                                      "probe_burst": 1, "max_steps": 100})]


def assert_same(got, want) -> None:
    """Episode by episode: answers, total and sequential tokens, action counts."""
    assert got.answers == want.answers
    for field in ("total_tokens", "sequential_tokens", "n_actions"):
        assert np.array_equal(getattr(got, field), getattr(want, field)), field


@pytest.mark.parametrize("dataset", ["Qwen3-8B/aime24", "Qwen3-1.7B/hmmt25"])
@pytest.mark.parametrize(("name", "config"), PAPER_SETTINGS, ids=lambda v: str(v))
def test_reference_settings_give_the_compiled_figures_sandboxed(dataset: str, name: str, config: dict) -> None:
    """Every Table 1 setting, its Python twin run sandboxed, gives the compiled built-in's figures
    episode by episode (answers, total and sequential tokens, action counts), in both modes, under
    both judges."""
    ds, shuffles = real(dataset), 4
    compiled = ControllerSpec.builtin(name, config)
    twin = ControllerSpec.from_source(builtin_as_source(name), config=compiled.config)
    for mode in ("compat", "strict"):
        want = run_python(ds, compiled.build(), shuffles=shuffles, mode=mode)
        for limits in JUDGES.values():
            assert_same(run_sandboxed(ds, twin, shuffles=shuffles, mode=mode, limits=limits), want)


@pytest.mark.parametrize("judge", JUDGES)
def test_a_table1_cell_reproduces_sandboxed(judge: str) -> None:
    """A reference-format file, sandboxed over the reference's 100 shuffles, gives the paper's Table 1
    cell (SC@64 on Qwen3-8B/aime24: 80.4 %, 910.8k tokens) and exactly the compiled built-in's figures,
    under either judge (the sampled one with its default audit of 300 episodes)."""
    ds = real("Qwen3-8B/aime24")
    spec = ControllerSpec.from_source((EXAMPLES / "sc_reference_style.py").read_text(), config={"k": 64})
    limits = dataclasses.replace(LIMITS, judge=judge)
    result = evaluate(ds, spec, shuffles=100, limits=limits)
    with open(REFERENCE / "paper_table1.csv") as f:
        row = next(r for r in csv.DictReader(f) if (r["model"], r["benchmark"], r["method"]) == ("Qwen3-8B", "aime24",
                                                                                               "sc64"))
    assert round(result.accuracy, 1) == float(row["accuracy_pct"])
    assert round(int(result.avg_total_tokens) / 1000, 1) == float(row["avg_total_tokens_k"])
    builtin = evaluate(ds, ControllerSpec.builtin("sc", {"k": 64}), shuffles=100)
    assert (result.accuracy, result.avg_total_tokens) == (builtin.accuracy, builtin.avg_total_tokens)


def test_exhausted_pools_raise_what_episode_raises() -> None:
    """safe_* helpers see the same exceptions: opening past the pool, advancing out of range, floats."""
    source = '''
class Edges(LLMDesignedMethod):
    def solve(self, question):
        seen = []
        for call in (lambda: question.probe_more(-1), lambda: question.probe_more(10 ** 30),
                     lambda: question.probe_more(1.5), lambda: question.probe_more(question.n_opened)):
            try:
                seen.append(repr(call()))
            except Exception as exc:
                seen.append(type(exc).__name__ + ": " + str(exc))
        while True:
            try:
                question.get_new_branch_final_answer()
            except Exception as exc:
                seen.append(type(exc).__name__ + ": " + str(exc))
                break
        seen.append(repr((question.get_seq_and_total_tokens(), question.sequential_tokens, question.n_opened,
                          len(question.actions), question.n_branches, question.probe_freq, repr(question))))
        return " | ".join(seen)
'''
    ds = markers()
    spec = ControllerSpec.from_source(source)
    for mode, refusal in (("compat", "IndexError: probe_more(-1): branch index out of range (0 open)"),
                          ("strict", "InvalidAction: probe_more(-1) advances an unopened branch (0 open)")):
        want = run_python(ds, spec.build(), shuffles=2, mode=mode)
        for limits in JUDGES.values():  # (refused actions are not charged, nor logged, by either)
            got = run_sandboxed(ds, spec, shuffles=2, mode=mode, limits=limits)
            assert_same(got, want)
            assert refusal in got.answers[0][0] and "all 8 branches are" in got.answers[0][0]


# -- what the worker can still do: lie about its own bookkeeping, or break its channel -------------------------
def test_editing_the_local_action_log_changes_no_figure() -> None:
    """The question's action log and token counter are the worker's copies: editing them changes
    nothing the strict judge reports (it counts on its own episode). The sampled judge grades the log
    the fast worker sends by its own rules: one they refuse voids the run (an honest Episode logs no
    refused action), with one line naming the episode and the rule."""
    source = ("class Editor(LLMDesignedMethod):\n    def solve(self, question):\n"
              "        answer, index, finished = question.probe_new()\n"
              "        question.actions.clear()\n        question.actions.append(90)\n"
              "        question.total_tokens = 0\n        return answer\n")
    spec = ControllerSpec.from_source(source)
    out = run_sandboxed(markers(), spec, shuffles=2, limits=JUDGES["strict"])
    assert (out.total_tokens == 500).all() and (out.n_actions == 1).all()
    with pytest.raises(SandboxError) as info:
        run_sandboxed(markers(), spec, shuffles=2, limits=JUDGES["sampled"])
    assert info.value.kind == "protocol" and "\n" not in str(info.value)
    assert re.match(r"the sandbox's result channel received an action log the episode rules refuse \(probe_more\(90\): "
                    r"branch index out of range \(0 open\)\) at question \d, shuffle \d; ", str(info.value))


FORGER = '''
from collections import Counter


class Forger(LLMDesignedMethod):
    """Reads every branch, then rewrites its episode's log to a single probe: 1/16 of the cost, if believed."""

    def solve(self, question):
        finals = [question.get_new_branch_final_answer() for _ in range(question.n_branches)]
        question.actions[:] = [-1]
        return Counter(finals).most_common(1)[0][0]
'''


def test_a_forged_action_log_is_charged_by_the_parent_and_refused_by_the_audit() -> None:
    """Under the sampled judge a forged log that the rules accept is charged what the parent's own data
    says it costs (one probe: 500 tokens, not the 16,000 the reads cost), and the audited episode, re-run
    strictly, shows the real actions: the run is refused. The strict judge never reads the worker's log."""
    spec = ControllerSpec.from_source(FORGER, filename="forger.py")
    strict = run_sandboxed(markers(), spec, shuffles=2, limits=JUDGES["strict"])
    assert (strict.total_tokens == 16_000).all() and (strict.n_actions == 8).all()
    with pytest.raises(SandboxError) as info:
        run_sandboxed(markers(), spec, shuffles=2, limits=JUDGES["sampled"], audit=[(0, 1)])
    assert info.value.kind == "audit" and (info.value.shuffle, info.value.question) == (0, 1)
    assert "(1 actions, 500 tokens in the run; 8 actions, 16,000 tokens alone)" in str(info.value)


def test_hijacking_the_scheduler_voids_the_run_and_nothing_is_cached(tmp_path) -> None:
    """A controller that switches greenlets by hand is refused with one line naming the episode,
    and evaluate() stores no result for it."""
    source = ("import greenlet\n\nclass Hijack(LLMDesignedMethod):\n    def solve(self, question):\n"
              "        greenlet.getcurrent().parent.switch('forged')\n        return None\n")
    spec = ControllerSpec.from_source(source)
    store = Store(tmp_path / "judge.duckdb")
    key = result_key(markers(), spec, 2, "compat")
    with pytest.raises(SandboxError) as info:
        evaluate(markers(), spec, shuffles=2, store=store, limits=LIMITS)
    message = str(info.value)
    assert "\n" not in message and info.value.kind == "tampered"
    assert re.match(r"the controller interfered with the sandbox's episode scheduler at question 0, shuffle [01] "
                    r"\(it switched greenlets by hand\)$", message), message
    assert store.get_result(key) is None


def test_many_episodes_in_flight_keep_their_own_controller_instance() -> None:
    """Episodes run concurrently in a strict worker, each on its own instance: per-instance state (here a
    trace that solve() resets) is never mixed between episodes, and traces match in-process ones, under
    the sampled judge's fast run (one instance, episodes one after another) too."""
    ds = markers()
    spec = ControllerSpec.from_source((EXAMPLES / "cmc_reference_style.py").read_text(), config={"beta": 1.0},
                                      filename="cmc.py")
    want = run_python(ds, spec.build(), shuffles=6, traces=True, filename="cmc.py")
    for limits in JUDGES.values():
        got = run_sandboxed(ds, spec, shuffles=6, traces=True, limits=limits)
        assert got.answers == want.answers and got.traces == want.traces


# -- memory across episodes: the audit re-runs random episodes alone ------------------------------------
MEMORISER = '''
from collections import Counter

MEMORY = {}  # question text -> answer: survives from one episode to the next in a worker


class Memoriser(LLMDesignedMethod):
    """Reads every branch the first time it sees a question, then answers from memory for free."""

    def solve(self, question):
        if question.question in MEMORY:
            return MEMORY[question.question]
        finals = [question.get_new_branch_final_answer() for _ in range(question.n_branches)]
        MEMORY[question.question] = answer = Counter(finals).most_common(1)[0][0]
        return answer
'''

SOMETIMES = '''
MEMORY = {}


class Sometimes(LLMDesignedMethod):
    """Pays one probe, then cheats (answers from another episode's memory) when that probe's bytes
    sum to an odd number: about half of the episodes once the memory holds the question."""

    def solve(self, question):
        first, _, _ = question.probe_new()
        if question.question in MEMORY and sum(first.encode()) % 2:
            return MEMORY[question.question]
        finals = [question.get_new_branch_final_answer() for _ in range(question.n_branches - 1)]
        MEMORY[question.question] = finals[0]
        return finals[0]
'''


@pytest.mark.parametrize("judge", JUDGES)
def test_a_memoriser_is_refused_by_the_audit_and_nothing_is_cached(judge: str, tmp_path) -> None:
    """In process, paying once per question and remembering gives majority-of-128 accuracy at about 1/100
    of its cost; sandboxed, the audit re-runs random episodes without the other episodes of their question
    (the sampled judge's default audit: 300 of the 3,000), sees them pay in full, and refuses the run with
    one line naming the episode; evaluate() stores nothing."""
    ds = real("Qwen3-8B/aime24")
    spec = ControllerSpec.from_source(MEMORISER, filename="memoriser.py")
    full_read = np.mean([sum(b.tokens for b in q.branches) for q in ds.questions])
    trusted = evaluate(ds, spec, shuffles=100, trusted=True)
    assert trusted.accuracy >= 75.0 and trusted.avg_total_tokens < full_read / 50
    store = Store(tmp_path / "judge.duckdb")
    with pytest.raises(SandboxError) as info:
        evaluate(ds, spec, shuffles=100, store=store, limits=JUDGES["strict"] if judge == "strict" else LIMITS)
    message = str(info.value)
    assert info.value.kind == "audit" and "\n" not in message
    where = f"question {info.value.question}, shuffle {info.value.shuffle}"
    assert re.match(rf"audit failed at {where}: re-run in a fresh worker holding only its own replies, the episode "
                    r"gave different actions \(0 actions, 0 tokens in the run; 128 actions, [\d,]+ tokens alone\); "
                    r"the controller's result depends on more than what the episode paid for", message), message
    assert store.get_result(result_key(ds, spec, 100, "compat")) is None


@pytest.mark.parametrize("judge", JUDGES)
def test_a_controller_that_cheats_in_half_the_episodes_is_caught(judge: str) -> None:
    """An audit of 8 episodes passes a controller that cheats in about half of them only if all 8 are
    honest ones (probability 1/256). The sample is forced here, from late episodes (their worker's
    memory holds both questions by then): one with a cheat is refused at the first cheating episode,
    one of honest episodes only passes although the run cheated, which is what the odds are about."""
    ds, shuffles = markers(), 200
    spec = ControllerSpec.from_source(SOMETIMES, filename="sometimes.py")
    limits = JUDGES[judge]

    def cheats(seed: int, qi: int) -> bool:
        branches = ds.questions[qi].branches
        return sum(branches[shuffled_order(seed, len(branches))[0]].probes[0].encode()) % 2 == 1

    late = [(s, q) for s in range(shuffles - 20, shuffles) for q in range(2)]
    mixed, honest = late[:8], [e for e in late if not cheats(*e)][:8]
    first_cheat = next(e for e in mixed if cheats(*e))
    with pytest.raises(SandboxError) as info:
        run_sandboxed(ds, spec, shuffles=shuffles, limits=limits, audit=mixed)
    assert info.value.kind == "audit" and (info.value.shuffle, info.value.question) == first_cheat
    assert str(info.value).startswith(f"audit failed at question {first_cheat[1]}, shuffle {first_cheat[0]}: ")
    out = run_sandboxed(ds, spec, shuffles=shuffles, limits=limits, audit=honest)
    assert 0.2 < (out.n_actions == 1).mean() < 0.6  # it did cheat (in half the episodes after the first per worker)


SET_TIES = '''
class SetTies(LLMDesignedMethod):
    """An honest controller in a common LLM idiom: it breaks vote ties by the iteration order of a set."""

    def solve(self, question):
        answers = [question.get_new_branch_final_answer() for _ in range(4)]
        return max(set(answers), key=answers.count)
'''


@pytest.mark.parametrize("judge", JUDGES)
def test_ties_broken_by_set_order_pass_the_audit(judge: str) -> None:
    """Every worker hashes strings alike (PYTHONHASHSEED fixed in its environment), so an episode re-run
    in a fresh worker iterates its sets in the same order and the honest run stands."""
    ds = real("Qwen3-0.6B/hmmt25")
    spec = ControllerSpec.from_source(SET_TIES, filename="set_ties.py")
    pool = [(s, q) for s in range(20) for q in range(ds.n_questions)]
    out = run_sandboxed(ds, spec, shuffles=20, limits=JUDGES[judge], audit=pool[::len(pool) // 8][:8])
    assert (out.n_actions == 4).all()


@pytest.mark.parametrize("judge", JUDGES)
def test_an_honest_file_passes_the_audit_with_identical_figures(judge: str) -> None:
    """The CMC reference-format file (deterministic) passes the audit of 8 random episodes, and its
    figures are exactly those of the same file run in process, under either judge."""
    ds, shuffles = real("Qwen3-8B/aime24"), 3
    spec = ControllerSpec.from_source((EXAMPLES / "cmc_reference_style.py").read_text(), config={"beta": 0.5},
                                      filename="cmc.py")
    labels = []
    limits = dataclasses.replace(JUDGES[judge], audit_episodes=8)
    got = run_sandboxed(ds, spec, shuffles=shuffles, limits=limits, progress=lambda d, t, label: labels.append(label))
    want = run_python(ds, spec.build(), shuffles=shuffles, filename="cmc.py")
    assert "auditing 8 episodes (re-run in fresh workers)" in labels
    assert_same(got, want)


NEIGHBOUR = '''
SEEN = []  # module global: shared by the episodes in flight in one worker


class Neighbour(LLMDesignedMethod):
    """Pays one probe, then also answers with what the other episodes in flight revealed."""

    def solve(self, question):
        SEEN.append(question.probe_new()[0])
        question.probe_more(0)  # (lets the other episodes run meanwhile)
        return "|".join(SEEN)
'''


def test_reading_the_episodes_in_flight_is_refused_by_the_audit() -> None:
    """Episodes in one worker share module globals: one that answers with the replies of the episodes
    before it or in flight beside it (one worker: both shuffles of both questions) gives another answer in
    the audit, whose workers never hold two episodes of one question. Strict, with 4 episodes the audit
    re-runs all of them, so it is refused every time; sampled (one episode drawn, one that ran after its
    question's other episode), likewise. In process the answers also hold other episodes' markers (the
    control). (Replies of another question, in flight beside it in an audit worker, tell an episode nothing
    about its own question: the audit does not separate those.)"""
    ds = markers()
    spec = ControllerSpec.from_source(NEIGHBOUR, filename="neighbour.py")
    control = run_python(ds, spec.build(), shuffles=2)
    assert any(len(MARKER.findall(a)) > 1 for row in control.answers for a in row)
    for judge, limits in JUDGES.items():
        with pytest.raises(SandboxError) as info:
            run_sandboxed(ds, spec, shuffles=2, limits=dataclasses.replace(limits, workers=1),
                          audit=[(1, 0)] if judge == "sampled" else None)
        assert info.value.kind == "audit" and "gave a different answer" in str(info.value)


FILE_MEMORISER = '''
import json, os

PATH = os.path.join(os.environ["TMPDIR"], "memory.json")  # the worker's scratch directory


class FileMemoriser(LLMDesignedMethod):
    """Pays in full the first time it sees a question, keeps the answer in a file of its scratch
    directory, and answers later episodes of that question from the file for free."""

    def solve(self, question):
        memory = json.load(open(PATH)) if os.path.exists(PATH) else {}
        if question.question in memory:
            return memory[question.question]
        finals = [question.get_new_branch_final_answer() for _ in range(question.n_branches)]
        memory[question.question] = finals[0]
        json.dump(memory, open(PATH, "w"))
        return finals[0]
'''


@pytest.mark.parametrize("judge", JUDGES)
def test_audited_episodes_share_no_files(judge: str) -> None:
    """The audit's children are forked one after another from a zygote (one here: one worker): each must
    start with a scratch directory of its own. The sample (three episodes of one question, so three
    children) puts an episode that paid in the run (shuffle 0, the worker's first) before late ones that
    answered from the file: were the scratch shared, the first child would write the file and the next
    ones would match the run's free answers; alone, they pay, so the run is refused at the first late one."""
    ds, shuffles = markers(), 200
    spec = ControllerSpec.from_source(FILE_MEMORISER, filename="file_memoriser.py")
    sample = [(0, 0), (190, 0), (192, 0)]
    with pytest.raises(SandboxError) as info:
        run_sandboxed(ds, spec, shuffles=shuffles, limits=dataclasses.replace(JUDGES[judge], workers=1), audit=sample)
    assert info.value.kind == "audit" and (info.value.shuffle, info.value.question) == (190, 0)
    assert "(0 actions, 0 tokens in the run; 8 actions" in str(info.value)


def test_a_draw_needing_more_workers_than_a_zygote_forks_gets_more_zygotes(monkeypatch) -> None:
    """An audit worker never holds two episodes of one question, so a draw of 34 episodes of one question
    needs 34 workers: more than one zygote forks (32), so a second zygote (real, watched through a wrapper)
    runs the other 2 after the first is done. The honest controller's run stands with its exact figures."""
    ds, shuffles = markers(), 40
    spec = ControllerSpec.from_source(builtin_as_source("sc"), config={"k": 4})
    started = []

    def watched(level: str, children: int):
        started.append(children)
        return start_zygote(level, children)

    start_zygote = sandbox._start_zygote
    monkeypatch.setattr(sandbox, "_start_zygote", watched)
    got = run_sandboxed(ds, spec, shuffles=shuffles, limits=dataclasses.replace(JUDGES["sampled"], workers=1),
                        audit=[(s, 0) for s in range(34)])
    assert_same(got, run_python(ds, spec.build(), shuffles=shuffles))
    assert started == [sandbox.ZYGOTE_CHILDREN, 34 - sandbox.ZYGOTE_CHILDREN]


KEYRING = '''
import ctypes, gc, platform

NUMBERS = {"x86_64": (248, 250), "aarch64": (217, 219)}  # add_key, keyctl
USER_KEYRING, KEYCTL_SEARCH, KEYCTL_READ = -4, 10, 11


class Keyring(LLMDesignedMethod):
    """Native code (the audit hook switched off) leaving a note in the uid's kernel keyring, or reading it:
    a store shared by every process of one uid, past every namespace."""

    def solve(self, question):
        for obj in gc.get_objects():
            if type(obj).__name__ == "Guard":
                obj.busy = True
        add_key, keyctl = NUMBERS[platform.machine()]
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        if question.question.startswith("question 0"):
            done = libc.syscall(add_key, b"user", b"judge-note", b"the answer", 10, USER_KEYRING)
        else:
            key = libc.syscall(keyctl, KEYCTL_SEARCH, USER_KEYRING, b"user", b"judge-note", 0)
            buf = ctypes.create_string_buffer(64)
            done = key if key < 0 else libc.syscall(keyctl, KEYCTL_READ, key, buf, 64)
        return "%d %d" % (done, ctypes.get_errno())
'''


@pytest.mark.skipif(platform.machine() not in ("x86_64", "aarch64"), reason="the keyring filter's architectures")
def test_workers_cannot_pass_notes_through_the_kernel_keyring() -> None:
    """The kernel's user keyring is shared by every process of one uid (all workers as nobody, all children
    of a zygote), whatever their namespaces: a seccomp filter makes add_key and keyctl fail with EPERM in
    every worker, so neither the episodes of a run, nor a fast worker and an audit worker, nor two users'
    evaluations can pass data that way."""
    out = run_sandboxed(markers(), ControllerSpec.from_source(KEYRING, filename="keyring.py"), shuffles=1,
                        limits=NO_AUDIT)
    assert out.answers == [["-1 1", "-1 1"]]  # add_key and the search both refused (errno 1: EPERM)


def test_a_strict_request_is_never_served_a_result_the_sampled_judge_cached(tmp_path) -> None:
    """The strict judge's guarantee is stronger than the sampled one's, so its results are cached apart: a
    strict request after a sampled one computes anew (and is served from the cache the second time), while
    the sampled request's key is the one every evaluation had before the strict judge existed."""
    spec = ControllerSpec.from_source((EXAMPLES / "cmc_reference_style.py").read_text(), config={"beta": 0.2},
                                      filename="cmc.py")
    store = Store(tmp_path / "judges.duckdb")
    sampled = evaluate(markers(), spec, shuffles=3, store=store, limits=JUDGES["sampled"])
    strict = evaluate(markers(), spec, shuffles=3, store=store, limits=JUDGES["strict"])
    again = evaluate(markers(), spec, shuffles=3, store=store, limits=JUDGES["strict"])
    assert sampled.key == result_key(markers(), spec, 3, "compat") and not strict.cached and again.cached
    assert strict.key == again.key != sampled.key
    assert (strict.accuracy, strict.avg_total_tokens) == (sampled.accuracy, sampled.avg_total_tokens)
