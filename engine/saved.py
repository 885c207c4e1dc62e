"""Saved controllers: user code kept in the store under a stable id, with a name, a note and a lineage.

The id is a content hash (source + class name), so saving the same code twice is a no-op and an
edited controller is a new version whose ``parent`` is the id it came from. Anything that picks a
controller (lab, frontier, CLI ``--controller saved:<id>``, discovery seeds) resolves it here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from engine.codediff import code_diff
from engine.controllers.loader import source_hash
from engine.evaluate import ControllerSpec
from engine.store import Store, StoreError

PREFIX = "saved:"


class UnknownSavedController(StoreError, LookupError):
    """No saved controller has that id (or name)."""


@dataclass(frozen=True)
class SavedController:
    """One row of ``saved_controllers``."""

    id: str
    name: str
    class_name: str
    source: str
    note: str
    parent: str | None
    origin: dict[str, Any]
    created_at: datetime


def controller_id(source: str, class_name: str) -> str:
    """The content hash that names a saved controller."""
    return source_hash(f"{class_name}\n{source}")


def save_controller(store: Store, source: str, class_name: str, name: str, *, note: str = "",
                    parent: str | None = None, origin: dict[str, Any] | None = None) -> SavedController:
    """Store ``source`` (idempotent: the same code and class keep their first id, name and note)."""
    if not name.strip():
        raise ValueError("a saved controller needs a name")
    cid = controller_id(source, class_name)
    with store.writing() as con:
        if con.execute("SELECT 1 FROM saved_controllers WHERE id = ?", [cid]).fetchone() is None:
            con.execute("INSERT INTO saved_controllers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [cid, name.strip(), class_name, source, note, parent, json.dumps(origin or {}),
                         datetime.now(UTC).replace(tzinfo=None)])
    return get_controller(store, cid)


def list_controllers(store: Store) -> list[SavedController]:
    """Every saved controller, newest first."""
    with store.connect() as con:
        rows = con.execute(f"SELECT {_COLUMNS} FROM saved_controllers ORDER BY created_at DESC, id").fetchall()
    return [_row(r) for r in rows]


def get_controller(store: Store, ref: str) -> SavedController:
    """By id (with or without ``saved:``), id prefix, or name (the newest version of that name)."""
    ref = ref.removeprefix(PREFIX).strip()
    if not ref:
        raise UnknownSavedController("a saved controller reference needs an id or a name")
    with store.connect() as con:
        row = con.execute(f"SELECT {_COLUMNS} FROM saved_controllers WHERE id = ?", [ref]).fetchone()
        if row is None:
            row = con.execute(f"SELECT {_COLUMNS} FROM saved_controllers WHERE name = ? OR starts_with(id, ?) "
                              "ORDER BY (name = ?) DESC, created_at DESC LIMIT 1", [ref, ref, ref]).fetchone()
    if row is None:
        raise UnknownSavedController(f"no saved controller {ref!r} (list them with `python -m engine saved`)")
    return _row(row)


def delete_controller(store: Store, cid: str) -> None:
    """Remove one version; its children keep their parent id (the lineage stays readable)."""
    with store.writing() as con:
        con.execute("DELETE FROM saved_controllers WHERE id = ?", [cid.removeprefix(PREFIX)])


@dataclass(frozen=True)
class Version:
    """A saved controller in its family (itself, its parent, their parents...): ``number`` counts from 1
    in saving order, ``family`` is the id of the oldest ancestor still stored."""

    controller: SavedController
    family: str
    number: int

    @property
    def label(self) -> str:
        """``name v2 (1a2b3c4d)``: what a picker or a listing shows."""
        return f"{self.controller.name} v{self.number} ({self.controller.id[:8]})"


def versions(store: Store) -> list[Version]:
    """Every saved controller with its family and version number, families newest first."""
    saved = list_controllers(store)
    by_id = {c.id: c for c in saved}
    families: dict[str, list[SavedController]] = {}
    for c in sorted(saved, key=lambda c: (c.created_at, c.id)):
        families.setdefault(_root(c, by_id), []).append(c)
    ordered = sorted(families.items(), key=lambda item: max(c.created_at for c in item[1]), reverse=True)
    return [Version(c, root, n) for root, members in ordered for n, c in enumerate(members, 1)]


def _root(c: SavedController, by_id: Mapping[str, SavedController]) -> str:
    """The oldest stored ancestor's id (a deleted parent ends the chain; cycles cannot loop)."""
    seen = {c.id}
    while c.parent in by_id and c.parent not in seen:
        c = by_id[c.parent]
        seen.add(c.id)
    return c.id


def diff(old: SavedController, new: SavedController) -> str:
    """Unified diff of two saved controllers' sources ('' when the code is the same)."""
    return code_diff(old.source, new.source, f"{old.name} ({old.id})", f"{new.name} ({new.id})")


def resolve_spec(store: Store | None, ref: str, config: Mapping[str, Any] | None = None) -> ControllerSpec:
    """What a controller reference means anywhere one is picked: a built-in, a preset, ``saved:<id>``
    or a saved controller's name (its newest version). Saved code stays untrusted: it runs sandboxed."""
    if not ref.startswith(PREFIX):
        try:
            return ControllerSpec.builtin(ref, config)
        except KeyError as exc:
            if store is None:
                raise
            unknown = exc.args[0]
    try:
        c = get_controller(store, ref)
    except UnknownSavedController:
        if ref.startswith(PREFIX):
            raise
        raise UnknownSavedController(f"{unknown}; or a saved controller's id or name "
                                     "(`python -m engine saved` lists them)") from None
    return ControllerSpec.from_source(c.source, c.class_name, config, filename=f"{c.name}.py")


_COLUMNS = ", ".join(f.name for f in fields(SavedController))


def _row(row: tuple) -> SavedController:
    values = list(row)
    values[6] = json.loads(values[6])
    return SavedController(*values)
