"""The sandbox's three confinement layers, each one really active, and the project living under /tmp.

The key hostile tests of test_sandbox.py (gold hunter with a stray data copy, the kernel probe with the audit
hook switched off, forbidden processes, network and writes) run in a child process three ways:

- ``namespaces (root)``: the child runs as root (CI runs as root);
- ``namespaces (user)``: the child drops to uid/gid 65534 with ``setpriv`` first, so the sandbox gets its
  namespaces from a user namespace; never skipped;
- ``fallback``: uid 65534 with no ``unshare`` on ``PATH``, the way a machine without it looks.

Each report says which layer ``engine.sandbox.layer()`` chose and what the controller observed inside (uid,
network, /proc), so a silent fallback fails. This file is also the child: ``python tests/test_sandbox_layers.py
STRAY PART...`` prints the report as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_sandbox import (
    EXAMPLE,
    FAILURES,
    FAST,
    assert_repo_write_kept_off_host,
    assert_same,
    hunter,
    kernel_probe,
    leftover_processes,
    real,
    solve_body,
    stray_data,
)

from engine import sandbox
from engine.evaluate import ControllerSpec, run_python
from engine.paths import PROJECT_ROOT, data_dir
from engine.sandbox import SandboxError, run_sandboxed

pytestmark = [pytest.mark.xdist_group("sandbox"), pytest.mark.timeout(300)]

NOBODY = 65534
ROOT, USER, FALLBACK = "namespaces (root)", "namespaces (user)", "fallback"
HOSTILE = ("fork", "os_system", "socket", "write_tmp", "write_repo")  # FAILURES cases run on every layer
SLOW = dataclasses.replace(FAST, episode_seconds=30)  # the first run of a child may compile the grader
SECRETS = {"TTSLAB_SECRET": "s3cret", "OPENAI_API_KEY": "sk-test"}


# -- the child: what the sandbox does on this process's layer ------------------------------------------
def same_outcomes(stray: Path) -> str:
    """The reference-format CMC file (it imports SciPy) gives run_python's Outcomes."""
    ds = real(2)
    cmc = ControllerSpec.from_source(EXAMPLE.read_text(), config={"beta": 0.5}, filename=str(EXAMPLE))
    assert_same(run_python(ds, cmc.build(), shuffles=2), run_sandboxed(ds, cmc, shuffles=2, limits=SLOW))
    return "same"


def gold_hunt(stray: Path) -> dict[str, Any]:
    """The hunter in process, by the file route only (the control: it must find gold), and sandboxed by the
    routes that depend on the layer (files and database; what the worker holds in memory does not)."""
    ds = real(3)
    control = run_python(ds, hunter(stray, ("files",)).build(), shuffles=1).answers[0]
    sandboxed = run_sandboxed(ds, hunter(stray, ("files", "database", "question")), shuffles=1, limits=SLOW)
    return {"found_in_process": control == [q.gold for q in ds.questions], "sandboxed": sandboxed.answers[0]}


def kernel(stray: Path) -> dict[str, str]:
    """The kernel probe, with the audit hook switched off on namespace layers (on in the fallback: there the
    hook is the guard, and switching it off would really write to /tmp and read the stray copy)."""
    marker = f"/tmp/ttslab-pwned-{uuid.uuid4().hex}"
    spec = kernel_probe(marker, stray, switch_off=sandbox.layer().full)
    seen = eval(run_sandboxed(real(1), spec, shuffles=1, limits=FAST).answers[0][0])  # our own probe's repr
    return {**seen, "marker_on_host": str(Path(marker).exists())}


def hostile(stray: Path) -> dict[str, list]:
    """kind and message of each HOSTILE failure case."""
    found = {}
    for case in HOSTILE:
        try:
            run_sandboxed(real(2), solve_body(FAILURES[case][0]), shuffles=2, limits=FAST)
            found[case] = ["no error", ""]
        except SandboxError as exc:
            found[case] = [exc.kind, str(exc)]
    return found


PARTS: dict[str, Callable[[Path], Any]] = {"same": same_outcomes, "gold": gold_hunt, "kernel": kernel,
                                           "hostile": hostile}


def layer_report(stray: Path, parts: list[str]) -> dict[str, Any]:
    """Run ``parts`` sandboxed in this process; a failing part is reported as its error text."""
    runs = tempfile.mkdtemp(prefix="ttslab-layer-runs-")
    tempfile.tempdir = runs
    found = sandbox.layer()
    report: dict[str, Any] = {"layer": found.name, "reason": found.reason, "uid": os.getuid()}
    for part in parts:
        try:
            report[part] = PARTS[part](stray)
        except Exception as exc:  # (AssertionError too)
            report[part] = f"{type(exc).__name__}: {exc}"
    report["left_runs"] = os.listdir(runs)
    report["left_processes"] = leftover_processes()
    sandbox.SPARES.close()
    shutil.rmtree(runs)
    return report


# -- the parent: run the child as root, as nobody, or without unshare ------------------------------------
def reachable_for_nobody(paths: list[Path]) -> str:
    """Shell lines that, in a private mount namespace, let uid 65534 reach ``paths``: a directory it may not
    traverse (here: root's 0700 home holding the pyenv interpreter the venv points to) is covered by an empty
    0755 tmpfs into which only the needed subdirectories are moved back. Nothing else changes; an ordinary
    user's own interpreter and checkout need none of this."""
    keep: dict[Path, set[Path]] = {}
    for path in paths:
        for depth in range(1, len(path.parts)):
            top = Path(*path.parts[:depth])
            if not top.stat().st_mode & stat.S_IXOTH:
                keep.setdefault(top, set()).add(Path(*path.parts[:depth + 1]))
                break
    if not keep:
        return "true"
    lines = ["stash=$(mktemp -d)"]
    for n, (top, children) in enumerate(keep.items()):
        for m, child in enumerate(sorted(children)):
            lines += [f'mkdir "$stash/{n}.{m}"', f"mount --rbind '{child}' \"$stash/{n}.{m}\""]
        lines.append(f"mount -t tmpfs -o mode=0755 tmpfs '{top}'")
        for m, child in enumerate(sorted(children)):
            lines += [f"mkdir -p '{child}'", f"mount --move \"$stash/{n}.{m}\" '{child}'"]
    return "; ".join([*lines, 'rmdir "$stash"/* "$stash"'])


def child_command(layer: str, cmd: list[str], python: str = sys.executable, project: Path = PROJECT_ROOT,
                  reach: tuple[Path, ...] = ()) -> list[str]:
    """``cmd`` as it runs for ``layer``: as is (root), as uid 65534, or as uid 65534 without ``unshare`` on
    PATH (the fallback, for real); ``reach``: more paths uid 65534 must reach."""
    if layer == FALLBACK:
        cmd = [shutil.which("env"), "PATH=/nonexistent", *cmd]
    if layer == ROOT:
        return cmd
    needed = [Path(sys.base_prefix).resolve(), Path(python).resolve().parent, Path(python).parent, project,
              data_dir().resolve(), *reach]
    drop = [shutil.which("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return [shutil.which("unshare"), "--mount", "--propagation", "private", "sh", "-ec",
            reachable_for_nobody(needed) + '; exec "$@"', "sh", *drop, *cmd]


def child_env(layer: str, numba_cache: Path, project: Path = PROJECT_ROOT, **extra: str) -> dict[str, str]:
    """The child's environment; uid 65534 compiles the engine's kernels into ``numba_cache`` (it cannot
    write the checkout's __pycache__)."""
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(project), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "TTSLAB_DATA": str(data_dir()), "HOME": "/nonexistent", "LANG": "C.UTF-8", **SECRETS, **extra}
    return env if layer == ROOT else {**env, "NUMBA_CACHE_DIR": str(numba_cache)}


def run_child(layer: str, stray: Path, parts: list[str], *, python: str = sys.executable,
              project: Path = PROJECT_ROOT, numba_cache: Path) -> dict[str, Any]:
    """Run this file as the child for ``layer``; its JSON report."""
    cmd = child_command(layer, [python, str(project / "tests" / Path(__file__).name), str(stray), *parts],
                        python, project, (stray,))
    env = child_env(layer, numba_cache, project)
    done = subprocess.run(cmd, env=env, cwd=project, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0 and done.stdout.strip(), f"child failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def stray() -> Iterator[Path]:
    with stray_data() as folder:
        yield folder


@pytest.fixture(scope="module")
def numba_cache() -> Iterator[Path]:
    """Where the children running as uid 65534 share their compiled kernels."""
    folder = Path(tempfile.mkdtemp(prefix="ttslab-numba-"))
    os.chown(folder, NOBODY, NOBODY)
    yield folder
    shutil.rmtree(folder)


REPORTS: dict[str, dict[str, Any]] = {}


@pytest.fixture(params=[ROOT, USER, FALLBACK])
def report(request: pytest.FixtureRequest, stray: Path, numba_cache: Path) -> dict[str, Any]:
    """The child's report for the layer (one child per layer and module run), checked to be that layer."""
    layer = request.param
    if layer not in REPORTS:
        REPORTS[layer] = run_child(layer, stray, list(PARTS), numba_cache=numba_cache)
    found = REPORTS[layer]
    assert found["layer"] == layer, f"expected the {layer} layer, the child got {found['layer']}: {found['reason']}"
    assert found["uid"] == (0 if layer == ROOT else NOBODY)
    assert found["left_runs"] == [] and found["left_processes"] == []
    return found


def test_outcomes_match_in_process_on_every_layer(report: dict[str, Any]) -> None:
    """A plain controller and the SciPy-importing CMC file give run_python's figures on every layer."""
    assert report["same"] == "same"


def test_gold_is_out_of_reach_on_every_layer(report: dict[str, Any]) -> None:
    """The gold hunter finds gold in process through a stray world-readable data copy (the control), and
    nothing through any route sandboxed, whichever layer confines it."""
    assert report["gold"]["found_in_process"], "the control must find gold, or this test proves nothing"
    assert report["gold"]["sandboxed"] == ["NOT-FOUND"] * 3


def test_hostile_controllers_are_stopped_on_every_layer(report: dict[str, Any]) -> None:
    """fork, os.system, sockets and writes outside the scratch directory fail with the documented message."""
    for case in HOSTILE:
        kind, message = report["hostile"][case]
        assert kind == FAILURES[case][1], (case, message)
        assert re.search(FAILURES[case][2], message, re.S), (case, message)


INSIDE_UID = {ROOT: str(NOBODY), USER: "0"}  # user layer: root of its own user namespace, without capabilities


@pytest.mark.parametrize("report", [ROOT, USER], indirect=True)
def test_kernel_layers_hold_with_the_audit_hook_switched_off(report: dict[str, Any]) -> None:
    """With the hook defeated, both namespace layers still keep network, host writes, processes, the data (a
    stray copy too), the parent's secrets, and the way out of the chroot out of reach."""
    seen = report["kernel"]
    assert seen["tmp"] == "1" and seen["marker_on_host"] == "False"  # the worker's private /tmp only
    assert_repo_write_kept_off_host(seen["repo"])
    assert seen["fork"].startswith("BlockingIOError"), seen["fork"]  # RLIMIT_NPROC=0
    assert seen["net"].startswith("OSError: [Errno 101] Network is unreachable"), seen["net"]
    assert seen["data"] == "[]" or seen["data"].startswith("FileNotFoundError"), seen["data"]
    assert seen["stray"].startswith("FileNotFoundError"), seen["stray"]
    assert seen["procs"].startswith("FileNotFoundError"), seen["procs"]
    assert seen["uid"] == INSIDE_UID[report["layer"]]
    assert not any(k in seen["env"] for k in ("TTSLAB", "KEY", "TOKEN", "SECRET"))
    assert seen["scratch"] == "(2, 'hi')"
    assert seen["chroot"].startswith("PermissionError: [Errno 1]"), seen["chroot"]  # no capabilities left
    assert seen["umount"] == "'Operation not permitted'", seen["umount"]
    assert seen["userns"] == "'Operation not permitted'", seen["userns"]  # none inside a chroot


@pytest.mark.parametrize("report", [FALLBACK], indirect=True)
def test_in_the_fallback_the_audit_hook_guards(report: dict[str, Any]) -> None:
    """Without namespaces (an ordinary user, no unshare) the hook denies what the kernel layers would."""
    seen = report["kernel"]
    assert "no namespaces" in report["reason"] or "unshare" in report["reason"], report["reason"]
    for attempt in ("tmp", "repo", "fork", "net", "data", "procs", "stray", "umount", "userns"):
        assert seen[attempt].startswith("PermissionError: sandbox: "), (attempt, seen[attempt])
    assert seen["marker_on_host"] == "False" and seen["uid"] == str(NOBODY)
    assert not any(k in seen["env"] for k in ("TTSLAB", "KEY", "TOKEN", "SECRET"))


def copy_checkout(target: Path) -> Path:
    """The project's tracked (and new, unignored) files copied to ``target``, as a fresh clone would hold,
    plus the compiled-kernel cache if there is one (it only saves compiling them again)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    kernels = PROJECT_ROOT.glob("engine/controllers/__pycache__/*.nb[ic]")
    for name in [*filter(None, listed), *(str(k.relative_to(PROJECT_ROOT)) for k in kernels)]:
        if (PROJECT_ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, target / name)
    return target


def test_the_sandbox_works_from_a_project_and_venv_under_tmp(stray: Path, numba_cache: Path) -> None:
    """A checkout and its venv under /tmp (a quick try, a CI build folder) still give workers the engine and
    SciPy: the worker reads its allow-list before its private /tmp covers the host's, and the kernel probe
    finds the copied checkout read-only (not missing). The venv is hard-linked under /tmp where that works
    (the same file system); elsewhere the checkout alone is under /tmp."""
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="ttslab-under-tmp-") as tmp:
        project = copy_checkout(Path(tmp) / "main")
        python = sys.executable
        venv = Path(tmp) / "venv"
        if sys.prefix != sys.base_prefix and subprocess.run(["cp", "-al", sys.prefix, str(venv)]).returncode == 0:
            python = str(venv / "bin" / Path(sys.executable).name)
        found = run_child(ROOT, stray, ["same", "kernel"], python=python, project=project, numba_cache=numba_cache)
        assert not (project / "pwned.txt").exists()
    assert found["layer"] == ROOT, found["reason"]
    assert found["same"] == "same", found["same"]
    seen = found["kernel"]
    # present but not writable: a mount point on the worker's private /tmp (an old bug left it missing)
    assert seen["repo"].startswith(("PermissionError: [Errno 13]", "OSError: [Errno 30]")), seen["repo"]
    assert seen["stray"].startswith("FileNotFoundError") and seen["uid"] == str(NOBODY), seen


@pytest.mark.parametrize(("layer", "code"), [(ROOT, 0), (USER, 0), (FALLBACK, 1)])
def test_doctor_names_the_active_layer(layer: str, code: int, numba_cache: Path) -> None:
    """`python -m engine doctor` names the layer and why, and runs a controller on it; the fallback exits 1
    and says how to get the full sandbox."""
    db_dir = Path(tempfile.mkdtemp(prefix="ttslab-doctor-"))
    os.chown(db_dir, NOBODY, NOBODY)
    env = child_env(layer, numba_cache, TTSLAB_DB=str(db_dir / "t.duckdb"))
    try:
        done = subprocess.run(child_command(layer, [sys.executable, "-m", "engine", "doctor"]), cwd=PROJECT_ROOT,
                              env=env, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(db_dir)
    assert done.returncode == code, done.stderr
    assert done.stdout.startswith(f"sandbox layer: {layer}\nwhy: "), done.stdout
    assert ("WARNING: controllers run with rlimits and the audit hook only" in done.stdout) == (layer == FALLBACK)
    assert ("user.max_user_namespaces" in done.stdout) == (layer == FALLBACK)
    assert re.search(r"\ncheck: a controller ran sandboxed in [\d.]+ s \(answer '7'\)\n$", done.stdout), done.stdout


@pytest.mark.parametrize("fallback", [True, False], ids=["fallback", "namespaces"])
def test_home_page_warns_only_in_the_fallback(fallback: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's home page shows the fallback warning (no unshare on PATH here) and nothing on a namespace layer."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("TTSLAB_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("TTSLAB_DB", str(tmp_path / "t.duckdb"))
    if fallback:
        monkeypatch.setenv("PATH", "/nonexistent")
    sandbox.layer.cache_clear()
    try:
        at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()
    finally:
        sandbox.layer.cache_clear()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning]
    if fallback:
        assert len(warnings) == 1 and warnings[0].startswith("**Sandbox fallback** (util-linux unshare"), warnings
        assert "python -m engine doctor" in warnings[0]
    else:
        assert warnings == []


if __name__ == "__main__":
    print(json.dumps(layer_report(Path(sys.argv[1]), sys.argv[2:])))
