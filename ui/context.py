"""What every page needs from the running app: this browser session's store and the errors to show."""

from __future__ import annotations

import duckdb

from engine.controllers.loader import ControllerError
from engine.formats.autotts import FormatError
from engine.store import Store, StoreError
from ui.stores import db_argument, session_path

# Failures a user can cause or fix (bad files, a busy database, an invalid config): shown, never raised.
USER_ERRORS = (ControllerError, FormatError, StoreError, duckdb.Error, OSError, ValueError)

__all__ = ["USER_ERRORS", "current_store", "db_argument"]


def current_store() -> Store:
    """The store this browser session works on: its pick in the database picker, else the server's store."""
    return Store(session_path())
