"""Sandbox start-up per confinement layer, side by side: python benchmarks/sandbox_startup.py

Prints medians of interleaved runs (so that load on a shared machine hits every variant alike):
  1. raw process start: the interpreter alone, then under `unshare` as root (layer "namespaces (root)"),
     under `unshare --user --map-root-user` (layer "namespaces (user)"), and under `bwrap` with the same
     read-only allow-list (the alternative that was measured and not taken; skipped without bwrap);
  2. one whole sandboxed evaluation (1 worker, 1 question, 1 shuffle) per layer, cold (no spare worker:
     start, engine import, mounts and chroot, controller load, one episode) and with a spare ready.
Run as root to see all three layers; the user layer is then forced (same mechanics: a user namespace,
the mounts, chroot and dropping every capability), an ordinary user gets it by itself.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import sandbox
from engine import sandbox_worker as protocol
from engine.dataset import Dataset
from engine.evaluate import ControllerSpec
from engine.formats.autotts import load_autotts_file
from engine.paths import data_dir

REPEAT = 7
PAUSE = 1.0  # seconds between runs with spares, for the pool to refill
FIRST = ControllerSpec.from_source(
    "class First(LLMDesignedMethod):\n    def solve(self, question):\n        return question.probe_new()[0]\n")
LAYERS = (protocol.NAMESPACES, protocol.USER_NAMESPACES, protocol.NO_NAMESPACES)


def medians(variants: dict[str, Callable[[], object]], repeat: int = REPEAT, pause: float = 0.0) -> dict[str, float]:
    """Median seconds of each variant, the variants interleaved round by round."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, fn in variants.items():
            time.sleep(pause)
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def bwrap_prefix() -> list[str]:
    """bwrap building the worker's root from the same allow-list: a private /tmp, read-only binds."""
    binds = [arg for path in protocol.allowed_paths() for arg in ("--ro-bind", path, path)]
    return [shutil.which("bwrap"), "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--tmpfs", "/tmp", *binds, "--chdir", "/tmp", "--clearenv"]


def raw_section() -> None:
    python = [sys.executable, "-I", "-B", "-c", "pass"]
    unshare = shutil.which("unshare")
    commands = {"python alone": python}
    if os.geteuid() == 0:
        commands["unshare (root)"] = [unshare, *sandbox.UNSHARE_FLAGS, *python]
    commands["unshare --user"] = [unshare, *sandbox.LAYER_FLAGS[protocol.USER_NAMESPACES], *python]
    if shutil.which("bwrap"):
        commands["bwrap"] = [*bwrap_prefix(), *python]
    found = medians({name: lambda cmd=cmd: subprocess.run(cmd, check=True) for name, cmd in commands.items()})
    print("\n== Raw process start (the interpreter doing nothing), median ms ==")
    base = found["python alone"]
    for name, seconds in found.items():
        print(f"{name:18}{seconds * 1000:8.1f} ms   {seconds / base:5.2f}x")


def evaluation_section(ds: Dataset) -> None:
    levels = [lv for lv in LAYERS if lv != protocol.NAMESPACES or os.geteuid() == 0]
    limits = sandbox.Limits(workers=1)

    def run(level: str) -> None:
        sandbox.isolation = lambda: level  # the layer to measure (as root, the user layer is forced)
        sandbox.run_sandboxed(ds, FIRST, shuffles=1, limits=limits)

    sandbox.SPARES.enabled = False
    cold = medians({lv: lambda lv=lv: run(lv) for lv in levels})
    sandbox.SPARES.enabled = True
    for lv in levels:
        run(lv)  # leaves a spare of that layer
    warm = {lv: medians({lv: lambda lv=lv: run(lv)}, pause=PAUSE)[lv] for lv in levels}
    sandbox.SPARES.close()
    print("\n== One sandboxed evaluation (1 worker, 1 episode), median ms ==")
    print(f"{'layer':20}{'cold':>10}{'spare ready':>13}")
    for lv in levels:
        print(f"{sandbox.LAYER_NAMES[lv]:20}{cold[lv] * 1000:8.0f} ms{warm[lv] * 1000:9.0f} ms")


def main() -> None:
    print(f"sandbox layer here: {sandbox.layer().name} ({sandbox.layer().reason})")
    raw_section()
    ds = load_autotts_file(data_dir() / "Qwen3-8B" / "aime24.json", "Qwen3-8B/aime24")
    evaluation_section(dataclasses.replace(ds, questions=ds.questions[:1]))


if __name__ == "__main__":
    main()
