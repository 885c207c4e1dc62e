"""`python -m engine saved`: list saved controllers by family and version, show one, diff two.

Thin over ``engine.saved``; ``eval``/``sweep --controller saved:<id>`` (or a saved name) run them.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine import saved
from engine.store import Store


def add_parsers(sub: argparse._SubParsersAction) -> dict[str, Any]:
    """Register `saved` on the CLI's subparsers; returns its handler by name."""
    p = sub.add_parser("saved", help="list saved controllers with their versions; show or diff them")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--show", metavar="REF", help="print one controller's source (saved:<id>, id prefix or name)")
    what.add_argument("--diff", nargs=2, metavar=("OLD", "NEW"), help="unified diff of two saved controllers")
    p.add_argument("--json", action="store_true", help="print the listing as JSON")
    return {"saved": run_saved}


def run_saved(args: argparse.Namespace, store: Store) -> int:
    if args.show:
        print(saved.get_controller(store, args.show).source, end="")
    elif args.diff:
        old, new = (saved.get_controller(store, ref) for ref in args.diff)
        print(saved.diff(old, new) or f"{old.id} and {new.id} have the same code", end="")
    elif args.json:
        print(json.dumps([_version_json(v) for v in saved.versions(store)], indent=2))
    else:
        print(listing(saved.versions(store)))
    return 0


def listing(versions: list[saved.Version]) -> str:
    """One block per family, one line per version: id, version, name, parent, date, note."""
    if not versions:
        return "no saved controllers yet; save one from the lab (/lab) in the app"
    lines, family = [], None
    for v in versions:
        c = v.controller
        if v.family != family:
            family = v.family
            lines.append(("\n" if lines else "") + f"{c.name} (family {family[:8]})")
        parent = f"from {c.parent[:8]}" if c.parent else "first"
        note = f"  {c.note}" if c.note else ""
        lines.append(f"  saved:{c.id}  v{v.number}  {c.name}  {parent}  {c.created_at:%Y-%m-%d %H:%M}{note}")
    return "\n".join(lines)


def _version_json(v: saved.Version) -> dict[str, Any]:
    c = v.controller
    return {"id": c.id, "ref": f"{saved.PREFIX}{c.id}", "name": c.name, "version": v.number, "family": v.family,
            "class_name": c.class_name, "parent": c.parent, "note": c.note, "origin": c.origin,
            "created_at": c.created_at.isoformat()}
