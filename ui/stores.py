"""Trajectory databases in the app: pick, create, upload and download the DuckDB stores of ``cache/``.

The store a browser session works on is its own choice: ``store_picker()`` (sidebar, every page)
and ``stores_panel()`` (home page) set it, and the URL carries it as ``db=<name>`` so a link
reopens the same store. A name is only ever a file name in ``stores_dir()``: a path, ``..`` or a
missing file is refused with a message, never opened. Without a choice the session uses the
server's store (``--db`` / ``TTSLAB_DB`` / ``cache/ttslab.duckdb``).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from engine import policy, transfer
from engine.paths import default_db, stores_dir
from engine.store import Store, StoreError, peek_datasets

QUERY_KEY = "db"  # the URL key naming this session's store
CHOICE = "ttslab_store"  # session state: the chosen store's name (absent: the server's store)
NOTE = "ttslab_store_note"  # session state: (kind, text) of the last create/upload, shown once
MAX_UPLOAD_MB = 200
SUFFIX = ".duckdb"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class BadStoreName(ValueError):
    """A ``db=`` value or a new store's name that is not a plain file name in the stores folder."""


@dataclass(frozen=True)
class StoreEntry:
    """One ``*.duckdb`` file of the stores folder, as the picker shows it."""

    name: str
    path: Path
    datasets: tuple[str, ...]
    size: int
    modified: datetime
    problem: str | None = None  # why it cannot be opened (not a store, newer schema, busy)


def store_path(name: str, folder: Path, *, must_exist: bool = True) -> Path:
    """The file of store ``name`` (with or without ``.duckdb``) in ``folder``; BadStoreName otherwise."""
    stem = name.removesuffix(SUFFIX)
    path = folder / f"{stem}{SUFFIX}"
    if not _NAME.fullmatch(stem) or ".." in stem or path.resolve().parent != folder.resolve():
        raise BadStoreName(f"{name!r} is not a store name: use the name of a file in {folder.name}/ "
                           "(letters, digits, '-', '_', '.'), not a path")
    if must_exist and not path.is_file():
        raise BadStoreName(f"there is no store named {stem!r} in {folder.name}/")
    return path


def db_argument(argv: list[str]) -> str | None:
    """`streamlit run app.py -- --db FILE` picks the server's store as the CLI's --db does (else TTSLAB_DB)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db")
    return parser.parse_known_args(argv)[0].db


def default_path() -> Path:
    """The server's store: ``--db FILE`` after ``--`` on the streamlit command line, else ``default_db()``."""
    arg = db_argument(sys.argv[1:])
    return Path(arg) if arg else default_db()


def session_path() -> Path:
    """The store file this browser session works on (back to the server's if the chosen file went away)."""
    name = st.session_state.get(CHOICE)
    if name is None:
        return default_path()
    try:
        return store_path(name, stores_dir())
    except BadStoreName as exc:
        st.session_state.pop(CHOICE)
        st.session_state[NOTE] = ("error", f"{exc}; back to {default_path().name}")
        return default_path()


def uses_default() -> bool:
    """Whether this session works on the server's store (not one it picked, created or uploaded)."""
    return st.session_state.get(CHOICE) is None or session_path() == default_path()


def list_stores(folder: Path) -> list[StoreEntry]:
    """Every ``*.duckdb`` file of ``folder``, by name, with its datasets (read, never migrated)."""
    return [_entry(path) for path in sorted(folder.glob(f"*{SUFFIX}")) if path.is_file()]


_SEEN: dict[Path, tuple[tuple[int, int], StoreEntry]] = {}  # path -> ((mtime, size), its entry)


def _entry(path: Path) -> StoreEntry:
    """A store's entry, reused while the file's size and time are unchanged (listing runs every page)."""
    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    seen = _SEEN.get(path)
    if seen is not None and seen[0] == key:
        return seen[1]
    datasets, problem = (), None
    try:
        datasets = tuple(peek_datasets(path))
    except StoreError as exc:
        problem = str(exc)
    entry = StoreEntry(path.stem, path, datasets, stat.st_size, datetime.fromtimestamp(stat.st_mtime), problem)
    if not problem or "busy" not in problem:
        _SEEN[path] = (key, entry)
    return entry


# -- widgets -----------------------------------------------------------------------------------

def store_picker() -> None:
    """Sidebar selectbox of the stores; applies a ``db=`` link first (refusing a bad one with a message)."""
    _apply_link()
    with st.sidebar:
        _picker("Trajectory database", "store_picker_sidebar")


def stores_panel() -> None:
    """Home page: the stores with their datasets, sizes and dates; open, create, upload, download."""
    try:
        _panel(list_stores(stores_dir()))
    except (StoreError, OSError, ValueError) as exc:
        st.error(f"{type(exc).__name__}: {exc}")


def _panel(entries: list[StoreEntry]) -> None:
    note = st.session_state.pop(NOTE, None)
    with st.expander("Trajectory databases", expanded=note is not None, icon=":material/database:"):
        if note is not None:
            (st.success if note[0] == "success" else st.error)(note[1])
        st.caption(f"In use: **{_label(session_path())}**. {len(entries)} store file(s) in `{stores_dir()}`; "
                   "the link of every page carries the one in use (`db=`).")
        if entries:
            st.table(stores_table(entries).set_index("store"))
        _picker("Open a database", "store_picker_home")
        create, upload, download = st.columns(3)
        with create:
            _create_form()
        with upload:
            st.file_uploader(f"Upload a .duckdb store (up to {MAX_UPLOAD_MB} MB)", type=["duckdb"],
                             key=f"store_upload_{st.session_state.get('store_upload_round', 0)}",
                             max_upload_size=MAX_UPLOAD_MB, on_change=_adopt_upload)
        with download:
            _download()


def stores_table(entries: list[StoreEntry]) -> pd.DataFrame:
    """One row per store file: name, datasets, size, last change, and what is wrong with it if anything."""
    return pd.DataFrame({
        "store": [e.name for e in entries],
        "datasets": [len(e.datasets) for e in entries],
        "names": [", ".join(e.datasets) if not e.problem else e.problem for e in entries],
        "size": [_size(e.size) for e in entries],
        "modified": [e.modified.strftime("%Y-%m-%d %H:%M") for e in entries],
    })


def _apply_link() -> None:
    """``db=`` in the URL picks the store (a bad one is refused); a choice is always written back."""
    requested = st.query_params.get(QUERY_KEY)
    if requested is not None and requested != st.session_state.get(CHOICE):
        try:
            st.session_state[CHOICE] = store_path(requested, stores_dir()).stem
        except BadStoreName as exc:
            st.error(f"This link's database was not opened: {exc}. Showing {_label(session_path())} instead.",
                     icon=":material/block:")
            del st.query_params[QUERY_KEY]
    chosen = st.session_state.get(CHOICE)
    if chosen is not None and st.query_params.get(QUERY_KEY) != chosen:  # only on a change (views/lab.py)
        st.query_params[QUERY_KEY] = chosen


def _picker(label: str, key: str) -> None:
    entries = [e for e in list_stores(stores_dir()) if not e.problem]
    options = [e.name for e in entries]
    counts = {e.name: len(e.datasets) for e in entries}
    current = session_path()
    listed = _in_folder(current) and current.stem in options
    if not listed:
        options.insert(0, "")  # the server's store: outside the folder, or not created yet
    st.session_state[key] = current.stem if listed else ""
    st.selectbox(label, options, key=key, on_change=_choose, args=(key,),
                 format_func=lambda n: f"{n} · {_count(counts[n])}" if n else f"{default_path().name} (default)")


def _choose(key: str) -> None:
    name = st.session_state[key]
    if not name:
        st.session_state.pop(CHOICE, None)
        st.query_params.pop(QUERY_KEY, None)
    else:
        st.session_state[CHOICE] = name
        st.query_params[QUERY_KEY] = name


def _create_form() -> None:
    with st.form("new_store", clear_on_submit=True, border=False):
        st.text_input("New empty database", key="new_store_name", placeholder="e.g. my-project")
        st.form_submit_button("Create and open", on_click=_create)


def _create() -> None:
    try:
        policy.require_writable("creating a database")
        path = store_path(st.session_state.get("new_store_name", "").strip(), stores_dir(), must_exist=False)
        if path.exists():
            raise FileExistsError(f"a store named {path.stem!r} exists already")
        Store(path)
    except (BadStoreName, OSError, StoreError) as exc:
        st.session_state[NOTE] = ("error", str(exc))
        return
    _open(path.stem, f"Created the empty database {path.stem} and opened it.")


def _adopt_upload() -> None:
    key = f"store_upload_{st.session_state.get('store_upload_round', 0)}"
    upload = st.session_state.get(key)
    if upload is None:
        return
    st.session_state["store_upload_round"] = st.session_state.get("store_upload_round", 0) + 1
    try:
        policy.require_writable("uploading a database")
        path = store_path(Path(upload.name).stem, stores_dir(), must_exist=False)
        datasets = transfer.adopt_file(upload.getvalue(), path)
    except (BadStoreName, OSError, StoreError) as exc:
        st.session_state[NOTE] = ("error", f"{upload.name} was not kept: {exc}")
        return
    _open(path.stem, f"Kept {upload.name} as {path.stem} ({_count(len(datasets))}) and opened it.")


def _open(name: str, message: str) -> None:
    st.session_state[CHOICE] = name
    st.query_params[QUERY_KEY] = name
    st.session_state[NOTE] = ("success", message)


def _download() -> None:
    store = Store(session_path())
    names = [i.name for i in store.list_datasets()]
    stem = session_path().stem
    chosen = st.multiselect("Download datasets", names, default=names, key=f"download_datasets_{stem}")
    results = st.checkbox("with cached results and traces", value=True, key="download_results")
    st.download_button("Download as .duckdb", icon=":material/download:", disabled=not chosen,
                       file_name=f"{stem}{SUFFIX}" if chosen == names else f"{stem}-subset{SUFFIX}",
                       mime="application/octet-stream", on_click="ignore",
                       data=lambda: transfer.export_bytes(store, chosen, with_results=results, with_saved=results))


def _in_folder(path: Path) -> bool:
    return path.parent.resolve() == stores_dir().resolve()


def _label(path: Path) -> str:
    return path.stem if _in_folder(path) else str(path)


def _count(n: int) -> str:
    return f"{n} dataset{'s' if n != 1 else ''}"


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} kB"

