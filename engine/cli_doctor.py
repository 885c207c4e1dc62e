"""`python -m engine doctor`: which sandbox layer confines untrusted controllers on this machine, and why.

It also runs a one-episode controller in the sandbox, so a layer that the probe accepts but that cannot
actually confine a worker here shows up now rather than at the first evaluation. Exits 0 when workers get
namespaces (as root or in a user namespace), 1 in the fallback (so that a deployment script can refuse to
serve strangers' code on the weak layer), 2 when the check fails.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from engine import sandbox
from engine.controllers.loader import ControllerError
from engine.evaluate import ControllerSpec
from engine.formats.autotts import parse_autotts
from engine.store import Store

FIX = ("To get the full sandbox without root: install util-linux (`unshare`) and allow unprivileged user "
       "namespaces (sysctl user.max_user_namespaces > 0; Debian's kernel.unprivileged_userns_clone=1; Ubuntu "
       "24.04+: kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile allowing userns for "
       "unshare); or run as root.")
CHECK_QUESTION = [{"question": "What is 3 + 4?", "each_branch": [[["7"], 500, "7"], [["8"], 500, "8"]],
                   "gold_answer": "7", "probe_freq": 500}]
CHECK_CONTROLLER = ("class FirstProbe(LLMDesignedMethod):\n    def solve(self, question):\n"
                    "        return question.probe_new()[0]\n")


def add_parsers(sub: argparse._SubParsersAction) -> dict[str, Any]:
    """Register doctor on the CLI's subparsers; returns its handler by name."""
    sub.add_parser("doctor", help="show which sandbox layer confines untrusted controllers here, and why")
    return {"doctor": run_doctor}


def run_doctor(args: argparse.Namespace, store: Store) -> int:
    """Print the layer, why it was chosen, what it means and the check; 1 (and the fix) for the fallback."""
    layer = sandbox.layer()
    print(f"sandbox layer: {layer.name}")
    print(f"why: {layer.reason}")
    print(f"{'WARNING: ' if not layer.full else ''}{layer.meaning}")
    if not layer.full:
        print(FIX)
    ran, text = sandbox_check()
    print(text)
    if not ran:
        return 2
    return 0 if layer.full else 1


def sandbox_check() -> tuple[bool, str]:
    """Run a one-episode controller sandboxed on this layer: whether it ran, and a line saying so."""
    dataset = parse_autotts(json.dumps(CHECK_QUESTION), name="doctor/check")
    start = time.perf_counter()
    try:
        out = sandbox.run_sandboxed(dataset, ControllerSpec.from_source(CHECK_CONTROLLER), shuffles=1,
                                    limits=sandbox.Limits(workers=1))
    except ControllerError as exc:
        return False, f"check FAILED: {exc}"
    return True, (f"check: a controller ran sandboxed in {time.perf_counter() - start:.2f} s "
                  f"(answer {out.answers[0][0]!r})")
