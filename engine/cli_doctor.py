"""`python -m engine doctor`: which sandbox layer confines untrusted controllers on this machine, and why.

Exits 0 when workers get namespaces (as root or in a user namespace) and 1 in the fallback, so that a
deployment script can refuse to serve strangers' code on the weak layer.
"""

from __future__ import annotations

import argparse
from typing import Any

from engine import sandbox
from engine.store import Store

FIX = ("To get the full sandbox without root: install util-linux (`unshare`) and allow unprivileged user "
       "namespaces (sysctl user.max_user_namespaces > 0; Debian's kernel.unprivileged_userns_clone=1; Ubuntu "
       "24.04+: kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile allowing userns for "
       "unshare); or run as root.")


def add_parsers(sub: argparse._SubParsersAction) -> dict[str, Any]:
    """Register doctor on the CLI's subparsers; returns its handler by name."""
    sub.add_parser("doctor", help="show which sandbox layer confines untrusted controllers here, and why")
    return {"doctor": run_doctor}


def run_doctor(args: argparse.Namespace, store: Store) -> int:
    """Print the layer, why it was chosen and what it means; 1 (and how to fix it) for the fallback."""
    layer = sandbox.layer()
    print(f"sandbox layer: {layer.name}")
    print(f"why: {layer.reason}")
    print(f"{'WARNING: ' if not layer.full else ''}{layer.meaning}")
    if not layer.full:
        print(FIX)
    return 0 if layer.full else 1
