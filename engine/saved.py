"""Saved controllers: user code kept in the store under a stable id, with a name, a note and a lineage.

The id is a content hash (source + class name), so saving the same code twice is a no-op and an
edited controller is a new version whose ``parent`` is the id it came from. Anything that picks a
controller (lab, frontier, CLI ``--controller saved:<id>``, discovery seeds) resolves it here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from engine.controllers.loader import source_hash
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


_COLUMNS = ", ".join(f.name for f in fields(SavedController))


def _row(row: tuple) -> SavedController:
    values = list(row)
    values[6] = json.loads(values[6])
    return SavedController(*values)
