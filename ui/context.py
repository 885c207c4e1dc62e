"""What every page needs from the running app: this browser session's store and the errors to show."""

from __future__ import annotations

import argparse
import sys

import duckdb

from engine.controllers.loader import ControllerError
from engine.formats.autotts import FormatError
from engine.store import Store, StoreError

# Failures a user can cause or fix (bad files, a busy database, an invalid config): shown, never raised.
USER_ERRORS = (ControllerError, FormatError, StoreError, duckdb.Error, OSError, ValueError)


def db_argument(argv: list[str]) -> str | None:
    """`streamlit run app.py -- --db FILE` picks the store as the CLI's --db does (else TTSLAB_DB)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db")
    return parser.parse_known_args(argv)[0].db


def current_store() -> Store:
    """The store this browser session works on."""
    return Store(db_argument(sys.argv[1:]))
