"""One sandbox worker: confines itself, loads untrusted controller code once, runs its episodes.

``engine.sandbox`` starts it as ``python -I -B sandbox_worker.py FD`` (inside ``unshare``
namespaces where available), possibly ahead of time: it imports what it needs, then waits for
one line ``JOB INDEX COUNT`` on stdin. Everything that limits the controller happens here,
*before* user code runs: an allow-listed read-only root without the data or the database,
rlimits, the uid drop, an audit hook and a capped stdout.

The worker never holds a question's branch data: the job carries only each question's text, interval
length and branch count, and the controller's question object is an
``engine.sandbox_episodes.RemoteEpisode`` whose every action is answered by the parent, which owns
the episode (see ``Lanes``). The worker sends length-prefixed JSON frames on the private pipe ``FD``
and reads the parent's replies from a FIFO opened before confinement; nothing it says is trusted.

This module is also imported by the parent for the frame format; it has no import side effects.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import struct
import sys
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

HEADER = struct.Struct(">I")  # frame = 4-byte big-endian length + UTF-8 JSON object
REPLY_HEADER = HEADER  # the parent's replies: the same length prefix + a pickle (parent -> worker only)
FRAME_SLACK = 16 << 20  # room in a frame for requests and answers, beside the traces
STEP_SECONDS = 0.05  # longest a step collects requests before it sends them (the parent's watchdog needs word)
STEPS_IN_FLIGHT = 2  # a step carries about half the episodes in flight, so that the parent answers
# some steps while the worker runs the episodes answered before: neither waits on the other
TICK_SECONDS = 0.02  # how often an episode's clock is looked at while it runs (its limit's resolution)
# The confinement layers ("isolation" levels), strongest first: namespaces set up as root (then the uid
# drop), namespaces inside a user namespace (any user; root of it without capabilities), the fallback.
NAMESPACES, USER_NAMESPACES, NO_NAMESPACES = "namespaces", "user-namespaces", "none"
SCRATCH_IN_NAMESPACE = "/tmp/ttslab-scratch"  # on the worker's private /tmp tmpfs
NEW_ROOT = "root"  # the worker's root is built in /tmp/root, on a private tmpfs over /tmp
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")  # bound read-only
SYSTEM_FILES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/etc/ld.so.cache",
                "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf")
MAX_TEXT = 20_000  # characters of traceback text sent back

# mount(2) flags
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 8, 32, 4096, 16384
# statvfs flags of a mount -> the mount(2) flags its read-only remount keeps (a user namespace may not
# clear them; atime flags are kept by the kernel when a remount names none)
KEPT_FLAGS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC))
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_READ, PR_CAPBSET_DROP = 38, 23, 24
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x08000000, 0x20000000, 0x40000000
CAPABILITY_VERSION_3 = 0x20080522
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, X32_SYSCALL_BIT = 0x7FFF0000, 0x00050000, 0x40000000
# machine -> (AUDIT_ARCH of its native ABI, numbers of add_key, request_key, keyctl)
KEYRING_SYSCALLS = {"x86_64": (0xC000003E, (248, 249, 250)), "aarch64": (0xC00000B7, (217, 218, 219))}


def max_frame(trace_bytes: int) -> int:
    """Largest frame either side accepts."""
    return trace_bytes + FRAME_SLACK


# -- limits raised inside user code -------------------------------------------------------------
class TimeLimitExceeded(BaseException):
    """The wall-clock limit of this episode (or of loading) ran out. BaseException: a bare
    ``except Exception`` in the controller must not swallow it."""


class CpuLimitExceeded(BaseException):
    """RLIMIT_CPU's soft limit was reached (SIGXCPU)."""


class OutputLimitExceeded(BaseException):
    """The controller printed more than the output cap."""


class _Report(Exception):
    """A failure of user code (or of a limit) to report to the parent; the worker then exits."""

    def __init__(self, kind: str, tb: str = "", detail: str = ""):
        super().__init__(kind)
        self.kind, self.tb, self.detail = kind, tb[-MAX_TEXT:], detail[:MAX_TEXT]
        self.lane: int | None = None  # the episode slot it happened in, when it happened in an episode


_fired: list[str] = []  # which limit signal fired last (a BaseException can be caught by users)
_reserve = [bytearray(1 << 20)]  # freed on MemoryError so that reporting it has room


def _on_alarm(signum: int, frame: Any) -> None:
    _fired.append("timeout")
    raise TimeLimitExceeded("wall-clock time limit")


def _on_xcpu(signum: int, frame: Any) -> None:
    _fired.append("cpu")
    raise CpuLimitExceeded("CPU time limit")


class CappedOutput:
    """sys.stdout/sys.stderr for user code: discards text, counts it, and stops at the cap."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, limit: int):
        self.limit, self.written, self.exceeded = limit, 0, False

    def write(self, text: str) -> int:
        self.written += len(str(text).encode("utf-8", "replace"))
        if self.written > self.limit:
            self.exceeded = True
            raise OutputLimitExceeded(f"printed more than {self.limit} bytes")
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError("the sandbox's output has no file descriptor")


# -- the channel to the parent -------------------------------------------------------------------
class Channel:
    """Frames to the parent on the private pipe (JSON), the parent's replies from its FIFO (pickle:
    the parent is trusted); limit signals are held back while a frame is in transit."""

    def __init__(self, fd: int, replies: int, nonce: str, limit: int):
        self.fd, self.replies, self.nonce, self.limit = fd, replies, nonce, limit

    def send(self, msg: dict[str, Any]) -> None:
        msg["n"] = self.nonce
        data = json.dumps(msg, separators=(",", ":")).encode()
        if len(data) > self.limit:
            raise _Report("frame", detail=f"{len(data)} bytes")
        view = memoryview(HEADER.pack(len(data)) + data)
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGXCPU})
        try:
            while view:
                view = view[os.write(self.fd, view):]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def receive(self) -> Any:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGXCPU})
        try:
            (size,) = REPLY_HEADER.unpack(self._read(REPLY_HEADER.size))
            return pickle.loads(self._read(size))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _read(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = os.read(self.replies, n)
            if not chunk:
                raise EOFError("the parent closed the reply channel")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)


# -- confinement (runs as the user that started the evaluation, before any user code) ----------
def confine(job: dict[str, Any], index: int) -> str:
    """Mounts, rlimits and the uid drop; returns the scratch directory (now the cwd)."""
    import resource

    lim = job["limits"]
    namespaces = job["isolation"] in (NAMESPACES, USER_NAMESPACES)
    if namespaces:
        scratch = _private_root(job["hidden"], lim["scratch_bytes"], job["uid"], job["gid"])
    else:
        scratch = os.path.join(job["scratch"], f"w{index}")  # made by the parent
    os.chdir(scratch)
    cpu = max(1, int(lim["cpu_seconds"] + 0.999))
    for res, value in ((resource.RLIMIT_CPU, (cpu, cpu + 2)),
                       (resource.RLIMIT_AS, (lim["memory_bytes"],) * 2),
                       (resource.RLIMIT_NOFILE, (lim["open_files"],) * 2),
                       (resource.RLIMIT_FSIZE, (lim["scratch_bytes"],) * 2),
                       (resource.RLIMIT_CORE, (0, 0))):
        resource.setrlimit(res, value)
    if namespaces:
        _drop_bounding_set()  # (needs CAP_SETPCAP, so before the uid drop)
    if job["uid"] is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(job["gid"])
        os.setuid(job["uid"])
    # After the uid drop: RLIMIT_NPROC counts the processes of the (unprivileged) uid.
    resource.setrlimit(resource.RLIMIT_NPROC, (lim["max_processes"],) * 2)
    _libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _deny_keyrings()
    if namespaces:
        _drop_capabilities()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large file is an OSError, not a kill
    signal.signal(signal.SIGXCPU, _on_xcpu)
    signal.signal(signal.SIGALRM, _on_alarm)
    return scratch


def _deny_keyrings() -> None:
    """A seccomp filter: ``add_key``, ``request_key`` and ``keyctl`` fail with EPERM, and so does any system
    call of another ABI (i386 or x32 calls on x86_64, which would reach them under other numbers). The
    kernel's user keyring is shared by every process of one uid (every worker as ``nobody`` in the root
    layer, every child of one zygote in the user layer), past every namespace: without this, a worker could
    leave data there for a later worker or audit child. Needs no_new_privs (set just before)."""
    import ctypes
    import platform

    arch, numbers = KEYRING_SYSCALLS.get(platform.machine(), (None, ()))
    if arch is None:  # (no filter on an unknown architecture: docs/sandbox.md says so)
        return
    deny = 8 - 1  # the index of the deny instruction, less one: jumps count from the next instruction
    program = [(0x20, 0, 0, 4),  # load seccomp_data.arch
               (0x15, 0, deny - 1, arch),  # another ABI: deny
               (0x20, 0, 0, 0),  # load seccomp_data.nr
               (0x35, deny - 3, 0, X32_SYSCALL_BIT),  # an x32 call: deny
               *((0x15, deny - 4 - i, 0, nr) for i, nr in enumerate(numbers)),  # a keyring call: deny
               (0x06, 0, 0, SECCOMP_RET_ALLOW),
               (0x06, 0, 0, SECCOMP_RET_ERRNO | 1)]  # EPERM
    filters = (ctypes.c_uint64 * len(program))(
        *(code | jt << 16 | jf << 24 | k << 32 for code, jt, jf, k in program))
    prog = struct.pack("HxxxxxxP", len(program), ctypes.addressof(filters))
    if _libc().prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.c_char_p(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: {os.strerror(err)}")


def _drop_bounding_set() -> None:
    """Empty the capability bounding set: no program run later can gain a capability."""
    libc = _libc()
    for cap in range(64):  # (numbers past the kernel's last capability fail harmlessly)
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    if any(libc.prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 for cap in range(64)):
        raise OSError("could not empty the capability bounding set")


def _drop_capabilities() -> None:
    """Clear every capability of this process. In a user namespace the worker is its root (the uid
    cannot be dropped: only one uid is mapped), so this, with the empty bounding set and no_new_privs,
    is what keeps it from undoing the mounts or leaving the chroot."""
    import ctypes

    header = (ctypes.c_uint32 * 2)(CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable (x2 words): all empty
    if _libc().capset(header, data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    import ctypes

    args = [None if a is None else os.fsencode(a) for a in (source, target, fstype)]
    if _libc().mount(*args, flags, None if data is None else data.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _needed_paths() -> list[str]:
    """What the interpreter needs after the uid drop: the stdlib, site-packages and the ``engine``
    package, never the project root around it (its ``cache/``, ``.env`` and data stay outside)."""
    project = str(Path(__file__).resolve().parent.parent)
    entries = [os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path) if p]
    paths = {p for p in entries if os.path.isdir(p) and p != project} | {os.path.join(project, "engine")}
    return sorted(p for p in paths if not any(_under(p, q) for q in paths if q != p))


def allowed_paths() -> list[str]:
    """Everything a controller may read besides its scratch directory: what is bound into the
    worker's root under namespaces, and what the audit hook lets through (in both modes), so the
    two share one definition."""
    return [p for p in (*SYSTEM_DIRS, *SYSTEM_FILES, *_needed_paths()) if os.path.exists(p)]


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _bind_readonly(source: str, target: str, is_dir: bool, flags: int) -> None:
    """Bind ``source`` (a directory or a file, device nodes included) at ``target``, read-only,
    keeping ``flags`` (the source mount's nosuid/nodev/noexec)."""
    if is_dir:
        os.makedirs(target, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        open(target, "a").close()
    _mount(source, target, None, MS_BIND | MS_REC)
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | flags)


def _kept_flags(path: str) -> int:
    """The nosuid/nodev/noexec flags of the mount holding ``path``, as mount(2) flags."""
    have = os.statvfs(path).f_flag
    return sum(ms for st, ms in KEPT_FLAGS if have & st)


def _mask(target: str) -> None:
    """An empty read-only directory, or /dev/null, over ``target``."""
    if os.path.isdir(target):
        _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=0555")
    else:
        _mount("/dev/null", target, None, MS_BIND)


def _private_root(hidden: list[str], size: int, uid: int | None, gid: int | None) -> str:
    """In the worker's own mount namespace: a new root holding only what the worker needs (system
    libraries, the interpreter, site-packages, the ``engine`` package, a few device nodes), all
    read-only, plus a private ``/tmp``; then ``chroot`` into it. Returns the scratch directory.

    An allow-list, not a deny-list: a copy of the replay data or a database anywhere else on the
    machine (another checkout, a home directory, a shared folder) does not exist for the controller.
    ``hidden`` paths that fall inside an allowed directory are masked as well.

    The root is staged on a tmpfs over the host's ``/tmp``, so the allow-list and its sources are read
    first; a source under ``/tmp`` (a quick checkout, a CI build folder, a venv) is then bound through
    the working directory, which stays in the covered host ``/tmp``."""
    binds = [(path, os.path.isdir(path), _kept_flags(path)) for path in allowed_paths()]
    tmp = os.path.realpath("/tmp")
    os.chdir(tmp)
    _mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0700")
    root = os.path.join(tmp, NEW_ROOT)
    os.mkdir(root, 0o755)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    os.mkdir(root + "/tmp", 0o755)  # the private /tmp comes first, so that binds under /tmp land on it
    _mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
    for path, is_dir, flags in binds:
        if not os.path.exists(root + path):  # (one inside another is bound with it)
            _bind_readonly(os.path.relpath(path, tmp) if _under(path, tmp) else path, root + path, is_dir, flags)
    for h in sorted(hidden, key=len):
        if os.path.exists(root + h) and not any(_under(path, h) for path, _, _ in binds):
            _mask(root + h)
    _mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chroot(root)
    os.makedirs(SCRATCH_IN_NAMESPACE, mode=0o700)
    if uid is not None and os.geteuid() == 0:
        os.chown(SCRATCH_IN_NAMESPACE, uid, gid)
    return SCRATCH_IN_NAMESPACE


# -- the audit hook: a second layer, for ordinary misbehaviour -----------------------------------
PROCESS_EVENTS = frozenset({
    "os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "subprocess.Popen",
    "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill", "resource.setrlimit", "resource.prlimit",
})
NATIVE_EVENTS = frozenset({
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function", "ctypes.string_at",
    "ctypes.wstring_at", "ctypes.cdata", "ctypes.cdata/buffer",
})
NETWORK_PREFIXES = ("socket.", "urllib.", "http.client.", "ftplib.", "smtplib.", "poplib.", "imaplib.",
                    "nntplib.", "telnetlib.", "webbrowser.")
# event -> (positions of paths it writes, position of a dir_fd argument or None)
WRITE_EVENTS = {
    "os.remove": ((0,), 1), "os.rmdir": ((0,), 1), "os.mkdir": ((0,), 2), "os.rename": ((0, 1), 2),
    "os.symlink": ((1,), 2), "os.link": ((0, 1), 2), "os.truncate": ((0,), None), "os.chmod": ((0,), 2),
    "os.chown": ((0,), 3), "os.utime": ((0,), 3), "os.mkfifo": ((0,), 2), "os.mknod": ((0,), 3),
    "shutil.rmtree": ((0,), 1), "shutil.move": ((0, 1), None), "shutil.copyfile": ((1,), None),
    "sqlite3.connect": ((0,), None),
}
READ_EVENTS = {"os.listdir": 0, "os.scandir": 0, "glob.glob": 0}
DENIED_IMPORTS = frozenset({"duckdb"})  # opens database files in C, past the open() hook
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class Guard:
    """sys.addaudithook callback: denies processes, network, native calls, writes outside the
    scratch directory and reads of hidden paths, with a PermissionError naming the operation.

    Audit hooks are not a security boundary (native code skips them); the kernel layers
    (namespaces, read-only mounts, uid, rlimits) are. This layer gives clear messages."""

    def __init__(self, scratch: str, hidden: list[str]):
        self.scratch = os.path.realpath(scratch)
        self.hidden = [os.path.realpath(h) for h in hidden]
        self.readable = sorted({os.path.realpath(p) for p in (*allowed_paths(), scratch)})
        self.busy = False

    def __call__(self, event: str, args: tuple) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            self._check(event, args)
        finally:
            self.busy = False

    def _check(self, event: str, args: tuple) -> None:
        if event == "open":
            self._check_open(*args[:3])
        elif event in WRITE_EVENTS:
            positions, dir_fd = WRITE_EVENTS[event]
            if dir_fd is not None and len(args) > dir_fd and args[dir_fd] not in (None, -1):
                deny(f"{event} relative to a directory descriptor", "only plain paths are allowed")
            for i in positions:
                if i < len(args):
                    self._check_write(args[i], event)
        elif event in READ_EVENTS:
            self._check_read(args[READ_EVENTS[event]], event)
        elif event in PROCESS_EVENTS:
            deny(event, "controllers may not start, signal or re-limit processes")
        elif event in NATIVE_EVENTS:
            deny(event, "controllers may not call native code through ctypes")
        elif event.startswith(NETWORK_PREFIXES):
            deny(event, "controllers have no network access")
        elif event == "import" and args and str(args[0]).split(".")[0] in DENIED_IMPORTS:
            deny(f"import {args[0]}", "controllers may not open databases")

    def _check_open(self, path: Any, mode: Any, flags: Any) -> None:
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & WRITE_FLAGS)
        if writing:
            self._check_write(path, "open")
        else:
            self._check_read(path, "open")

    def _check_write(self, path: Any, event: str) -> None:
        real = _resolve(path)
        if real is None or real == "/dev/null" or _under(real, self.scratch):
            return
        deny(f"writing {real} ({event})", "controllers may write only inside their scratch directory")

    def _check_read(self, path: Any, event: str) -> None:
        real = _resolve(path)
        if real is None:
            return
        if any(_under(real, h) for h in self.hidden):
            deny(f"reading {real} ({event})", "the dataset and database files are hidden from controllers")
        if not any(_under(real, r) for r in self.readable):
            deny(f"reading {real} ({event})",
                 "controllers may read only Python, its packages, system libraries and their scratch directory")


def _resolve(path: Any) -> str | None:
    if isinstance(path, int) or path is None:
        return None
    try:
        return os.path.realpath(os.fsdecode(os.fspath(path)))
    except (TypeError, ValueError):
        return None


def deny(operation: str, why: str) -> None:
    raise PermissionError(f"sandbox: {operation} is not allowed ({why})")


# -- running user code --------------------------------------------------------------------------
class Runner:
    """Loads the controller and runs episodes, turning every way user code can fail into a _Report."""

    def __init__(self, job: dict[str, Any], output: CappedOutput):
        self.job, self.output = job, output
        self.filename = job["filename"]

    def guarded(self, seconds: float, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call user code under a wall-clock timer; classify whatever escapes it."""
        _fired.clear()
        try:
            signal.setitimer(signal.ITIMER_REAL, seconds)
            try:
                result = fn(*args, **kwargs)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException as exc:  # user code can raise anything, SystemExit included
            raise self.classify(exc) from None
        if self.output.exceeded:
            raise _Report("output")
        return result

    def classify(self, exc: BaseException) -> _Report:
        if isinstance(exc, MemoryError):
            _reserve.clear()
        report = self._report(exc)
        exc.__traceback__ = None  # frees the controller's locals (a memory bomb's data)
        return report

    def _report(self, exc: BaseException) -> _Report:
        from engine.controllers.loader import ControllerError, user_traceback
        from engine.replay import InvalidAction

        if self.output.exceeded or isinstance(exc, OutputLimitExceeded):
            return _Report("output", self.frames(exc))
        if _fired:  # a limit signal, even if the controller caught it and raised something else
            return _Report(_fired[-1], self.frames(exc) or (str(exc) if isinstance(exc, ControllerError) else ""))
        if isinstance(exc, MemoryError):
            return _Report("memory", self.frames(exc))
        if isinstance(exc, SystemExit):
            return _Report("exit", self.frames(exc), f"sys.exit({exc.code!r})")
        if isinstance(exc, InvalidAction):
            return _Report("strict", "", str(exc))
        if isinstance(exc, ControllerError):
            return _Report("load", "", str(exc))
        return _Report("raised", user_traceback(exc, self.filename))

    def frames(self, exc: BaseException) -> str:
        tb = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == self.filename]
        return "".join(traceback.format_list(tb)).rstrip()

    def load_lanes(self, n: int) -> list[list[Any]]:
        """The controller class, loaded once, and per config one instance of it per episode slot:
        episodes in flight never share an instance (each instance runs its slot's episodes of that
        config one after another)."""
        from engine.controllers.loader import ControllerError, load_class, user_traceback

        job = self.job
        cls = load_class(job["source"], job["class_name"], self.filename)
        try:
            return [[cls(config=dict(config)) if config else cls() for _ in range(n)] for config in job["configs"]]
        except Exception as exc:
            raise ControllerError(
                f"constructing {cls.__name__} failed:\n{user_traceback(exc, self.filename)}") from None

    def episode(self, controller: Any, question: Any) -> tuple[str | None, str | None]:
        """Run in an episode's greenlet: solve, check the answer, take the trace if asked for."""
        answer = controller.solve(question)
        if answer is not None and not isinstance(answer, str):
            raise _Report("type", detail=type(answer).__name__)
        return answer, self.trace(controller) if self.job["traces"] else None

    def trace(self, controller: Any) -> str | None:
        """The controller's own trace as JSON text, like evaluate.episode_trace; None if it keeps none."""
        get = getattr(controller, "get_last_trace", None)
        if not callable(get):
            return None
        trace = get()
        if not isinstance(trace, list):
            return None
        text = json.dumps(trace, default=str)
        if len(text) > self.job["limits"]["trace_bytes"]:
            raise _Report("trace", detail=f"{len(text)} bytes")
        return text


class Lanes:
    """Runs the episodes the parent assigns, up to ``job["lanes"]`` at once, one greenlet each.

    An episode's greenlet runs until its controller asks for an action: ``RemoteEpisode`` calls
    ``_wait``, which records the request and switches straight to the next episode that has its reply
    (to this scheduler only when none has, or when the step is due). A step sends the pending actions
    of many episodes, and the answers of finished episodes, in one frame; the parent answers steps in
    order. Several steps are in flight at once (``STEPS_IN_FLIGHT``), so the worker runs episodes while
    the parent answers others. Every episode has its own clock, ``episode_seconds`` of its own running
    time (the parent's time is not counted), sampled by a periodic timer (not read per action: the
    clock and ``setitimer`` are system calls), so the limit lands in that episode's code."""

    def __init__(self, runner: Runner, controllers: list[list[Any]], chan: Channel):
        from greenlet import getcurrent

        from engine.sandbox_episodes import pack_requests

        self.runner, self.controllers, self.chan = runner, controllers, chan
        self.pack = pack_requests
        self.output = runner.output
        self.datasets = runner.job["datasets"]  # per dataset (text, probe_freq, n_branches): public facts only
        self.tasks = runner.job["tasks"]  # per task (its dataset, its config)
        self.seconds = runner.job["limits"]["episode_seconds"]
        self.hub = getcurrent()
        self.active: dict[int, Any] = {}  # lane -> greenlet of its episode
        self.used: dict[int, float] = {}  # lane -> seconds its episode has run (sampled by _tick)
        self.ready: deque[tuple[int, Any]] = deque()  # (lane, what to resume it with)
        self.requests: list[int] = []  # lane, op, arg, lane, op, arg, ...
        self.finished: list[list[Any]] = []  # [lane, answer, trace]
        self.waiting = 0  # requests and finished episodes in the step collected so far
        self.pending = 0  # trace characters in ``finished``
        self.inflight: deque[list[int]] = deque()  # lanes of the steps sent and not answered, oldest first
        self.sent = self.ticked = time.monotonic()
        self.running: int | None = None  # the lane whose code runs now
        self.overdue = False  # the step collected so far has waited STEP_SECONDS: send it now

    def run(self) -> None:
        self._start(self.chan.receive()["new"])  # the first episodes
        _fired.clear()
        signal.signal(signal.SIGALRM, self._tick)
        signal.setitimer(signal.ITIMER_REAL, TICK_SECONDS, TICK_SECONDS)
        try:
            while self.ready or self.active or self.finished or self.inflight:
                if self._due() or not (self.ready or self.inflight):
                    self._send()
                elif self.ready:
                    self._resume()
                else:
                    self._receive()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _tick(self, signum: int, frame: Any) -> None:
        """Every TICK_SECONDS: charge the tick to the episode running now, stop it past its limit,
        and make a step that waited too long go."""
        if self.waiting and time.monotonic() - self.sent >= STEP_SECONDS:
            self.overdue = True
        now = time.monotonic()
        elapsed, self.ticked = now - self.ticked, now  # wall time since the last tick: on a busy machine
        lane = self.running  # expirations coalesce, so counting ticks would slow the episode's clock
        if lane is not None:
            self.used[lane] += elapsed
            if self.used[lane] > self.seconds:
                self.running = None
                _on_alarm(signum, frame)

    def _due(self) -> bool:
        """Whether the step collected so far should go now (a share of the episodes in flight waits)."""
        return self.waiting > 0 and (self.waiting * STEPS_IN_FLIGHT >= len(self.active) or self.overdue)

    def _send(self) -> None:
        if not self.waiting:
            raise _Report("tampered", detail="an episode stopped without asking for an action")
        self.chan.send({"k": "step", "r": self.pack(self.requests), "f": self.finished})
        self.inflight.append(self.requests[::3])
        self.requests, self.finished, self.waiting, self.pending, self.overdue = [], [], 0, 0, False
        self.sent = time.monotonic()

    def _receive(self) -> None:
        """The parent's reply to the oldest step in flight: resume its episodes, start new ones."""
        reply = self.chan.receive()
        self.ready.extend(zip(self.inflight.popleft(), reply["r"], strict=True))
        self._start(reply["new"])

    def _start(self, new: list[tuple[int, int]]) -> None:
        from greenlet import greenlet

        from engine.sandbox_episodes import RemoteEpisode

        for lane, task, qi in new:
            data, config = self.tasks[task]
            text, probe_freq, n_branches = self.datasets[data][qi]
            question = RemoteEpisode(text, probe_freq, n_branches, self._wait)
            self.active[lane] = greenlet(self._episode, parent=self.hub)
            self.used[lane] = 0.0
            self.ready.append((lane, (self.controllers[config][lane], question)))

    def _episode(self, start: tuple[Any, Any]) -> tuple[str | None, str | None]:
        return self.runner.episode(*start)  # (its end returns to the scheduler, self.running still says whose)

    def _wait(self, op: int, arg: int) -> Any:
        """Called in an episode by its RemoteEpisode: queue the action, run another episode meanwhile."""
        if _fired or self.output.exceeded:  # a limit fired in this episode, and its controller swallowed it
            raise _Report(_fired[-1] if _fired else "output")
        self.requests += (self.running, op, arg)
        self.waiting += 1
        if self.ready and not self._due():
            lane, value = self.ready[0]
            run = self.active[lane]
            if run:  # started; a new episode starts from the scheduler (a greenlet starts at its starter's depth)
                self.ready.popleft()
                self.running = lane
                return run.switch(value)
        self.running = None
        return self.hub.switch(None)

    def _resume(self) -> None:
        """Switch into the next ready episode; back here when one finishes or a step is due."""
        lane, value = self.ready.popleft()
        self.running = lane
        try:
            out = self.active[lane].switch(value)
        except BaseException as exc:  # user code can raise anything; self.running says whose it was
            raise self._failed(self.running, exc) from None
        lane, self.running = self.running, None
        if _fired or self.output.exceeded:
            raise self._failed(lane, _Report(_fired[-1] if _fired else "output"))
        if lane is None:  # from _wait
            return
        run = self.active.get(lane)
        if run is None or not run.dead or type(out) is not tuple:
            raise self._failed(lane, _Report("tampered", detail="it switched greenlets by hand"))
        del self.active[lane]
        self.finished.append([lane, *out])
        self.waiting += 1
        self.pending += len(out[1] or "")
        self.overdue = self.overdue or self.pending >= FRAME_SLACK // 2

    def _failed(self, lane: int | None, exc: BaseException) -> _Report:
        report = exc if isinstance(exc, _Report) else self.runner.classify(exc)
        report.lane = lane
        return report


class Sequential:
    """The sampled judge's fast run: the episodes the parent assigns, one after another, each on a local
    ``engine.replay.Episode`` over this worker's copy of its pairs' branch data (the job's ``questions``).

    Its reports (answer, packed action log, trace) go to the parent a share of the lanes at a time; the
    parent grades each log on its own data and replies with new episodes for the freed lanes, so a reply
    is in flight while the worker runs the episodes it still holds. Nothing it reports is trusted: the
    parent counts every figure, and the audit re-runs a sample in strict workers (docs/sandbox.md)."""

    def __init__(self, runner: Runner, controllers: list[Any], chan: Channel):
        from engine.sandbox_episodes import LANES, pack_requests

        self.runner, self.controllers, self.chan = runner, controllers, chan
        self.pack = pack_requests
        self.questions = runner.job["questions"]  # per dataset, its ReplayQuestions (no gold answers)
        self.tasks = runner.job["tasks"]
        self.seconds = runner.job["limits"]["episode_seconds"]
        self.batch = LANES // STEPS_IN_FLIGHT

    def run(self) -> None:
        queue = deque(self.chan.receive()["new"])
        finished: list[list[Any]] = []
        unanswered = size = 0  # reports sent and not answered yet; characters in ``finished``
        sent = time.monotonic()
        while queue or finished or unanswered:
            if queue:
                report = self._episode(*queue.popleft())
                finished.append(report)
                size += len(report[3] or "") + len(report[2] or "")
                if len(finished) < self.batch and size < FRAME_SLACK // 2 and time.monotonic() - sent < STEP_SECONDS:
                    continue
            if finished:
                self.chan.send({"k": "eps", "f": finished})
                finished, size, unanswered, sent = [], 0, unanswered + 1, time.monotonic()
            if not queue and unanswered:
                queue.extend(self.chan.receive()["new"])
                unanswered -= 1

    def _episode(self, lane: int, task: int, qi: int, seed: int) -> list[Any]:
        from engine.replay import Episode, shuffled_order

        data, config = self.tasks[task]
        rq = self.questions[data][qi]
        ep = Episode(rq, shuffled_order(seed, rq.n_branches), self.runner.job["mode"])
        try:
            answer, trace = self.runner.guarded(self.seconds, self.runner.episode, self.controllers[config], ep)
        except _Report as report:
            report.lane = lane
            raise
        try:
            log = self.pack(list(ep.actions))
        except Exception:  # the controller replaced its episode's log: the parent voids the run
            log = None
        return [lane, answer, trace, log]


def run(job: dict[str, Any], index: int, count: int, chan: Channel) -> None:
    """Confine, load the controller (once per lane; once in all for a fast run), run the episodes the parent
    assigns."""
    import linecache

    import greenlet  # noqa: F401 - imported before confinement

    lim = job["limits"]
    scratch = confine(job, index)
    os.environ["HOME"] = os.environ["TMPDIR"] = scratch
    # Tracebacks show the user's source lines even for "<controller>" or a file hidden from us.
    source = job["source"]
    linecache.cache[job["filename"]] = (len(source), None, source.splitlines(True), job["filename"])
    sys.addaudithook(Guard(scratch, job["hidden"]))
    output = CappedOutput(lim["output_bytes"])
    sys.stdout = sys.stderr = output
    runner = Runner(job, output)
    controllers = runner.guarded(lim["startup_seconds"], runner.load_lanes, 1 if job["fast"] else job["lanes"])
    chan.send({"k": "loaded"})
    try:
        if job["fast"]:
            Sequential(runner, [instances[0] for instances in controllers], chan).run()
        else:
            Lanes(runner, controllers, chan).run()
    except _Report:
        raise
    except BaseException as exc:  # a limit signal that landed between episodes
        raise runner.classify(exc) from None


def wait_for_job() -> tuple[str, int, int, int] | None:
    """Import what every episode needs (while idle), then block until the parent sends a job: (its path,
    index, count, and a descriptor of stdin, on which the parent tells a zygote how many children to fork)."""
    import ctypes  # noqa: F401 - trusted imports, before confinement
    import linecache  # noqa: F401
    import resource  # noqa: F401

    from engine import replay  # noqa: F401
    from engine.controllers import loader  # noqa: F401

    line = _read_line(0)  # (EOF: the parent is gone or closed its pool of spares)
    more = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    if not line.strip():
        return None
    job_path, index, count = line.split()
    return job_path, int(index), int(count), more


def zygote(job: dict[str, Any], first: int, fds: list[int], control: int) -> tuple[int, int]:
    """The audit's worker: import the allow-listed modules the controller names (trusted library code,
    no user code) while the run goes on, then, when the parent says how many workers each line needs (one
    line of text on ``control``, after the run and its draw), fork the lines: line z forks workers first + z,
    first + z + lines, ... one after another, each once the previous one has exited. Returns (its index, its
    frame pipe) in each worker; the zygote and its lines exit here.

    A worker shares nothing with the others: none runs while another of its line does, each gets its own
    mount and IPC namespaces (its private /tmp and SysV segments die with it) and holds only its own pipe,
    each line has its own PID and network namespaces (so workers of two lines, which do run at once, cannot
    see, signal or connect to each other), and the zygote never ran user code nor held episode data, so what
    it hands on is what a fresh worker has."""
    import importlib

    for name in job["preload"]:
        try:
            importlib.import_module(name)
        except Exception:  # (the child's own import reports a real failure, in its place)
            continue
    needed = [int(n) for n in _read_line(control).split()]  # (EOF: nothing needed, the parent has gone)
    os.close(control)
    lines = job["lines"]
    namespaces = job["isolation"] in (NAMESPACES, USER_NAMESPACES)
    forked = []
    for z, n in enumerate(needed[:lines]):
        mine = fds[z::lines][:n]
        if not mine:
            continue
        pid = os.fork()
        if pid == 0:
            for fd in set(fds) - set(mine):
                os.close(fd)
            if namespaces:  # a PID namespace applies to the children of the caller: its first one is the line
                if _libc().unshare(CLONE_NEWPID | CLONE_NEWNET):
                    raise OSError("unshare of an audit line's PID and network namespaces failed")
                _wait_and_exit(os.fork())
            return _line(job, first + z, lines, mine, namespaces)
        forked.append(pid)
    for fd in fds:
        os.close(fd)
    for pid in forked:
        os.waitpid(pid, 0)
    os._exit(0)


def _line(job: dict[str, Any], first: int, stride: int, fds: list[int], namespaces: bool) -> tuple[int, int]:
    """One line of the audit's zygote: fork a worker per pipe, one after another; (index, pipe) in each."""
    for i, fd in enumerate(fds):
        pid = os.fork()
        if pid == 0:
            for later in fds[i + 1:]:  # (the earlier ones the line has closed)
                os.close(later)
            if namespaces and _libc().unshare(CLONE_NEWNS | CLONE_NEWIPC):
                raise OSError("unshare of the audit worker's mount and IPC namespaces failed")
            return first + i * stride, fd
        os.close(fd)
        os.waitpid(pid, 0)
    os._exit(0)


def _wait_and_exit(pid: int) -> None:
    """In the parent of a fork: wait for the child, then exit (no atexit handlers); in the child: return."""
    if pid:
        os.waitpid(pid, 0)
        os._exit(0)


def _read_line(fd: int) -> str:
    """One line from ``fd``, read a byte at a time (unbuffered: what follows stays in the pipe)."""
    line = b""
    while not line.endswith(b"\n") and (byte := os.read(fd, 1)):
        line += byte
    return line.decode()


def main(argv: list[str]) -> None:
    fds = [int(fd) for fd in argv[1].split(",")]
    chan = None
    try:
        task = wait_for_job()
        if task is None:
            return
        job_path, index, count, control = task
        with open(job_path, "rb") as f:
            job = pickle.load(f)
        if job["zygote"]:
            index, fd = zygote(job, index, fds, control)
        else:
            os.close(control)
            fd = fds[0]
        # Before confinement; not blocking on a parent that is gone (then the first read gives EOF).
        replies = os.open(os.path.join(job["scratch"], f"w{index}.replies"), os.O_RDONLY | os.O_NONBLOCK)
        os.set_blocking(replies, True)
        chan = Channel(fd, replies, job["nonce"], max_frame(job["limits"]["trace_bytes"]))
        run(job, index, count, chan)
    except _Report as rep:
        if chan is not None:
            chan.send({"k": "err", "kind": rep.kind, "tb": rep.tb, "detail": rep.detail, "l": rep.lane})
    except BaseException:  # a bug of the worker itself: report it, never hang
        text = traceback.format_exc()[-MAX_TEXT:]
        try:
            if chan is not None:
                chan.send({"k": "err", "kind": "internal", "tb": "", "detail": text})
        finally:
            os.write(2, text.encode(errors="replace"))
    finally:
        os._exit(0)  # no atexit handlers or finalizers of user code


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # -I leaves the project off sys.path
    main(sys.argv)
