"""Untrusted controller code runs contained (engine.sandbox).

Every failure test checks four things: the specific message, that it took bounded time, that no
scratch file and no worker process is left, and that the next evaluation in this process works.
Data: the real Qwen3-8B/aime24 file (a few questions, a few shuffles, to stay fast).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from engine import sandbox
from engine.dataset import Dataset
from engine.evaluate import ControllerSpec, evaluate, run_python
from engine.formats.autotts import load_autotts_file
from engine.paths import PROJECT_ROOT, data_dir
from engine.sandbox import Limits, SandboxError, run_sandboxed

# One xdist worker runs them all (--dist loadgroup): several sandboxes at once on 2 cores
# would only make the wall-clock limits flaky.
pytestmark = [pytest.mark.xdist_group("sandbox"), pytest.mark.timeout(120)]

EXAMPLE = PROJECT_ROOT / "examples" / "controllers" / "cmc_reference_style.py"
FAST = Limits(episode_seconds=2, startup_seconds=20, evaluation_seconds=60, workers=2)
BOUND_S = 15

GOOD = ControllerSpec.from_source('''
from collections import Counter


class FirstFourMajority(LLMDesignedMethod):
    def solve(self, question):
        answers = []
        for _ in range(4):
            answer, index, finished = question.probe_new()
            while not finished:
                answer, finished = question.probe_more(index)
            answers.append(answer)
        return Counter(answers).most_common(1)[0][0]
''')


@cache
def real(n_questions: int = 30) -> Dataset:
    ds = load_autotts_file(data_dir() / "Qwen3-8B" / "aime24.json", "Qwen3-8B/aime24")
    return dataclasses.replace(ds, questions=ds.questions[:n_questions])


def solve_body(body: str) -> ControllerSpec:
    """A controller whose solve() is ``body`` (indented code), in a file named <controller>."""
    indented = "\n".join("        " + line for line in body.strip("\n").splitlines())
    return ControllerSpec.from_source(f"class C(LLMDesignedMethod):\n    def solve(self, question):\n{indented}\n")


def assert_same(a, b) -> None:
    assert a.answers == b.answers
    for name in ("total_tokens", "sequential_tokens", "n_actions"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert getattr(b, name).dtype == np.int64
    assert a.traces == b.traces


def leftover_processes() -> list[str]:
    """Live descendants of this test process, except the sandbox's idle spares and their children
    (started ahead of time, they have never run user code)."""
    # First let background refills finish: one may be replacing (killing) stale spares right now.
    spares, me = set(sandbox.SPARES.pids()), os.getpid()
    parent: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            if fields[0] not in "ZX":
                parent[int(entry.name)] = int(fields[1])

    def lineage(pid: int) -> list[int]:
        chain = []
        while pid in parent and pid not in chain:
            chain.append(pid)
            pid = parent[pid]
        return chain

    left = [pid for pid in parent if pid != me and me in lineage(pid) and not spares & set(lineage(pid))]
    return [f"{pid}: {_cmdline(pid)}" for pid in left]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "(gone)"


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where this test's sandbox run directories go (via tempfile.tempdir), to check they vanish."""
    path = tmp_path / "runs"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


def assert_contained(runs: Path, started: float) -> None:
    assert time.monotonic() - started < BOUND_S
    assert list(runs.iterdir()) == [], "a scratch/run directory was left behind"
    assert leftover_processes() == [], "a worker process outlived the evaluation"
    ds = real(2)
    assert_same(run_python(ds, GOOD.build(), shuffles=2), run_sandboxed(ds, GOOD, shuffles=2, limits=FAST))
    assert list(runs.iterdir()) == []


def test_sandboxed_outcomes_equal_in_process_outcomes_on_real_data(runs: Path) -> None:
    """A reference-format file controller (SciPy, own trace) gives the same Outcomes as run_python."""
    ds = real()
    spec = ControllerSpec.from_source(EXAMPLE.read_text(), config={"beta": 0.5}, filename=str(EXAMPLE))
    seen: list[tuple[int, int]] = []
    out = run_sandboxed(ds, spec, shuffles=4, traces=True, limits=FAST, progress=lambda d, t, _: seen.append((d, t)))
    assert_same(run_python(ds, spec.build(), shuffles=4, traces=True, filename=spec.filename), out)
    assert len(out.traces) == 4 * 30 and seen[-1] == (120, 120)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert list(runs.iterdir()) == []


def test_strict_mode_and_action_log_traces_match_too(runs: Path) -> None:
    """Strict mode, and traces derived from the action log (no get_last_trace), match as well."""
    ds = real(5)
    ref = run_python(ds, GOOD.build(), shuffles=3, mode="strict", traces=True)
    assert_same(ref, run_sandboxed(ds, GOOD, shuffles=3, mode="strict", traces=True, limits=FAST))


def test_evaluate_sandboxes_user_code_unless_trusted(runs: Path) -> None:
    """evaluate() on user source goes through the sandbox and reports the trusted run's metrics."""
    ds = real(3)
    sandboxed = evaluate(ds, GOOD, shuffles=2)
    trusted = evaluate(ds, GOOD, shuffles=2, trusted=True)
    assert (sandboxed.accuracy, sandboxed.avg_total_tokens) == (trusted.accuracy, trusted.avg_total_tokens)
    assert list(runs.iterdir()) == []


WHERE = r"at question 0, shuffle [01]"
FAILURES = {
    "infinite_loop": ("while True:\n    pass", "episode_time",
                      rf"^episode time limit \(2 s\) exceeded {WHERE}:\n  File \"<controller>\", line [34], in solve"),
    "sleep_forever": ("import time\ntime.sleep(10**6)", "episode_time",
                      rf"^episode time limit \(2 s\) exceeded {WHERE}:\n.*line 4, in solve\n +time.sleep"),
    "memory_bomb": ("hog = []\nwhile True:\n    hog.append(bytearray(50_000_000))", "memory",
                    rf"^memory limit \(400 MiB\) exceeded {WHERE}:\n.*line 5, in solve",
                    {"memory_bytes": 400 << 20, "episode_seconds": 10}),
    "fork": ("import os\nos.fork()", "raised",
             rf"^controller raised {WHERE}:\n.*line 4, in solve\n.*\nPermissionError: sandbox: os.fork is not allowed"),
    "os_system": ("import os\nos.system('touch /tmp/ttslab-pwned-system')", "raised",
                  r"PermissionError: sandbox: os.system is not allowed \(controllers may not start"),
    "subprocess": ("import subprocess\nsubprocess.run(['true'])", "raised",
                   r"PermissionError: sandbox: subprocess.Popen is not allowed"),
    "write_tmp": ("open('/tmp/ttslab-pwned', 'w').write('x')", "raised",
                  r"PermissionError: sandbox: writing /tmp/ttslab-pwned \(open\) is not allowed \(controllers "
                  r"may write only inside their scratch directory\)"),
    "write_repo": (f"open({str(PROJECT_ROOT / 'pwned.txt')!r}, 'a').write('x')", "raised",
                   rf"PermissionError: sandbox: writing {PROJECT_ROOT}/pwned.txt \(open\) is not allowed"),
    "socket": ("import socket\nsocket.socket().connect(('127.0.0.1', 22))", "raised",
               r"PermissionError: sandbox: socket.__new__ is not allowed \(controllers have no network access\)"),
    "sys_exit": ("import sys\nsys.exit(3)", "exit",
                 rf"^controller called sys.exit\(3\) {WHERE}:\n.*line 4, in solve\n +sys.exit\(3\)"),
    "huge_output": ("while True:\n    print('spam ' * 1000)", "output",
                    rf"^output limit \(1 MiB\) exceeded {WHERE}: the controller printed more than that"),
    "wrong_return_type": ("return 42", "type",
                          rf"^controller returned int {WHERE}; solve\(\) must return a str or None$"),
    "os_exit": ("import os\nos._exit(3)", "died",
                rf"^the sandbox worker stopped without a report {WHERE} \(exit status 3\)"),
}


@pytest.mark.parametrize("case", FAILURES, ids=list(FAILURES))
def test_failure_is_contained_and_reported(case: str, runs: Path) -> None:
    body, kind, pattern, *overrides = FAILURES[case]
    limits = dataclasses.replace(FAST, **overrides[0]) if overrides else FAST
    started = time.monotonic()
    with pytest.raises(SandboxError) as info:
        run_sandboxed(real(2), solve_body(body), shuffles=2, limits=limits)
    assert info.value.kind == kind
    assert re.search(pattern, str(info.value), re.S), str(info.value)
    assert info.value.question == 0 and info.value.shuffle in (0, 1)
    assert not Path("/tmp/ttslab-pwned").exists() and not Path("/tmp/ttslab-pwned-system").exists()
    assert not (PROJECT_ROOT / "pwned.txt").exists()
    assert_contained(runs, started)


def test_exception_shows_only_the_users_frames(runs: Path) -> None:
    started = time.monotonic()
    spec = ControllerSpec.from_source("import json\n\nclass C(LLMDesignedMethod):\n    def solve(self, question):\n"
                                      "        return parse(question)\n\n\ndef parse(question):\n"
                                      "    return json.loads('{broken')\n", filename="my_controller.py")
    with pytest.raises(SandboxError) as info:
        run_sandboxed(real(2), spec, shuffles=2, limits=FAST)
    msg = str(info.value)
    assert re.match(rf"controller raised {WHERE}:\n", msg), msg
    assert 'File "my_controller.py", line 5, in solve\n    return parse(question)' in msg
    assert 'File "my_controller.py", line 9, in parse\n    return json.loads(\'{broken\')' in msg
    assert msg.rstrip().endswith("json.decoder.JSONDecodeError: Expecting property name enclosed in double quotes: "
                                 "line 1 column 2 (char 1)")
    assert "engine/" not in msg and "json/decoder.py" not in msg and "sandbox_worker" not in msg
    assert_contained(runs, started)


@pytest.mark.parametrize(("source", "pattern"), [
    ("import nonexistent_mod\n",
     r"^importing <controller> failed:\n  File \"<controller>\", line 1, in <module>\n"
     r"    import nonexistent_mod\nModuleNotFoundError: No module named 'nonexistent_mod'$"),
    ("class C(LLMDesignedMethod):\n    def solve(self, q):\n        return (\n",
     r"^<controller>:3: SyntaxError: '\(' was never closed$"),
], ids=["import_error", "syntax_error"])
def test_load_errors_are_reported_like_in_process(source: str, pattern: str, runs: Path) -> None:
    started = time.monotonic()
    with pytest.raises(SandboxError) as info:
        run_sandboxed(real(2), ControllerSpec.from_source(source), shuffles=2, limits=FAST)
    assert info.value.kind == "load" and info.value.question is None
    assert re.search(pattern, str(info.value)), str(info.value)
    assert_contained(runs, started)


def test_cpu_limit(runs: Path) -> None:
    started = time.monotonic()
    with pytest.raises(SandboxError, match=rf"^CPU time limit \(1 s per worker\) exceeded {WHERE}") as info:
        run_sandboxed(real(2), solve_body("while True:\n    pass"), shuffles=2,
                      limits=dataclasses.replace(FAST, cpu_seconds=1, episode_seconds=30))
    assert info.value.kind == "cpu"
    assert_contained(runs, started)


def test_evaluation_time_limit(runs: Path) -> None:
    started = time.monotonic()
    with pytest.raises(SandboxError, match=r"^evaluation time limit \(1.5 s\) exceeded after \d+/40 episodes$"):
        run_sandboxed(real(4), solve_body("import time\ntime.sleep(0.2)\nreturn None"), shuffles=10,
                      limits=dataclasses.replace(FAST, evaluation_seconds=1.5))
    assert_contained(runs, started)


def test_cancel_stops_the_evaluation(runs: Path) -> None:
    started = time.monotonic()
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    with pytest.raises(SandboxError, match=r"^evaluation cancelled after 0/4 episodes$"):
        run_sandboxed(real(2), solve_body("import time\ntime.sleep(60)"), shuffles=2, cancel=cancel,
                      limits=dataclasses.replace(FAST, episode_seconds=100))
    assert time.monotonic() - started < 5
    assert_contained(runs, started)


GOLD_HUNTER = '''
import gc, glob, json, os, sys


def _gold_in(obj, text):
    """The gold answer if ``obj`` is a record of the question ``text`` that carries one."""
    if isinstance(obj, dict):
        if obj.get("question") == text:
            return obj.get("gold_answer") or obj.get("gold")
        return None
    if getattr(obj, "text", None) == text or getattr(obj, "question", None) == text:
        for name in ("gold", "gold_answer", "answer"):
            value = getattr(obj, name, None)
            if isinstance(value, str):
                return value
    return None


def _walk(obj, text, seen, depth=0):
    """Everything reachable from obj through attributes, slots and containers."""
    if id(obj) in seen or depth > 8 or len(seen) > 100_000:
        return None
    seen.add(id(obj))
    found = _gold_in(obj, text)
    if found:
        return found
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = list(obj)
    elif isinstance(obj, (str, bytes, int, float, type(None))):
        return None
    else:
        children = []
        for name in dir(obj):
            try:
                children.append(getattr(obj, name))
            except Exception:
                pass
    for child in children:
        found = _walk(child, text, seen, depth + 1)
        if found:
            return found
    return None


def _from_files(text):
    roots = ["../shared/data", "../../shared/data", "/work/shared", os.path.expanduser("~"), STRAY_DIR]
    try:
        from engine.paths import data_dir, default_db, PROJECT_ROOT
        roots += [str(data_dir()), str(PROJECT_ROOT.parent / "shared"), str(default_db().parent)]
    except Exception:
        pass
    for root in roots:
        for path in glob.glob(os.path.join(root, "**", "*.json"), recursive=True):
            try:
                for item in json.load(open(path)):
                    if _gold_in(item, text):
                        return _gold_in(item, text)
            except Exception:
                pass
    return None


def _from_database(text):
    try:
        import duckdb
        from engine.paths import default_db
        con = duckdb.connect(str(default_db()), read_only=True)
        for table in ("questions",):
            rows = con.execute(f"SELECT * FROM {table}").fetchall()
            names = [d[0] for d in con.description]
            for row in rows:
                record = dict(zip(names, row))
                if text in record.values():
                    for key, value in record.items():
                        if "gold" in key:
                            return value
    except Exception:
        return None
    return None


class GoldHunter(LLMDesignedMethod):
    def solve(self, question):
        text = question.question
        attempts = {
            "question": lambda: _walk(question, text, set()),
            "gc": lambda: next((g for o in gc.get_objects() if (g := _gold_in(o, text))), None),
            "modules": lambda: _walk([vars(m) for m in list(sys.modules.values()) if hasattr(m, "__dict__")],
                                     text, set()),
            "globals": lambda: _walk(globals(), text, set()),
            "files": lambda: _from_files(text),
            "database": lambda: _from_database(text),
        }
        for route, attempt in attempts.items():
            if ROUTES and route not in ROUTES:
                continue
            try:
                found = attempt()
            except Exception:
                found = None
            if found:
                return found
        return "NOT-FOUND"
'''


@contextmanager
def stray_data() -> Iterator[Path]:
    """A world-readable copy of the replay data outside the configured data directory (as another
    checkout or a download in a home directory would be): nothing tells the sandbox to hide it."""
    folder = Path(tempfile.mkdtemp(prefix=".stray-data-", dir=PROJECT_ROOT))
    folder.chmod(0o755)
    copy = folder / "aime24.json"
    shutil.copyfile(data_dir() / "Qwen3-8B" / "aime24.json", copy)
    copy.chmod(0o644)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


@pytest.fixture
def stray_copy() -> Iterator[Path]:
    with stray_data() as folder:
        yield folder


def hunter(stray: Path, routes: tuple[str, ...] = ()) -> ControllerSpec:
    return ControllerSpec.from_source(f"STRAY_DIR = {str(stray)!r}\nROUTES = {routes!r}\n" + GOLD_HUNTER)


@pytest.mark.filterwarnings("ignore")  # the in-process control pokes at every object of pytest's process
def test_gold_answers_are_out_of_reach(runs: Path, stray_copy: Path) -> None:
    """A controller that searches the question object, gc, sys.modules, globals, data files (a stray
    copy included) and the database for the gold answer finds it in process (the controls: 100%, the
    file route alone too), and finds nothing sandboxed: the worker sees an allow-listed root only."""
    ds = real(3)
    golds = [q.gold for q in ds.questions]
    for control in (hunter(stray_copy), hunter(stray_copy, ("files",))):
        found = run_python(ds, control.build(), shuffles=1).answers
        assert found == [golds], "the hunter must find gold when it is reachable, or this test proves nothing"
    out = run_sandboxed(ds, hunter(stray_copy), shuffles=1, limits=dataclasses.replace(FAST, episode_seconds=30))
    assert out.answers == [["NOT-FOUND"] * 3]
    assert list(runs.iterdir()) == []


FORGER = '''
import json, os, struct, sys


def forged(question):
    payload = {"k": "ep", "s": 0, "q": 0, "a": "FORGED", "x": [], "total_tokens": 0, "n_actions": 0}
    return json.dumps(payload)


class Forger(LLMDesignedMethod):
    def solve(self, question):
        text = forged(question)
        print(text)
        sys.__stdout__.write(text + "\\n")
        sys.__stdout__.flush()
        os.write(1, text.encode())
        os.write(2, text.encode())
        if FD_TOO:
            frame = struct.pack(">I", len(text)) + text.encode()
            for fd in range(3, 64):
                try:
                    os.write(fd, frame)
                except OSError:
                    pass
        answer, index, finished = question.probe_new()
        while not finished:
            answer, finished = question.probe_more(index)
        return answer
'''


def test_forged_output_cannot_change_the_graded_figures(runs: Path) -> None:
    """Fake results printed to stdout/stderr change nothing; fake frames on the result pipe void the run."""
    ds = real(3)
    honest = run_python(ds, ControllerSpec.from_source(FORGER.replace("FD_TOO", "False")).build(), shuffles=2)
    printer = ControllerSpec.from_source(FORGER.replace("FD_TOO", "False"))
    assert_same(honest, run_sandboxed(ds, printer, shuffles=2, limits=FAST))
    assert "FORGED" not in str(honest.answers)
    started = time.monotonic()
    writer = ControllerSpec.from_source(FORGER.replace("FD_TOO", "True"))
    with pytest.raises(SandboxError, match=r"result channel received .* the evaluation is void") as info:
        run_sandboxed(ds, writer, shuffles=2, limits=FAST)
    assert info.value.kind == "protocol"
    assert_contained(runs, started)


KERNEL_PROBE = '''
import ctypes, gc, os, socket

def attempt(fn):
    try:
        return repr(fn())
    except BaseException as exc:
        return type(exc).__name__ + ": " + str(exc)

def umount(path):
    libc = ctypes.CDLL(None, use_errno=True)
    return os.strerror(ctypes.get_errno()) if libc.umount2(path.encode(), 2) else "unmounted"

def new_user_namespace():
    libc = ctypes.CDLL(None, use_errno=True)
    return os.strerror(ctypes.get_errno()) if libc.unshare(0x10000000) else "unshared"  # CLONE_NEWUSER

class Probe(LLMDesignedMethod):
    def solve(self, question):
        for obj in gc.get_objects():
            if SWITCH_OFF and type(obj).__name__ == "Guard":
                obj.busy = True  # the hook now lets everything through
        return repr({
            "tmp": attempt(lambda: open(MARKER, "w").write("x")),
            "repo": attempt(lambda: open(REPO_FILE, "w").write("x")),
            "fork": attempt(os.fork),
            "net": attempt(lambda: socket.create_connection(("127.0.0.1", 22), timeout=1)),
            "data": attempt(lambda: os.listdir(DATA_DIR)),
            "procs": attempt(lambda: sorted(p for p in os.listdir("/proc") if p.isdigit())),
            "stray": attempt(lambda: open(STRAY_FILE).read(10)),
            "uid": attempt(os.getuid),
            "env": attempt(lambda: sorted(os.environ)),
            "scratch": attempt(lambda: (open("f.txt", "w").write("hi"), open("f.txt").read())),
            "chroot": attempt(lambda: os.chroot("/usr")),
            "umount": attempt(lambda: umount("/usr")),
            "userns": attempt(new_user_namespace),
        })
'''


def kernel_probe(marker: str, stray: Path, switch_off: bool = True) -> ControllerSpec:
    """A controller that (with ``switch_off``) defeats the audit hook, then tries what only the kernel
    layers can stop; its answer is the repr of a dict: attempt -> result or exception."""
    names = {"MARKER": marker, "REPO_FILE": str(PROJECT_ROOT / "pwned.txt"), "DATA_DIR": str(data_dir()),
             "STRAY_FILE": str(stray / "aime24.json"), "SWITCH_OFF": switch_off}
    return ControllerSpec.from_source("".join(f"{k} = {v!r}\n" for k, v in names.items()) + KERNEL_PROBE)


def assert_repo_write_kept_off_host(result: str) -> None:
    """The probe's write into the checkout never reaches the host: the read-only root refuses it, or, for a
    checkout under /tmp, it lands in the worker's private /tmp (where that path is only a mount-point folder,
    refused to uid nobody, writable to the root of a user namespace, gone with the worker)."""
    assert not (PROJECT_ROOT / "pwned.txt").exists()
    if not PROJECT_ROOT.is_relative_to("/tmp"):
        assert result.startswith("OSError: [Errno 30] Read-only file system"), result


@pytest.mark.skipif(sandbox.isolation() != "namespaces", reason="needs unshare namespaces (root)")
def test_kernel_layers_hold_with_the_audit_hook_switched_off(
    runs: Path, stray_copy: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Defeating the audit hook (it is only a tripwire) still leaves network, writes, processes, the data
    files (a stray copy too) and the secrets of the parent's environment out of reach."""
    monkeypatch.setenv("TTSLAB_SECRET", "s3cret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    marker = f"/tmp/ttslab-pwned-{uuid.uuid4().hex}"
    started = time.monotonic()
    out = run_sandboxed(real(1), kernel_probe(marker, stray_copy), shuffles=1, limits=FAST)
    seen = eval(out.answers[0][0])  # our own test's repr
    assert seen["tmp"] == "1" and not Path(marker).exists()  # wrote into the worker's private /tmp only
    assert_repo_write_kept_off_host(seen["repo"])
    assert seen["fork"].startswith("BlockingIOError")  # RLIMIT_NPROC=0 for uid nobody
    assert seen["net"].startswith("OSError: [Errno 101] Network is unreachable")
    # hidden behind an empty mount, or gone altogether when it lies under the private /tmp
    assert seen["data"] == "[]" or seen["data"].startswith("FileNotFoundError"), seen["data"]
    assert seen["stray"].startswith("FileNotFoundError"), seen["stray"]  # not in the worker's root at all
    assert seen["procs"].startswith("FileNotFoundError")  # no /proc: no other process to see
    assert seen["uid"] == "65534"
    assert not any(k in seen["env"] for k in ("TTSLAB", "KEY", "TOKEN", "SECRET"))
    assert seen["scratch"] == "(2, 'hi')"
    assert not (PROJECT_ROOT / "pwned.txt").exists()
    assert_contained(runs, started)


def test_without_namespaces_the_audit_hook_still_guards(
    runs: Path, stray_copy: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fallback where unshare is unavailable: same figures (SciPy imports fine), and the hook still
    blocks processes, hides the data and lets controllers read only what the namespace root would hold."""
    monkeypatch.setattr(sandbox, "isolation", lambda: "none")
    ds = real(2)
    assert_same(run_python(ds, GOOD.build(), shuffles=2), run_sandboxed(ds, GOOD, shuffles=2, limits=FAST))
    spec = ControllerSpec.from_source(EXAMPLE.read_text(), config={"beta": 0.5}, filename=str(EXAMPLE))
    assert_same(run_python(ds, spec.build(), shuffles=2), run_sandboxed(ds, spec, shuffles=2, limits=FAST))
    reader = solve_body(f"import os\nreturn str(os.listdir({str(data_dir())!r}))")
    with pytest.raises(SandboxError, match=r"PermissionError: sandbox: reading .* is not allowed \(the dataset"):
        run_sandboxed(ds, reader, shuffles=2, limits=FAST)
    slow = dataclasses.replace(FAST, episode_seconds=30)
    assert run_sandboxed(ds, hunter(stray_copy), shuffles=1, limits=slow).answers == [["NOT-FOUND"] * 2]
    stray = solve_body(f"return open({str(stray_copy / 'aime24.json')!r}).read(10)")
    with pytest.raises(SandboxError, match=r"sandbox: reading .*aime24.json \(open\) is not allowed \(controllers"):
        run_sandboxed(ds, stray, shuffles=2, limits=FAST)
    with pytest.raises(SandboxError, match=r"PermissionError: sandbox: os.system is not allowed"):
        run_sandboxed(ds, solve_body("import os\nos.system('true')"), shuffles=2, limits=FAST)
    assert list(runs.iterdir()) == []


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"Limits\.workers must be positive"):
        Limits(workers=0)
    assert Limits().memory_bytes == 1 << 30 and Limits().max_processes == 0


def test_spares_are_single_use_and_released_on_close(runs: Path) -> None:
    """Workers started ahead of time serve one evaluation each; close() stops the idle ones."""
    if not sandbox.SPARES.enabled:
        pytest.skip("TTSLAB_SANDBOX_SPARES=0")
    run_sandboxed(real(2), GOOD, shuffles=2, limits=FAST)
    before = set(sandbox.SPARES.pids())
    assert len(before) == 2
    run_sandboxed(real(2), GOOD, shuffles=2, limits=FAST)
    after = set(sandbox.SPARES.pids())
    assert len(after) == 2 and not before & after  # the first two were used up, two fresh ones wait
    assert all(not Path(f"/proc/{pid}").exists() for pid in before)
    sandbox.SPARES.close()
    assert sandbox.SPARES.pids() == [] and leftover_processes() == []
