"""What every page needs from the running app: this browser session's store and the errors to show."""

from __future__ import annotations

import duckdb
import streamlit as st

from engine import policy
from engine.controllers.loader import ControllerError
from engine.formats.autotts import FormatError
from engine.store import Store, StoreError
from ui.stores import db_argument, session_path

# Failures a user can cause or fix (bad files, a busy database, an invalid config): shown, never raised.
USER_ERRORS = (ControllerError, FormatError, StoreError, duckdb.Error, OSError, ValueError)

__all__ = ["USER_ERRORS", "current_store", "dataset_names", "db_argument"]


def current_store() -> Store:
    """The store this browser session works on: its pick in the database picker, else the server's store;
    on a read-only server, a view of it that keeps this session's results to itself (kept in the
    session, so they last across reruns)."""
    store = Store(session_path())
    if not policy.read_only():
        return store
    key = f"ttslab_read_only_view:{store.path}"
    if key not in st.session_state:
        st.session_state[key] = policy.visitor_store(store)
    return st.session_state[key]


def dataset_names(store: Store) -> list[str]:
    """The stored datasets' names; when there are none, an info line saying where to get some."""
    names = [i.name for i in store.list_datasets()]
    if not names:
        st.info("No datasets are stored yet: import some on the home page, then come back.")
    return names
