"""Home (`/`): the stored datasets at a glance, and one built-in controller evaluated on one of them.

Thin on purpose: widgets -> engine calls -> figures from ``engine.plots``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from engine import plots, sandbox
from engine.admission import FAST
from engine.controllers import BETAS, BUDGET_KNOB, BUDGETS, BUILTINS
from engine.evaluate import ControllerSpec, EvalResult, evaluate
from engine.paths import data_dir
from engine.replay import MODES
from engine.store import DatasetInfo, Store
from ui.context import USER_ERRORS, current_store
from ui.data_import import data_panel
from ui.fair import run_fairly
from ui.stores import stores_panel, uses_default

DEFAULT_CONTROLLER = "cmc"
ROW_PX = 35  # st.dataframe row height in pixels
MAX_ROWS = 20  # tables grow to show this many rows before they scroll
IMPORT_HELP = (
    "No datasets are stored yet, and there are no AutoTTS files (`<model>/<bench>.json`) in `{folder}`.\n\n"
    "Import some with `python -m engine import PATH` (a file or a directory of `<model>/<bench>.json`), "
    "or set `TTSLAB_DATA` to such a directory, then reload this page."
)
EMPTY_HELP = ("This database holds no datasets yet. Import some with `python -m engine import PATH --db FILE` "
              "or copy them from another store with `python -m engine attach OTHER.duckdb --db FILE`.")


def main() -> None:
    """Render the page; expected failures become one st.error line instead of a traceback."""
    st.title("TTS Lab")
    st.caption("Replay pre-collected reasoning branches to compare test-time-scaling controllers: "
               "accuracy against tokens, on a laptop, without a GPU or an API key.")
    sandbox_warning()
    try:
        store = current_store()
        infos = ensure_datasets(store)
        data_panel(store)
        if infos:
            show_datasets(infos)
            evaluation_section(store, infos)
    except USER_ERRORS as exc:
        st.error(f"{type(exc).__name__}: {exc}")
    stores_panel()


def ensure_datasets(store: Store) -> list[DatasetInfo]:
    """The stored datasets; on first run, everything under ``data_dir()`` is imported first."""
    infos = store.list_datasets()
    if infos or not uses_default():  # a database the user created or uploaded stays as it is
        if not infos:
            st.info(EMPTY_HELP)
        return infos
    folder = data_dir()
    if not folder.is_dir() or not any(folder.glob("*/*.json")):
        st.info(IMPORT_HELP.format(folder=folder))
        return []
    bar = st.progress(0.0, text=f"First run: importing the datasets in {folder} ...")
    try:
        reports = store.import_path(folder, progress=lambda done, total, label: bar.progress(done / total, text=label))
    finally:
        bar.empty()
    st.success(f"Imported {len(reports)} dataset{'s' if len(reports) != 1 else ''} from {folder}.")
    return store.list_datasets()


def show_datasets(infos: list[DatasetInfo]) -> None:
    """Table and overview figure: how hard each dataset is before any controller runs."""
    st.header("Datasets")
    st.dataframe(datasets_table(infos), hide_index=True, width="stretch", height=table_height(len(infos)))
    st.plotly_chart(plots.datasets_overview(infos), width="stretch")


def datasets_table(infos: list[DatasetInfo]) -> pd.DataFrame:
    """One row per dataset; the vote columns name the branch count when all datasets share it."""
    per_question = {i.n_branches_total // max(i.n_questions, 1) for i in infos}
    pool = str(per_question.pop()) if len(per_question) == 1 else "all"
    return pd.DataFrame({
        "dataset": [i.name for i in infos],
        "questions": [i.n_questions for i in infos],
        "branches": [i.n_branches_total for i in infos],
        "pass@1 %": [round(i.pass_at_1, 1) for i in infos],
        f"majority of {pool} %": [round(i.majority_all, 1) for i in infos],
        f"any of {pool} correct %": [round(i.any_correct, 1) for i in infos],
    })


def evaluation_section(store: Store, infos: list[DatasetInfo]) -> None:
    """Evaluate on every input change: built-ins replay in a compiled kernel and results are cached."""
    st.header("Evaluate a built-in controller")
    dataset_name, spec, shuffles, mode = evaluation_inputs([i.name for i in infos])
    result = run_evaluation(store, dataset_name, spec, shuffles, mode)
    if result is None:  # stopped by the visitor
        return
    show_metrics(result)
    knobs_column, chart_column = st.columns([1, 3])
    with knobs_column:
        show_knobs(spec)
    chart_column.plotly_chart(plots.per_question_accuracy(result), width="stretch")
    with st.expander(f"How beta sets the knobs of {spec.name}"):
        st.plotly_chart(plots.schedule_curve(BUILTINS[spec.name], BETAS, current=spec.config.get("beta")),
                        width="stretch")


def evaluation_inputs(datasets: list[str]) -> tuple[str, ControllerSpec, int, str]:
    """Dataset, controller spec (beta and, for budget baselines, the budget knob), shuffles, mode."""
    left, middle, right = st.columns(3)
    dataset_name = left.selectbox("dataset", datasets, key="dataset")
    names = sorted(BUILTINS)
    name = middle.selectbox("controller", names, index=names.index(DEFAULT_CONTROLLER), key="controller")
    mode = right.selectbox("mode", MODES, key="mode",
                           help="compat: the reference's rules; strict: invalid actions are errors")
    knob = BUDGET_KNOB.get(name)
    beta = left.slider("beta", 0.0, 1.0, 0.5, step=0.05, key="beta", disabled=knob is not None,
                       help="one scalar that sets every knob; budget baselines are set by their budget instead")
    config: dict[str, Any] = {"beta": beta}
    if knob is not None:  # the same config as the budget sweep's, so cached sweep results are reused
        config = {knob: middle.selectbox(f"budget ({knob})", BUDGETS, index=len(BUDGETS) - 1, key="budget")}
    shuffles = int(right.number_input("shuffles", min_value=1, max_value=1000, value=100, step=10,
                                      key="shuffles"))
    return dataset_name, ControllerSpec.builtin(name, config), shuffles, mode


def show_knobs(spec: ControllerSpec) -> None:
    """The knobs the controller actually runs with: schedule(beta) merged with explicit ones."""
    knobs, beta = spec.build().knobs, spec.config.get("beta")
    where = f"beta = {beta:.2f}" if beta is not None else ", ".join(f"{k} = {v}" for k, v in spec.config.items())
    st.markdown(f"**{spec.name} knobs at {where}**")
    st.dataframe(pd.DataFrame({"knob": list(knobs), "value": [str(v) for v in knobs.values()]}),
                 hide_index=True, width="stretch", height=table_height(len(knobs)))


def table_height(rows: int) -> int:
    """Pixels for a header plus ``rows`` rows (up to MAX_ROWS): short tables should not scroll."""
    return ROW_PX * (min(rows, MAX_ROWS) + 1) + 3


def run_evaluation(store: Store, dataset_name: str, spec: ControllerSpec, shuffles: int,
                   mode: str) -> EvalResult | None:
    """engine.evaluate with the store as result cache, through the fair queue's fast lane (a built-in
    on one dataset: it never waits behind sandboxed runs; place in line, progress and Stop shown);
    None if the visitor stopped it."""
    dataset = store.load_dataset(dataset_name)
    return run_fairly(lambda job: evaluate(dataset, spec, shuffles=shuffles, mode=mode, store=store,
                                           progress=job.report),
                      label=f"{spec.name} on {dataset_name}", lane=FAST)


def show_metrics(result: EvalResult) -> None:
    """The headline numbers of one evaluation; 'from cache' says whether it was replayed just now."""
    lo, hi = result.ci95
    cells = st.columns(6)
    cells[0].metric("accuracy", f"{result.accuracy:.2f}%")
    cells[1].metric("avg total tokens", f"{result.avg_total_tokens:,.0f}")
    cells[2].metric("avg sequential tokens", f"{result.avg_sequential_tokens:,.0f}")
    cells[3].metric("95% CI", f"{lo:.1f} - {hi:.1f}%")
    cells[4].metric("seconds", f"{result.seconds:.3f}")
    cells[5].metric("from cache", "yes" if result.cached else "no")


def sandbox_warning() -> None:
    """Nobody should serve strangers' controller code on the weak sandbox layer without knowing it."""
    layer = sandbox.layer()
    if not layer.full:
        st.warning(f"**Sandbox fallback** ({layer.reason}): {layer.meaning}. Run `python -m engine doctor` "
                   "for how to get the full sandbox.", icon="⚠️")


main()
