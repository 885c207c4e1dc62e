"""Run untrusted controller code contained, and grade it on data it never sees in full.

Controller source comes from strangers, so it runs in a pool of separate worker processes
(``engine/sandbox_worker.py``), each confined before user code runs: its own network, mount
and PID namespaces (``unshare``; as root, or inside a user namespace for anyone else), a
read-only root that holds only an allow-list (system libraries, Python, the installed packages,
the ``engine`` package) and a private ``/tmp`` scratch, so no copy of the replay data or the
database is reachable, an unprivileged uid (or no capabilities), rlimits, a minimal environment
and an audit hook; ``layer()`` says which of the three layers this machine gives, and why.
Each worker loads the controller once and runs many episodes, and spare workers are started
ahead of time (they have imported the engine but never ran user code), so process start-up
does not dominate.

Two judges (docs/sandbox.md, "The guarantee"). Strict: the parent owns every episode
(``engine.replay.Episode``) and a worker never holds branch data its controller has not paid for; its
controllers get an ``engine.sandbox_episodes.RemoteEpisode`` whose actions the parent applies to its own
episodes, a step of many episodes at a time, replying with what each action reveals. Sampled (the
default for runs larger than the audit): a worker runs its episodes on its own copy of its pairs' branch
data (never a gold answer) and reports each episode's answer and action log, which the parent grades on
its own data with the episode rules. Either way the parent counts every figure itself, and after the run
randomly chosen episodes are re-run strictly in fresh workers that never hold two episodes of one question;
any difference voids the run, so an episode's result can depend on nothing but what it paid for, except
in a fraction of episodes the audit bounds.
Any failure (a limit, an exception, a crash, a cancel) raises ``SandboxError``; a partial
result is never returned. See docs/sandbox.md for the threat model.
"""

from __future__ import annotations

import ast
import atexit
import fcntl
import json
import logging
import os
import pickle
import random
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from engine import sandbox_worker as protocol
from engine.controllers import kernels
from engine.controllers.loader import ControllerError
from engine.dataset import Dataset
from engine.paths import PROJECT_ROOT, data_dir, default_db
from engine.replay import (
    COMPAT,
    MODES,
    Episode,
    InvalidAction,
    ReplayQuestion,
    replay_actions,
    replay_questions,
    shuffled_order,
)
from engine.sandbox_episodes import LANES, serve, unpack_requests
from engine.spec import ControllerSpec, Outcomes, Progress, action_events

log = logging.getLogger(__name__)

MiB = 1 << 20
EpisodeFactory = Callable[[int, int], Episode]  # (shuffle seed, question) -> the parent's episode
SANDBOX_UID = SANDBOX_GID = 65534  # 'nobody': RLIMIT_NPROC binds it, and it owns nothing
PIPE_BYTES = 1 << 20  # capacity asked for the reply FIFOs, so that a reply rarely waits for room
KILL_GRACE = 2.0  # seconds the parent waits past a limit for the worker's own report
UNSHARE_FLAGS = ("--net", "--mount", "--ipc", "--pid", "--fork", "--kill-child", "--mount-proc")
USER_FLAGS = ("--user", "--map-root-user")  # (unshare makes the user namespace first, then the others)
LAYER_FLAGS = {protocol.NAMESPACES: UNSHARE_FLAGS, protocol.USER_NAMESPACES: (*USER_FLAGS, *UNSHARE_FLAGS)}
LAYER_NAMES = {protocol.NAMESPACES: "namespaces (root)", protocol.USER_NAMESPACES: "namespaces (user)",
               protocol.NO_NAMESPACES: "fallback"}
WORKER_FILE = Path(protocol.__file__).resolve()
PRELOAD_PACKAGES = frozenset({"numpy", "scipy"})  # what the audit's zygote may import for its children
ZYGOTE_CHILDREN = 32  # audit workers one zygote forks at most (each holds two descriptors in the parent)
# The judges (docs/sandbox.md, "The guarantee"): STRICT never lets a worker hold unrevealed data; SAMPLED runs
# episodes in the worker on its pairs' branch data, grades their action logs, and audits Limits.audit_episodes
# of them in strict workers. Runs of at most that many episodes, and live runs, are always strict.
STRICT, SAMPLED = "strict", "sampled"
JUDGES = (SAMPLED, STRICT)


@dataclass(frozen=True)
class Limits:
    """What one sandboxed evaluation may use. Defaults are safe for a shared server."""

    cpu_seconds: float = 300.0  # CPU time per worker process (RLIMIT_CPU)
    episode_seconds: float = 10.0  # wall clock per episode (one solve() call)
    evaluation_seconds: float = 300.0  # wall clock for the whole evaluation
    startup_seconds: float = 30.0  # wall clock to start a worker and load the controller
    memory_bytes: int = 1024 * MiB  # address space per worker (RLIMIT_AS); numpy+scipy need ~300 MiB
    max_processes: int = 0  # RLIMIT_NPROC of the worker's uid: 0 = no fork, no threads
    open_files: int = 64  # RLIMIT_NOFILE
    output_bytes: int = 1 * MiB  # what user code may print, in all, per worker
    scratch_bytes: int = 64 * MiB  # largest file (RLIMIT_FSIZE) and size of the private /tmp
    trace_bytes: int = 1 * MiB  # JSON size of one episode's get_last_trace()
    traces_total_bytes: int = 256 * MiB  # all traces of the evaluation, as the parent holds them
    answer_chars: int = 10_000  # length of one answer
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    audit_episodes: int = 300  # episodes re-run after the run without other episodes of their question (0: none)
    judge: str = SAMPLED  # SAMPLED: a fast run holding its pairs' branch data, then the audit; STRICT: no unpaid data

    def __post_init__(self) -> None:
        if self.judge not in JUDGES:
            raise ValueError(f"Limits.judge must be one of {JUDGES}, got {self.judge!r}")
        for name, value in asdict(self).items():
            if name != "judge" and (value < 0 or (value == 0 and name not in ("max_processes", "audit_episodes"))):
                raise ValueError(f"Limits.{name} must be positive, got {value!r}")


class SandboxError(ControllerError):
    """A sandboxed evaluation failed; ``kind`` says how (e.g. 'episode_time', 'memory', 'raised')
    and ``question``/``shuffle`` where, when it happened in an episode."""

    def __init__(self, message: str, kind: str = "error", question: int | None = None,
                 shuffle: int | None = None):
        super().__init__(message)
        self.kind, self.question, self.shuffle = kind, question, shuffle


# -- what the sandbox can use on this machine -------------------------------------------------
@dataclass(frozen=True)
class Layer:
    """The confinement layer sandboxed workers get on this machine, and why."""

    level: str  # protocol.NAMESPACES, USER_NAMESPACES or NO_NAMESPACES: what workers are started with
    reason: str

    @property
    def name(self) -> str:
        """'namespaces (root)', 'namespaces (user)' or 'fallback'."""
        return LAYER_NAMES[self.level]

    @property
    def meaning(self) -> str:
        """What the layer does to a worker, in one sentence (the fallback's: a warning)."""
        return MEANINGS[self.level]

    @property
    def full(self) -> bool:
        """Whether workers get the whole kernel confinement (any namespace layer)."""
        return self.level != protocol.NO_NAMESPACES


FALLBACK_WARNING = ("controllers run with rlimits and the audit hook only, with network access and as the current "
                    "user; native code walks past the hook, so serve only trusted users, or enable unprivileged "
                    "user namespaces (see docs/sandbox.md)")
MEANINGS = {
    protocol.NAMESPACES: "workers get their own network, mount and PID namespaces and an allow-listed read-only root, "
                         f"and run as uid {SANDBOX_UID} without capabilities",
    protocol.USER_NAMESPACES: "workers get their own user, network, mount and PID namespaces and an allow-listed "
                              "read-only root, and run as the root of their user namespace without capabilities "
                              "(your own uid outside it)",
    protocol.NO_NAMESPACES: FALLBACK_WARNING,
}


@cache
def layer() -> Layer:
    """The strongest layer that works here, checked once and logged once: namespaces set up as root,
    else the same namespaces inside a user namespace (any user, where the kernel allows them), else
    the fallback (rlimits and the audit hook; a warning)."""
    found = _choose_layer()
    if found.full:
        log.info("sandbox: %s (%s)", found.name, found.reason)
    else:
        log.warning("sandbox: fallback, no namespaces (%s); %s", found.reason, FALLBACK_WARNING)
    return found


def isolation() -> str:
    """The level workers are started with: ``layer().level``."""
    return layer().level


def _choose_layer() -> Layer:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return Layer(protocol.NO_NAMESPACES, "util-linux unshare/mount not found")
    if os.geteuid() == 0:
        failed = _namespaces_unavailable(protocol.NAMESPACES)
        if failed is None:
            return Layer(protocol.NAMESPACES, "running as root, and unshare works")
        failed = f"as root: {failed}"
    else:
        failed = f"not running as root (uid {os.geteuid()})"
    why = _namespaces_unavailable(protocol.USER_NAMESPACES)
    if why is None:
        return Layer(protocol.USER_NAMESPACES, f"{failed}; unprivileged user namespaces work")
    return Layer(protocol.NO_NAMESPACES, f"{failed}; user namespaces: {why}")


def _namespaces_unavailable(level: str) -> str | None:
    """Why ``unshare`` cannot give a worker ``level``'s namespaces here (a probe mounts a tmpfs), or None."""
    unshare = shutil.which("unshare") or "unshare"
    probe = [unshare, *LAYER_FLAGS[level], "mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", "/tmp"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=10, env=_base_env("/"), cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    return None if done.returncode == 0 else f"unshare failed: {done.stderr.strip()[:200]}"


def hidden_paths(dataset: Dataset | None = None, extra: Sequence[str | os.PathLike] = ()) -> list[str]:
    """Paths controllers must not read: replay data, database, project cache, secrets, ``extra``.

    Deployments add more with ``TTSLAB_SANDBOX_HIDE`` (``os.pathsep``-separated paths)."""
    db = default_db()
    paths = [data_dir(), PROJECT_ROOT / "cache", db, Path(f"{db}.wal"), PROJECT_ROOT / ".env", *map(Path, extra)]
    source = Path(dataset.source) if dataset is not None and dataset.source else None
    if source is not None and source.is_absolute():
        paths += [source, source.parent]
    paths += [Path(p) for p in os.environ.get("TTSLAB_SANDBOX_HIDE", "").split(os.pathsep) if p]
    return sorted({os.path.realpath(p) for p in paths if os.path.exists(p)})


def preloads(source: str) -> list[str]:
    """The modules of ``PRELOAD_PACKAGES`` (at most one level deep, none private) that ``source`` imports:
    the audit's zygote imports them once, as trusted library code before any user code runs, so that its
    children do not each pay for SciPy. Only names from the allow-list: the source merely picks among them."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.update([node.module, *(f"{node.module}.{a.name}" for a in node.names)])
    parts = [name.split(".") for name in names]
    return sorted(".".join(p) for p in parts
                  if p[0] in PRELOAD_PACKAGES and len(p) <= 2 and not any(x.startswith("_") for x in p))


def _base_env(scratch: str) -> dict[str, str]:
    """The worker's whole environment: no keys, tokens or TTSLAB_* settings, one BLAS thread."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "HOME": scratch, "TMPDIR": scratch,
           "PYTHONHASHSEED": "0"}  # one string hash in every worker: the audit's re-runs see the same set orders
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                "NUMBA_NUM_THREADS"):
        env[var] = "1"
    return env


# -- the evaluation ----------------------------------------------------------------------------
Pair = tuple[Dataset, ControllerSpec]
Key = tuple[int, int, int]  # (task, seed, question): one episode of a batch


def run_sandboxed(
    dataset: Dataset, spec: ControllerSpec, *, shuffles: int, mode: str = COMPAT,
    progress: Progress | None = None, traces: bool = False, limits: Limits | None = None,
    cancel: threading.Event | None = None, hide: Sequence[str | os.PathLike] = (), actions: bool = False,
    audit: Sequence[tuple[int, int]] | None = None, episodes: EpisodeFactory | None = None,
) -> Outcomes:
    """Every episode of ``spec`` (user source) on ``dataset``, in confined worker processes.

    Returns the same ``Outcomes`` as ``run_python`` for the same controller run in process;
    raises ``SandboxError`` on any failure, after every worker and scratch file is gone.
    ``progress(done_episodes, total_episodes, label)`` is called as episodes complete;
    setting ``cancel`` stops the evaluation; ``hide`` adds paths (e.g. a ``--db`` file) to
    what controllers cannot read; ``actions`` keeps each episode's (graded) action log in
    ``Outcomes.actions`` (live runs re-execute user code on growing data: ``engine.generation.live``).
    ``Limits.judge`` says how (docs/sandbox.md, "The guarantee"): ``strict``, the parent owns every
    episode; ``sampled`` (the default), workers run the episodes on their own copy of the branch data and
    the parent grades their action logs, for a run with more episodes than ``Limits.audit_episodes``
    (others, and live runs, are strict). Either way, before returning, ``Limits.audit_episodes`` episodes
    drawn at random after the run (``audit``: these ``(shuffle, question)`` episodes instead) are re-run
    strictly in fresh workers that never hold two episodes of one question; any difference raises
    ``SandboxError`` (kind ``audit``).
    ``episodes(seed, question)`` makes the parent's episode the worker's actions are applied to (default:
    replay's over ``dataset``); a live run passes one whose data a model generates while the worker waits.
    """
    sample = None if audit is None else [(0, s, q) for s, q in audit]
    return _run([(dataset, spec)], shuffles, mode, progress, traces, limits, cancel, hide, actions, sample,
                episodes)[0]


def run_sandboxed_batch(
    pairs: Sequence[Pair], *, shuffles: int, mode: str = COMPAT, progress: Progress | None = None,
    limits: Limits | None = None, cancel: threading.Event | None = None, hide: Sequence[str | os.PathLike] = (),
    audit: Sequence[Key] | None = None,
) -> list[Outcomes]:
    """``run_sandboxed`` for many (dataset, spec) pairs of the same controller code (same source, class
    and file name; configs and datasets may differ), in one pool: each worker loads the code once and
    runs episodes of every pair, and one audit draws its ``Limits.audit_episodes`` episodes across all
    pairs (``audit``: these ``(pair, shuffle, question)`` episodes instead). Returns one ``Outcomes``
    per pair, in order, each the same as ``run_sandboxed`` gives for that pair alone; a failure in any
    pair voids the whole batch. Discovery's sweeps (one candidate, many datasets and betas) use it."""
    if not pairs:
        return []
    first = pairs[0][1]
    if any((s.source, s.class_name, s.filename) != (first.source, first.class_name, first.filename) for _, s in pairs):
        raise ValueError("run_sandboxed_batch runs one controller code: every spec needs the same source, "
                         "class name and file name")
    return _run(pairs, shuffles, mode, progress, False, limits, cancel, hide, False, audit)


def _run(pairs: Sequence[Pair], shuffles: int, mode: str, progress: Progress | None, traces: bool,
         limits: Limits | None, cancel: threading.Event | None, hide: Sequence[str | os.PathLike],
         actions: bool, audit: Sequence[Key] | None, episodes: EpisodeFactory | None = None) -> list[Outcomes]:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if any(spec.source is None for _, spec in pairs):
        raise ValueError("run_sandboxed runs user source code; built-in controllers run in process")
    run = _Evaluation(pairs, shuffles, mode, traces, limits or Limits(), progress, cancel)
    run.keep_actions = actions
    if episodes is not None:
        run.make_episode = lambda _task, seed, qi: episodes(seed, qi)
    hidden = sorted({p for ds in {id(ds): ds for ds, _ in pairs}.values() for p in hidden_paths(ds, hide)})
    k = min(len(audit) if audit is not None else run.limits.audit_episodes, run.total)
    # The sampled judge only where its audit is a sample: a run the audit covers whole is strict anyway.
    run.fast = run.limits.judge == SAMPLED and episodes is None and 0 < k < run.total
    if run.total <= 1 or k == 0:  # (a one-episode evaluation ran alone already)
        return run.execute(hidden)
    auditor = _Evaluation(pairs, shuffles, mode, False, run.limits, None, cancel)
    # Lines of the audit's zygote: each forks its workers one after another, the lines at once, each line in
    # its own PID and network namespaces. The fallback has no namespaces to keep lines apart: one line there.
    lines = min(run.limits.workers, k) if layer().full else 1
    children = min(k, run.most_repeated(), ZYGOTE_CHILDREN)
    lines = min(lines, children)
    with auditor.pool(hidden, [[] for _ in range(children)], lines):  # the zygote imports libraries meanwhile
        out = run.execute(hidden)
        if audit is None:  # drawn from os.urandom now, after the run, so its controller could not know them
            audit = random.SystemRandom().sample(sorted(run.logs), k)
        groups = _audit_groups(run, audit)
        if run.progress:
            run.progress(run.done, run.total, f"auditing {k} episodes (re-run in fresh workers)")
        _audit(run, auditor, groups[:children])
    for first in range(children, len(groups), children):  # (more groups than a zygote forks: rare)
        more = _Evaluation(pairs, shuffles, mode, False, run.limits, None, cancel)
        more.t0 = auditor.t0
        chunk = groups[first:first + children]
        with more.pool(hidden, [[] for _ in chunk], min(lines, len(chunk))):
            _audit(run, more, chunk)
    return out


def _audit_groups(run: _Evaluation, sample: Sequence[Key]) -> list[list[Key]]:
    """The audited episodes, sorted, split among the audit's workers so that no worker runs two episodes of
    the same question text (of any pair: another model's branches for the same question, or another config
    of the same dataset, would tell it that question's answer): group i holds each text's i-th episode."""
    seen: dict[str, int] = {}
    groups: list[list[Key]] = []
    for key in sorted(sample):
        text = run.tasks[key[0]].questions[key[2]].text
        i = seen[text] = seen.get(text, -1) + 1
        if i == len(groups):
            groups.append([])
        groups[i].append(key)
    return groups


def _audit(run: _Evaluation, auditor: _Evaluation, groups: list[list[Key]]) -> None:
    """Re-run the episodes of ``groups`` of the finished evaluation ``run`` in strict mode, one group per
    fresh worker of ``auditor`` (children of a zygote that has imported libraries and run no user code, each of
    its lines forking its children one after another), and void the run if any answer or action sequence differs."""
    now = time.monotonic()
    for w in auditor.workers:
        w.episodes = groups[w.index] if w.index < len(groups) else []
        if not w.episodes:  # a child the draw does not need: never forked
            w.finished = True
            auditor.sel.unregister(w.proc.fd)
        elif not w.queued:
            w.started = now  # (a first child's startup clock starts now: it is forked now)
    needed = [sum(1 for w in auditor.workers[line::auditor.lines] if w.episodes) for line in range(auditor.lines)]
    _send(auditor.workers[0].proc, " ".join(map(str, needed)) + "\n")  # the zygote forks them only now
    auditor.keep_actions = True
    auditor.total = sum(map(len, groups))
    auditor._drive()
    for key in sorted(key for group in groups for key in group):
        _compare(run, auditor, key)


def _compare(run: _Evaluation, again: _Evaluation, key: Key) -> None:
    """Raise the audit's SandboxError if episode ``key`` ran differently in the audit."""
    t, seed, qi = key
    before, alone = run.logs[key], again.tasks[t].out.actions[(seed, qi)]
    ran, solo = run.tasks[t].out, again.tasks[t].out
    if ran.answers[seed][qi] == solo.answers[seed][qi] and before == alone:
        return
    what = "a different answer" if before == alone else (
        f"different actions ({len(before)} actions, {ran.total_tokens[seed, qi]:,} tokens in the run; "
        f"{len(alone)} actions, {solo.total_tokens[seed, qi]:,} tokens alone)")
    raise SandboxError(f"audit failed {run.where(key)}: re-run in a fresh worker holding only its own replies, "
                       f"the episode gave {what}; the controller's result depends on more than what the episode "
                       "paid for (unpaid branch data, other episodes, or unseeded randomness), so the evaluation is "
                       "void", "audit", qi, seed)


@dataclass
class _Task:
    """One (dataset, spec) pair of an evaluation: its questions, its config's index, its outcomes."""

    dataset: Dataset
    spec: ControllerSpec
    questions: list[ReplayQuestion]
    data: int  # index of its dataset among the job's question lists
    config: int  # index of its config among the job's configs
    out: Outcomes


@dataclass
class _Worker:
    """Parent-side state of one worker process and of the episodes it has in flight."""

    index: int
    episodes: list[Key]  # its share of (task, seed, question), in the order they are assigned
    proc: _Proc
    started: float
    replies: int = -1  # write end of its reply FIFO (non-blocking)
    buf: bytearray = field(default_factory=bytearray)
    out: bytearray = field(default_factory=bytearray)  # reply bytes not written yet
    assigned: int = 0  # episodes handed out so far
    graded: int = 0
    lanes: dict[int, int] = field(default_factory=dict)  # lane -> position in ``episodes`` of its episode
    running: dict[int, Episode] = field(default_factory=dict)  # lane -> the parent's own episode
    free: list[int] = field(default_factory=lambda: list(reversed(range(LANES))))  # lanes without an episode
    since: float = 0.0  # when the worker last spoke
    loaded: bool = False
    finished: bool = False
    queued: bool = False  # a zygote's child not forked yet: its startup clock has not started
    successor: _Worker | None = None  # the zygote's next child, forked when this one has finished


class _Evaluation:
    """One sandboxed evaluation of one or more (dataset, spec) pairs of the same code: start the pool,
    read and grade frames, enforce the clocks."""

    def __init__(self, pairs: Sequence[Pair], shuffles: int, mode: str, traces: bool,
                 limits: Limits, progress: Progress | None, cancel: threading.Event | None):
        self.spec = pairs[0][1]
        self.mode, self.traces = mode, traces
        self.limits, self.progress, self.cancel = limits, progress, cancel
        data: dict[int, int] = {}  # id(dataset) -> its index among the question lists
        configs: list[dict[str, Any]] = []
        self.datasets: list[list[ReplayQuestion]] = []
        self.tasks: list[_Task] = []
        for ds, spec in pairs:
            if id(ds) not in data:
                data[id(ds)] = len(self.datasets)
                self.datasets.append(replay_questions(ds))
            config = dict(spec.config)
            if config not in configs:
                configs.append(config)
            questions = self.datasets[data[id(ds)]]
            n = (shuffles, len(questions))
            out = Outcomes([[None] * len(questions) for _ in range(shuffles)], np.zeros(n, np.int64),
                           np.zeros(n, np.int64), np.zeros(n, np.int64))
            self.tasks.append(_Task(ds, spec, questions, data[id(ds)], configs.index(config), out))
        self.configs = configs
        self.shuffles = shuffles
        self.total = shuffles * sum(len(t.questions) for t in self.tasks)
        self.done = 0
        self.trace_total = 0
        self.nonce = secrets.token_hex(16)
        self.max_frame = protocol.max_frame(limits.trace_bytes)
        self.workers: list[_Worker] = []
        self.lines = 0  # the lines of the pool's zygote (the audit's), or 0: spare workers
        self.keep_actions = False
        self.fast = False  # the sampled judge's run: workers hold their pairs' branch data and send action logs
        self.graders: dict[int, kernels.LogGrader] = {}  # dataset index -> its compiled grader (fast runs)
        self.logs: dict[Key, list[int]] = {}  # (task, seed, question) -> its episode's actions, for the audit
        self.make_episode: Callable[[int, int, int], Episode] = self._replay_episode
        self.sel = selectors.DefaultSelector()
        self.t0 = time.monotonic()
        # A batch gets what its pairs would get one by one: the evaluation's clock and each worker's CPU.
        self.seconds = limits.evaluation_seconds * len(self.tasks)

    def where(self, key: Key) -> str:
        """'at question 4, shuffle 17' (and which pair, in a batch of several)."""
        t, seed, qi = key
        text = f"at question {qi}, shuffle {seed}"
        if len(self.tasks) > 1:
            task = self.tasks[t]
            text += f" of {task.dataset.name} {dict(task.spec.config)}"
        return text

    def most_repeated(self) -> int:
        """Episodes of the question text that has the most (the audit's workers never run two of one text)."""
        counts: dict[str, int] = {}
        for task in self.tasks:
            for q in task.questions:
                counts[q.text] = counts.get(q.text, 0) + self.shuffles
        return max(counts.values(), default=0)

    def execute(self, hidden: list[str]) -> list[Outcomes]:
        """Run every episode, each shuffle's questions on one of ``Limits.workers`` workers in turn."""
        outs = [t.out for t in self.tasks]
        if self.total == 0:
            return outs
        count = max(1, min(self.limits.workers, self.shuffles))
        with self.pool(hidden, [[(t, s, q) for t, task in enumerate(self.tasks)
                                 for s in range(i, self.shuffles, count) for q in range(len(task.questions))]
                                for i in range(count)]):
            self._drive()
        return outs

    @contextmanager
    def pool(self, hidden: list[str], shares: list[list[Key]], lines: int = 0) -> Iterator[None]:
        """Start one worker per share of episodes and hand it the job; on exit stop them all. Workers
        are started spares (and the pool is topped up afterwards), or with ``lines`` the children of one fresh
        zygote (``sandbox_worker.zygote``): worker i is on line i % lines, and each line forks its workers one
        after another, as each finishes (worker i + lines after worker i)."""
        level = isolation()
        count = len(shares)
        self.lines = lines
        run_dir = tempfile.mkdtemp(prefix="ttslab-sandbox-")
        procs = [] if lines else SPARES.take(count, level)
        try:
            if lines:
                procs = _start_zygote(level, count)
            while len(procs) < count:
                procs.append(_start_worker(level))
            pairs = enumerate(zip(shares, procs, strict=True))
            self.workers = [_Worker(i, share, p, self.t0, queued=i >= lines > 0) for i, (share, p) in pairs]
            for w, after in zip(self.workers, self.workers[lines:], strict=False) if lines else ():
                w.successor = after
            job = self._write_job(run_dir, level, hidden, lines)
            for w in self.workers:
                self._assign(w, f"{job} {w.index} {count}\n", run_dir, send=w.index == 0 or not lines,
                             zygote=lines > 0)
            yield
        finally:
            try:
                self._stop(procs)
            finally:
                shutil.rmtree(run_dir, ignore_errors=True)
                if not lines:
                    SPARES.refill(count, level)

    # -- start -----------------------------------------------------------------------------
    def _write_job(self, run_dir: str, level: str, hidden: list[str], lines: int) -> str:
        lim = self.limits
        drop = level == protocol.NAMESPACES and os.geteuid() == 0
        job = {
            "source": self.spec.source, "class_name": self.spec.class_name, "filename": self.spec.filename,
            "configs": self.configs, "mode": self.mode, "traces": self.traces,
            "datasets": [[(q.text, q.probe_freq, q.n_branches) for q in questions]  # public facts only
                         for questions in self.datasets],
            "fast": self.fast,  # the sampled judge's run: its pairs' branch data (never a gold answer)
            "questions": self.datasets if self.fast else None,
            "tasks": [(t.data, t.config) for t in self.tasks],
            "lanes": LANES, "nonce": self.nonce,
            "isolation": level, "hidden": hidden, "scratch": run_dir,
            "uid": SANDBOX_UID if drop else None, "gid": SANDBOX_GID if drop else None,
            "limits": {**asdict(lim), "cpu_seconds": lim.cpu_seconds * len(self.tasks)},
            "zygote": lines > 0,  # the audit's: its workers are forked only when the parent says so
            "preload": preloads(self.spec.source) if lines else [],
            "lines": lines,  # line z of the zygote forks workers z, z + lines, ...
        }
        path = os.path.join(run_dir, "job.pickle")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            pickle.dump(job, f, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    def _assign(self, w: _Worker, line: str, run_dir: str, send: bool = True, zygote: bool = False) -> None:
        """Hand a started worker its job (``send``: write it the job line; a zygote's children share
        one); a spare that died while idle is replaced by a fresh one."""
        if w.proc.level == protocol.NO_NAMESPACES:
            os.mkdir(os.path.join(run_dir, f"w{w.index}"), 0o700)  # its scratch directory
        w.replies = _reply_fifo(os.path.join(run_dir, f"w{w.index}.replies"))
        if send and not _send(w.proc, line, close=not zygote) and w.proc.spare:
            _discard(w.proc)
            w.proc = _start_worker(w.proc.level)
            _send(w.proc, line)
        w.started = time.monotonic()
        self.sel.register(w.proc.fd, selectors.EVENT_READ, w)

    # -- the loop --------------------------------------------------------------------------
    def _drive(self) -> None:
        reported = 0
        while any(not w.finished for w in self.workers):
            self._check_clocks(time.monotonic())
            for key, _ in self.sel.select(self._wait_seconds()):
                if key.fd == key.data.replies:
                    self._flush(key.data)
                else:
                    self._read(key.data)
            if self.progress and self.done != reported:
                reported = self.done
                self.progress(self.done, self.total, f"{self.done}/{self.total} episodes (sandboxed)")

    def _wait_seconds(self) -> float:
        now, lim = time.monotonic(), self.limits
        ends = [self.t0 + self.seconds]
        for w in self.workers:
            if not w.finished and not w.queued:
                ends.append(w.since + lim.episode_seconds + KILL_GRACE if w.loaded
                            else w.started + lim.startup_seconds + KILL_GRACE)
        return max(0.0, min(0.2, min(ends) - now))

    def _check_clocks(self, now: float) -> None:
        lim = self.limits
        if self.cancel is not None and self.cancel.is_set():
            raise SandboxError(f"evaluation cancelled after {self.done}/{self.total} episodes", "cancelled")
        if now > self.t0 + self.seconds:
            per = f" per pair, {len(self.tasks)} pairs" if len(self.tasks) > 1 else ""
            raise SandboxError(f"evaluation time limit ({lim.evaluation_seconds:g} s{per}) exceeded after "
                               f"{self.done}/{self.total} episodes", "evaluation_time")
        for w in self.workers:
            if w.finished or w.queued:
                continue
            late = (now > w.since + lim.episode_seconds + KILL_GRACE if w.loaded
                    else now > w.started + lim.startup_seconds + KILL_GRACE)
            if late:
                kind = "episode_time" if w.loaded else "startup_time"
                raise self._error(w, kind, _HEADLINES[kind] + " (the worker did not respond and was killed)",
                                  limits=lim)

    def _read(self, w: _Worker) -> None:
        try:
            data = os.read(w.proc.fd, 1 << 20)
        except BlockingIOError:
            return
        if not data:
            raise self._died(w)
        w.buf += data
        for msg in self._frames(w):
            self._on_message(w, msg)
            if w.finished:
                break

    def _frames(self, w: _Worker) -> Iterator[Any]:
        """Complete frames in the worker's buffer, decoded (JSON only: never pickle from a worker)."""
        buf, pos = w.buf, 0
        try:
            while len(buf) - pos >= protocol.HEADER.size:
                (size,) = protocol.HEADER.unpack_from(buf, pos)
                if size > self.max_frame:
                    raise self._tampered(w, f"a frame of {size} bytes")
                end = pos + protocol.HEADER.size + size
                if len(buf) < end:
                    break
                try:
                    msg = json.loads(bytes(buf[pos + protocol.HEADER.size:end]))
                except (ValueError, RecursionError):
                    raise self._tampered(w, "a frame that is not JSON") from None
                pos = end
                yield msg
        finally:
            del buf[:pos]

    def _on_message(self, w: _Worker, msg: Any) -> None:
        if not isinstance(msg, dict) or msg.get("n") != self.nonce:
            raise self._tampered(w, "a frame without the session key")
        kind = msg.get("k")
        w.since = time.monotonic()
        if kind == "step" and w.loaded and not self.fast and type(msg.get("f")) is list:
            self._step(w, msg.get("r"), msg["f"])
            w.since = time.monotonic()  # the worker waited for the reply: its clock starts now (live runs generate)
        elif kind == "eps" and w.loaded and self.fast and type(msg.get("f")) is list:
            self._grade_logs(w, msg["f"])
            self._answer(w, [])
        elif kind == "loaded" and not w.loaded:
            w.loaded = True
            self._reply(w, [])
        elif kind == "err":
            raise self._reported(w, msg)
        else:
            raise self._tampered(w, f"an unexpected {str(kind)[:20]!r} frame")

    # -- the episodes: the parent's own, answered one action at a time ----------------------------
    def _step(self, w: _Worker, requests: Any, finished: list[Any]) -> None:
        """Grade the episodes the worker finished, apply its requested actions, and reply."""
        for item in finished:
            if type(item) is not list or len(item) != 3 or type(item[0]) is not int or item[0] not in w.lanes:
                raise self._tampered(w, "a report of an episode it was not running")
            self._grade(w, *item)
        try:
            replies = serve(w.running, unpack_requests(requests))
        except (KeyError, TypeError, ValueError):
            raise self._tampered(w, "a malformed request or one for an episode it was not running") from None
        self._answer(w, replies)

    def _answer(self, w: _Worker, replies: list[Any]) -> None:
        """Reply to a step; a worker whose every episode is graded is finished (its zygote's next child starts)."""
        if w.graded == len(w.episodes):
            w.finished = True
            self.sel.unregister(w.proc.fd)
            if w.successor is not None:
                w.successor.queued, w.successor.started = False, time.monotonic()
        self._reply(w, replies)

    def _reply(self, w: _Worker, replies: list[Any]) -> None:
        """Send the answers, and a next episode for every free lane while the worker's share lasts."""
        new = []
        while w.free and w.assigned < len(w.episodes):
            lane = w.free.pop()
            t, seed, qi = w.episodes[w.assigned]
            w.lanes[lane] = w.assigned
            w.assigned += 1
            if self.fast:  # the worker runs it on its own copy of the data
                new.append((lane, t, qi, seed))
            else:
                w.running[lane] = self.make_episode(t, seed, qi)
                new.append((lane, t, qi))
        data = pickle.dumps({"r": replies, "new": new}, protocol=pickle.HIGHEST_PROTOCOL)
        w.out += protocol.REPLY_HEADER.pack(len(data)) + data
        self._flush(w)

    def _replay_episode(self, task: int, seed: int, qi: int) -> Episode:
        rq = self.tasks[task].questions[qi]
        return Episode(rq, shuffled_order(seed, rq.n_branches), self.mode)

    def _flush(self, w: _Worker) -> None:
        """Write what the worker's reply FIFO takes now; the selector says when it takes more."""
        try:
            while w.out:
                del w.out[:os.write(w.replies, w.out)]
        except BlockingIOError:
            pass
        events = selectors.EVENT_WRITE if w.out else 0
        registered = self.sel.get_map().get(w.replies)
        if events and registered is None:
            self.sel.register(w.replies, events, w)
        elif not events and registered is not None:
            self.sel.unregister(w.replies)

    def _grade(self, w: _Worker, lane: int, answer: Any, trace: Any) -> None:
        """Record a finished episode: its answer from the worker, every figure from the parent's episode."""
        ep = w.running.pop(lane)
        self._record(w, lane, answer, trace, ep.actions, ep.total_tokens, ep.sequential_tokens)

    def _grade_logs(self, w: _Worker, finished: list[Any]) -> None:
        """Grade a fast worker's finished episodes: ``[lane, answer, trace, packed action log]`` each. Every
        figure comes from the parent's own data under the episode rules (compiled, one call per dataset and
        frame); a log those rules refuse (an honest worker's Episode records no refused action) voids the run."""
        logs: list[tuple[int, Any, Any, list[int]]] = []
        for item in finished:
            if (type(item) is not list or len(item) != 4 or type(item[0]) is not int or item[0] not in w.lanes
                    or any(item[0] == lane for lane, *_ in logs)):
                raise self._tampered(w, "a report of an episode it was not running")
            try:
                actions = unpack_requests(item[3]) if type(item[3]) is str else None
            except ValueError:
                actions = None
            if actions is None:
                raise self._tampered(w, "an action log that is not packed integers", item[0])
            logs.append((item[0], item[1], item[2], actions))
        costs: dict[int, tuple[int, int] | None] = {}
        by_data: dict[int, list[tuple[int, int, int, list[int]]]] = {}
        for lane, _, _, actions in logs:
            t, seed, qi = w.episodes[w.lanes[lane]]
            by_data.setdefault(self.tasks[t].data, []).append((lane, qi, seed, actions))
        for data, episodes in by_data.items():
            got = self._grader(data).costs_many([(qi, seed, actions) for _, qi, seed, actions in episodes])
            costs.update(zip((lane for lane, *_ in episodes), got, strict=True))
        for lane, answer, trace, actions in logs:
            if costs[lane] is None:
                t, seed, qi = w.episodes[w.lanes[lane]]
                why = self._refusal(self.tasks[t].questions[qi], seed, actions)
                raise self._tampered(w, f"an action log the episode rules refuse ({why})", lane)
            self._record(w, lane, answer, trace, actions, *costs[lane])

    def _grader(self, data: int) -> kernels.LogGrader:
        if data not in self.graders:
            task = next(t for t in self.tasks if t.data == data)
            self.graders[data] = kernels.LogGrader(task.dataset, self.shuffles, self.mode)
        return self.graders[data]

    def _refusal(self, rq: ReplayQuestion, seed: int, actions: list[int]) -> str:
        """Why the episode rules refuse a log, in engine.replay's own words."""
        try:
            replay_actions(rq, shuffled_order(seed, rq.n_branches), actions, self.mode)
        except (InvalidAction, IndexError, TypeError, ValueError) as exc:
            return str(exc)[:200]
        return "refused by the compiled grader"

    def _record(self, w: _Worker, lane: int, answer: Any, trace: Any, actions: list[int], total: int,
                sequential: int) -> None:
        """Record a finished episode: its answer (checked) and trace from the worker, the figures the parent
        counted, and free its lane."""
        key = w.episodes[w.lanes[lane]]
        t, seed, qi = key
        out = self.tasks[t].out
        if answer is not None and type(answer) is not str:
            raise self._tampered(w, "an answer that is not a string", lane)
        if answer is not None and len(answer) > self.limits.answer_chars:
            raise self._error(w, "answer", "controller returned an answer of {n} characters {where}; the limit "
                              "is {limit}", lane=lane, n=len(answer), limit=self.limits.answer_chars)
        out.answers[seed][qi] = answer
        out.total_tokens[seed, qi] = total
        out.sequential_tokens[seed, qi] = sequential
        out.n_actions[seed, qi] = len(actions)
        self.logs[key] = actions
        if self.keep_actions or self.traces:
            out.actions[(seed, qi)] = list(actions)
        if self.traces:
            out.traces[(seed, qi)] = self._trace(w, lane, trace, self.tasks[t].questions[qi], actions, seed)
        del w.lanes[lane]
        w.free.append(lane)
        w.graded += 1
        self.done += 1

    def _trace(self, w: _Worker, lane: int, text: Any, rq: ReplayQuestion, actions: list[int], seed: int) -> list:
        self.trace_total += len(text) if type(text) is str else 200 * len(actions)  # ~200 B per action event
        if self.trace_total > self.limits.traces_total_bytes:
            raise self._error(w, "trace", "trace limit ({total} in all) exceeded {where}", lane=lane,
                              total=_size(self.limits.traces_total_bytes))
        if text is None:
            return action_events(rq, actions, seed)
        if type(text) is not str or len(text) > self.limits.trace_bytes:
            raise self._tampered(w, "a malformed trace", lane)
        try:
            trace = json.loads(text)
        except (ValueError, RecursionError):
            trace = None
        if not isinstance(trace, list):
            raise self._tampered(w, "a malformed trace", lane)
        return trace

    # -- failures ----------------------------------------------------------------------------
    def _at(self, w: _Worker, lane: Any = None) -> Key:
        """(task, seed, question) of the episode in ``lane``, else of the worker's oldest episode in flight."""
        if lane not in w.lanes:
            lane = min(w.lanes, key=w.lanes.__getitem__, default=None)
        position = w.lanes[lane] if lane is not None else min(w.assigned, len(w.episodes) - 1)
        return w.episodes[position]

    def _error(self, w: _Worker, kind: str, template: str, tb: str = "", lane: Any = None,
               **fields: Any) -> SandboxError:
        """SandboxError for the episode in ``lane`` (or the worker's oldest in flight); ``template``
        has a ``{where}`` field."""
        if w.loaded:
            key = self._at(w, lane)
            _, seed, qi = key
            where = self.where(key)
        else:
            seed = qi = None
            where = "while loading the controller"
        text = template.format(where=where, **fields)
        return SandboxError(f"{text}:\n{tb}" if tb else text, kind, qi, seed)

    def _reported(self, w: _Worker, msg: dict[str, Any]) -> SandboxError:
        """The worker's own report of a failure (its text is shown, never trusted for figures)."""
        lim = self.limits
        kind = str(msg.get("kind"))
        tb = str(msg.get("tb") or "")[-protocol.MAX_TEXT:]
        detail = str(msg.get("detail") or "")[:protocol.MAX_TEXT]
        if kind == "load":
            return SandboxError(detail or "loading the controller failed", "load")
        if kind == "internal":
            return SandboxError(f"sandbox worker failed:\n{detail}", "internal")
        if kind == "timeout":
            kind = "episode_time" if w.loaded else "startup_time"
        template = _HEADLINES.get(kind, "controller failed {where}")
        lane = msg.get("l") if type(msg.get("l")) is int else None
        return self._error(w, kind, template, tb, lane, detail=detail, limits=lim,
                           memory=lim.memory_bytes // MiB, output=_size(lim.output_bytes),
                           trace=_size(lim.trace_bytes), frame=_size(self.max_frame))

    def _tampered(self, w: _Worker, what: str, lane: int | None = None) -> SandboxError:
        return self._error(w, "protocol", "the sandbox's result channel received {what} {where}; the "
                           "controller may have written to it, so the evaluation is void", lane=lane, what=what)

    def _died(self, w: _Worker) -> SandboxError:
        try:
            status = w.proc.popen.wait(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            status = None
        how = f"exit status {status}" if status is not None else "it closed its result channel"
        return self._error(w, "died", "the sandbox worker stopped without a report {where} ({how}); did the "
                           "controller call os._exit() or crash the interpreter?", how=how)

    # -- cleanup -----------------------------------------------------------------------------
    def _stop(self, procs: list[_Proc]) -> None:
        """Kill every worker and its namespace, reap them, and wait until none of them is left."""
        procs = [*procs, *(w.proc for w in self.workers if w.proc not in procs)]
        for p in procs:
            _discard(p)
        for w in self.workers:
            if w.replies >= 0:
                os.close(w.replies)
                w.replies = -1
        self.sel.close()
        _wait_gone({p.popen.pid for p in procs})


# -- worker processes and spares ------------------------------------------------------------
@dataclass(eq=False)
class _Proc:
    """A started worker process, its result pipe, and whether it was started ahead of time."""

    popen: subprocess.Popen
    fd: int
    level: str
    spare: bool = False


def _start_worker(level: str, spare: bool = False) -> _Proc:
    """Start a worker; it imports the engine, then waits for its job on stdin."""
    return _spawn(level, 1, spare)[0]


def _start_zygote(level: str, children: int) -> list[_Proc]:
    """Start the audit's zygote (``sandbox_worker.zygote``): one process that will fork ``children``
    workers (on its lines, each line's one after another), each with its own frame pipe; one ``_Proc`` per
    child, sharing the process."""
    return _spawn(level, children, False)


def _spawn(level: str, pipes: int, spare: bool) -> list[_Proc]:
    ends = [os.pipe() for _ in range(pipes)]
    writers = [w for _, w in ends]
    try:
        popen = subprocess.Popen(_worker_command(level, writers), stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=writers,
                                 env=_base_env("/"), cwd="/", start_new_session=True)
    except BaseException:
        for r, _ in ends:
            os.close(r)
        raise
    finally:
        for w in writers:
            os.close(w)
    for r, _ in ends:
        os.set_blocking(r, False)
    return [_Proc(popen, r, level, spare) for r, _ in ends]


def _worker_command(level: str, fds: list[int]) -> list[str]:
    """The worker's command line: under ``unshare`` with the namespaces of ``level``, if any."""
    flags = LAYER_FLAGS.get(level)
    prefix = [] if flags is None else [shutil.which("unshare") or "unshare", *flags]
    # -s -P (no user site, no script folder on the path) rather than -I: the worker must read
    # PYTHONHASHSEED from its (wholly ours) environment, so set and dict-of-set orders are the same in
    # every worker and an honest controller breaking ties by set order passes the audit.
    return [*prefix, sys.executable, "-s", "-P", "-B", str(WORKER_FILE), ",".join(map(str, fds))]


def _reply_fifo(path: str) -> int:
    """A FIFO for a worker's replies, opened for writing without waiting for its reader."""
    os.mkfifo(path, 0o600)
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)  # (O_RDWR: never blocks, never raises SIGPIPE)
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:  # above /proc/sys/fs/pipe-max-size for this user: the default is only slower
        pass
    return fd


def _send(proc: _Proc, line: str, close: bool = True) -> bool:
    """Write ``line`` to the worker's stdin, then close it unless more is to come (a zygote's go-aheads)."""
    try:
        proc.popen.stdin.write(line.encode())
        proc.popen.stdin.flush()
        if close:
            proc.popen.stdin.close()
        return True
    except OSError:
        return False


def _discard(proc: _Proc) -> None:
    """Stop a worker for good and release its pipes (idempotent)."""
    try:
        proc.popen.stdin.close()
    except OSError:
        pass
    _stop_worker(proc.popen)
    if proc.fd >= 0:
        os.close(proc.fd)
        proc.fd = -1


class _Spares:
    """Workers started ahead of time, so that an evaluation does not wait for interpreter start-up.

    A spare has imported the engine but not read a job: it never ran user code, holds no data,
    and serves one evaluation only. After each evaluation the pool is topped up (in a background
    thread) to that evaluation's worker count. Idle spares exit when this process exits (EOF on
    their stdin). ``TTSLAB_SANDBOX_SPARES=0`` turns them off."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: list[_Proc] = []
        self.fillers: list[threading.Thread] = []
        self.enabled = os.environ.get("TTSLAB_SANDBOX_SPARES", "1") != "0"

    def take(self, n: int, level: str) -> list[_Proc]:
        self._settle()
        with self.lock:
            got = [p for p in self.idle if p.level == level and p.popen.poll() is None][:n]
            self.idle = [p for p in self.idle if p not in got]
        return got

    def refill(self, n: int, level: str) -> None:
        """Top the pool up to ``n`` spares for ``level`` without making the caller wait."""
        if self.enabled:
            filler = threading.Thread(target=self._fill, args=(n, level), name="sandbox-spares", daemon=True)
            with self.lock:
                self.fillers.append(filler)
            filler.start()

    def _fill(self, n: int, level: str) -> None:
        with self.lock:  # (concurrent refills may briefly overshoot n: harmless)
            stale = [p for p in self.idle if p.level != level or p.popen.poll() is not None]
            self.idle = [p for p in self.idle if p not in stale]
            need = n - len(self.idle)
        for p in stale:
            _discard(p)
        try:
            fresh = [_start_worker(level, spare=True) for _ in range(need)]
        except OSError as exc:  # no spares is only slower
            log.warning("sandbox: could not start spare workers: %s", exc)
            return
        with self.lock:
            self.idle += fresh

    def _settle(self) -> None:
        """Wait for background refills (they are short: starting a process, not its imports)."""
        with self.lock:
            fillers, self.fillers = self.fillers, []
        for filler in fillers:
            filler.join()

    def pids(self) -> list[int]:
        """Process ids of the idle spares (``unshare`` processes under namespaces)."""
        self._settle()
        with self.lock:
            return [p.popen.pid for p in self.idle]

    def close(self) -> None:
        """Stop every idle spare (at exit, or to release the processes now)."""
        self._settle()
        with self.lock:
            idle, self.idle = self.idle, []
        for p in idle:
            _discard(p)


SPARES = _Spares()
atexit.register(SPARES.close)


_HEADLINES = {
    "episode_time": "episode time limit ({limits.episode_seconds:g} s) exceeded {where}",
    "startup_time": "startup time limit ({limits.startup_seconds:g} s) exceeded {where}",
    "raised": "controller raised {where}",
    "strict": "strict mode, {where}: {detail}",
    "cpu": "CPU time limit ({limits.cpu_seconds:g} s per worker) exceeded {where}",
    "memory": "memory limit ({memory} MiB) exceeded {where}",
    "output": "output limit ({output}) exceeded {where}: the controller printed more than that",
    "exit": "controller called {detail} {where}",
    "type": "controller returned {detail} {where}; solve() must return a str or None",
    "trace": "trace limit ({trace}) exceeded {where}: get_last_trace() gave {detail} of JSON",
    "frame": "result of {detail} exceeds the frame limit ({frame}) {where}",
    "tampered": "the controller interfered with the sandbox's episode scheduler {where} ({detail})",
}


def _size(n: int) -> str:
    return f"{n / MiB:g} MiB" if n >= MiB else f"{n} bytes"


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (the worker inside ``unshare --fork``)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _stop_worker(proc: subprocess.Popen) -> None:
    """Kill the worker inside ``unshare --fork`` first, so that unshare reaps it (this machine's
    init may not reap orphans), then unshare's whole process group."""
    for pid in _children(proc.pid):
        _signal(os.kill, pid)
    try:
        proc.wait(timeout=KILL_GRACE)
    except subprocess.TimeoutExpired:
        pass
    _signal(os.killpg, proc.pid)
    proc.kill()
    proc.wait()


def _signal(kill: Any, target: int) -> None:
    try:
        kill(target, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _session_members(sessions: set[int]) -> list[int]:
    """Live processes in the workers' sessions, leaders excluded (reaped already, so a process
    whose pid equals a session id is an unrelated one that reused the number)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        pid, sid = int(entry.name), int(fields[3])
        if sid in sessions and pid != sid and fields[0] not in ("Z", "X"):
            found.append(pid)
    return found


def _wait_gone(sessions: set[int], timeout: float = 5.0) -> None:
    """Kill and wait out anything left in the workers' sessions, for at most ``timeout``."""
    end = time.monotonic() + timeout
    while (left := _session_members(sessions)) and time.monotonic() < end:
        for pid in left:
            _signal(os.kill, pid)
        time.sleep(0.01)
    if left:
        log.warning("sandbox: processes %s outlived the evaluation", left)
