"""What visitors may change on this server: the one place pages and the engine ask before a write.

Two operator settings:

- ``TTSLAB_READ_ONLY=1`` (demos): visitors explore, evaluate and write controllers in their own
  session, but cannot import or delete datasets, save or delete controllers, or change settings.
  ``visitor_store`` gives each session a ``ReadOnlyStore``: it reads the shared store, refuses
  every write with a one-line ``ReadOnlyError``, and keeps the results a visitor computes (the
  one write allowed) in that session only, so they never change what other visitors see.
- ``TTSLAB_SHARE=1`` (set by ``make serve``): visitors are on other computers, so nothing may read
  a path on the server that a visitor chose (``require_private``): folder imports are for the
  operator, on a private server or the CLI.

Pages call ``require_writable(action)`` / ``require_private(action)`` before offering an action
(``read_only()`` to disable its button); the store enforces the read-only rule whatever a page does.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import duckdb

from engine.store import _RESULT_COLUMNS, ImportReport, Store, StoreError

READ_ONLY_ENV = "TTSLAB_READ_ONLY"
SHARE_ENV = "TTSLAB_SHARE"
SESSION_RESULTS = 2000  # results one read-only session keeps (oldest dropped first)


class PolicyError(StoreError):
    """An action this server's operator turned off (a one-line, user-facing message)."""


class ReadOnlyError(PolicyError):
    """A write refused because the server is read-only."""


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def read_only() -> bool:
    """``TTSLAB_READ_ONLY=1``: visitors cannot change the shared store or settings."""
    return _flag(READ_ONLY_ENV)


def shared() -> bool:
    """``TTSLAB_SHARE=1``: the app is served to other computers (``make serve``)."""
    return _flag(SHARE_ENV)


def require_writable(action: str) -> None:
    """Raise ``ReadOnlyError`` naming ``action`` (e.g. "saving a controller") on a read-only server."""
    if read_only():
        raise refused(action)


def refused(action: str) -> ReadOnlyError:
    """The one-line error for ``action`` on a read-only server."""
    return ReadOnlyError(f"{action} is turned off: this TTS Lab server is read-only (its operator set "
                         f"{READ_ONLY_ENV}=1). Evaluating and editing in your own session still work.")


def require_private(action: str) -> None:
    """Raise ``PolicyError`` for actions that read a server path a visitor chose, when shared."""
    if shared():
        raise PolicyError(f"{action} is turned off on a shared server: a visitor cannot choose files on the "
                          "server. Its operator imports data with `python -m engine import PATH`.")


def visitor_store(store: Store) -> Store:
    """The store as one browser session may use it: ``store`` itself, or a read-only view."""
    return ReadOnlyStore(store) if read_only() else store


class ReadOnlyStore(Store):
    """A shared store seen read-only: reads pass through, writes raise ``ReadOnlyError``, and
    results (the cache of evaluations) are kept for this view only, never written to the file."""

    def __init__(self, base: Store) -> None:  # no super().__init__: it migrates, which writes
        self.path, self.busy_timeout = base.path, base.busy_timeout
        self._results: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._traces: dict[str, dict[tuple[int, int], list[dict]]] = {}

    def import_path(self, path: str | Path, *, replace: bool = False, progress: Any = None) -> list[ImportReport]:
        raise refused("importing datasets")

    def import_dataset(self, dataset: Any, *, replace: bool = False) -> ImportReport:
        raise refused("importing datasets")

    def delete_dataset(self, name: str) -> None:
        raise refused("deleting datasets")

    def writing(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """Every other write (saving or deleting a controller, settings, feature tables) stops here."""
        raise refused("changing the shared store (saving or deleting controllers, settings)")

    def get_results(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        mine = {k: self._results[k] for k in keys if k in self._results}
        rest = [k for k in keys if k not in mine]
        return {**super().get_results(rest), **mine}

    def put_results(self, rows: dict[str, dict[str, Any]]) -> None:
        """Keep results in this view only (the shared file is not written)."""
        for key, row in rows.items():
            record = dict(zip(_RESULT_COLUMNS, self._result_record(key, row), strict=True))
            record.update(config=row["config"], metrics=row["metrics"])  # as get_results decodes them
            self._results[key] = record
            self._results.move_to_end(key)
        while len(self._results) > SESSION_RESULTS:
            self._results.popitem(last=False)

    def put_traces(self, key: str, traces: list[tuple[int, int, list[dict]]]) -> None:
        self._traces.setdefault(key, {}).update({(q, s): events for q, s, events in traces})

    def get_traces(self, key: str, q_idx: int | None = None,
                   seed: int | None = None) -> list[tuple[int, int, list[dict]]]:
        if key not in self._traces:
            return super().get_traces(key, q_idx, seed)
        return [(q, s, events) for (q, s), events in sorted(self._traces[key].items())
                if (q_idx is None or q == q_idx) and (seed is None or s == seed)]
