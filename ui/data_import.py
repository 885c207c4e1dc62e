"""Adding data from the page: upload AutoTTS JSON or Parquet exports, import a folder, or make a
synthetic teaching set. One function, ``data_panel``, that the home page calls.

Every path goes through the engine (``engine.formats.files``, ``Store.import_path``,
``engine.simulate``) and shows its one-line errors; uploads are all checked before any is stored.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from engine.dataset import Dataset
from engine.formats.files import SUFFIXES, read_dataset_file
from engine.paths import data_dir
from engine.simulate import Knobs, synthetic_dataset
from engine.store import ImportReport, Store
from ui.context import USER_ERRORS

MESSAGE = "data_panel_message"  # what the last import did, shown after the page reloads with the new data


def data_panel(store: Store) -> None:
    """An expander (open while the store is empty) with the three ways to add data."""
    done = st.session_state.pop(MESSAGE, None)
    if done:
        st.success(done)
    empty = not store.list_datasets()
    with st.expander("Add data: upload files, import a folder, or make a synthetic teaching set", expanded=empty,
                     icon=":material/upload:"):
        upload, folder, synthetic = st.tabs(["Upload files", "Import a folder", "Synthetic teaching set"])
        with upload:
            upload_form(store)
        with folder:
            folder_form(store)
        with synthetic:
            synthetic_form(store)


def upload_form(store: Store) -> None:
    with st.form("upload_form"):
        files = st.file_uploader("AutoTTS JSON files or Parquet exports", type=list(SUFFIXES),
                                 accept_multiple_files=True, key="upload_files")
        prefix = st.text_input("name prefix for JSON files (the dataset is <prefix>/<file name>)", "uploaded")
        replace = st.checkbox("replace datasets of the same name", key="upload_replace")
        if st.form_submit_button("Import") and files:
            _store_all(store, lambda report: _read_uploads(files, prefix, report), replace)


def _read_uploads(files: list, prefix: str, report: Callable[[int, int, str], None]) -> list[Dataset]:
    datasets = []
    for i, f in enumerate(files, 1):
        datasets.extend(read_dataset_file(f.name, f.getvalue(), prefix))
        report(i, len(files), f"checked {f.name}")
    return datasets


def folder_form(store: Store) -> None:
    with st.form("folder_form"):
        folder = st.text_input("folder on the server (a file, or a directory of <model>/<bench>.json)",
                               str(data_dir()), key="import_folder")
        replace = st.checkbox("replace datasets whose content changed", key="folder_replace")
        if st.form_submit_button("Import folder"):
            bar = st.progress(0.0, text=f"importing {folder} ...")
            try:
                reports = store.import_path(folder.strip(), replace=replace,
                                            progress=lambda d, t, label: bar.progress(d / t, text=label))
            except USER_ERRORS as exc:
                st.error(f"{type(exc).__name__}: {exc}. Nothing was imported.")
                return
            finally:
                bar.empty()
            _done(reports)


def synthetic_form(store: Store) -> None:
    st.caption("Made-up trajectories whose causes are knobs, so a class can see why a strategy wins or loses. "
               "Seeded: the same knobs give the same dataset. Its name starts with synthetic/.")
    d = Knobs()
    with st.form("synthetic_form"):
        a, b = st.columns(2)
        accuracy = a.slider("model accuracy (share of branches ending right)", 0.0, 1.0, d.accuracy, 0.05,
                            key="sim_accuracy")
        diversity = b.slider("answer diversity (wrong answers competing)", 1, 20, d.diversity, key="sim_diversity")
        convergence = a.slider("how early probes converge (1 = at once)", 0.0, 1.0, d.convergence, 0.05,
                               key="sim_convergence")
        spread = b.slider("branch length spread (log-sd)", 0.0, 1.5, d.length_spread, 0.05, key="sim_spread")
        questions = a.number_input("questions", 1, 1000, d.questions, key="sim_questions")
        branches = b.number_input("branches per question", 1, 512, d.branches, key="sim_branches")
        seed = a.number_input("seed", 0, 2**31 - 1, d.seed, key="sim_seed")
        name = b.text_input("name (optional, under synthetic/)", key="sim_name")
        if st.form_submit_button("Make the dataset"):
            knobs = Knobs(accuracy=accuracy, diversity=diversity, convergence=convergence, length_spread=spread,
                          questions=int(questions), branches=int(branches), seed=int(seed))
            _store_all(store, lambda report: [synthetic_dataset(knobs, name or None)], replace=False)


def _store_all(store: Store, read: Callable[[Callable[[int, int, str], None]], list[Dataset]],
               replace: bool) -> None:
    """Read (or make) every dataset first, then store them; a bad file stores nothing."""
    bar = st.progress(0.0, text="reading ...")
    reports: list[ImportReport] = []
    try:
        datasets = read(lambda d, t, label: bar.progress(d / t / 2, text=label))
        for i, ds in enumerate(datasets, 1):
            reports.append(store.import_dataset(ds, replace=replace))
            bar.progress(0.5 + i / len(datasets) / 2, text=f"stored {ds.name}")
    except USER_ERRORS as exc:
        stored = f" (stored before it: {', '.join(r.name for r in reports)})" if reports else " Nothing was stored."
        st.error(f"{type(exc).__name__}: {exc}.{stored}")
        return
    finally:
        bar.empty()
    _done(reports)


def _done(reports: list[ImportReport]) -> None:
    """Remember what happened and reload, so every table on the page lists the new data."""
    st.session_state[MESSAGE] = "; ".join(f"{r.status} {r.name} ({r.n_questions} questions, {r.n_branches} "
                                          "branches)" for r in reports)
    st.rerun()
