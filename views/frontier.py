"""Frontier (`/frontier`): controllers' sweeps as accuracy-vs-tokens curves per dataset, the Pareto
frontier across them, a summary per controller, the paper's Table 1 and Figure 3 in one click.

Thin: widgets -> ``engine.frontier`` (evaluate sweeps, cached) -> ``engine.pareto`` numbers ->
``engine.plots.frontier`` figures. Every input lives in the URL, so a link reopens the same view.
What the cache lacks is evaluated through the app's fair queue (``ui.fair``): place in line, progress, Stop.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from engine import frontier as fr
from engine.admission import Job
from engine.controllers import BUILTINS
from engine.frontier import SweepEntry, SweepRun
from engine.pareto import AXES
from engine.plots import export
from engine.plots.frontier import frontier_figure, knobs_parallel
from engine.replay import MODES
from engine.sandbox import Limits
from engine.saved import PREFIX, list_controllers
from engine.store import Store
from ui.context import USER_ERRORS, current_store, dataset_names
from ui.fair import run_fairly, sandbox_limits
from ui.links import copy_link_button
from ui.query import initial, multiselect_param, warn_unknown

VIEWS = ("frontier", "table1")  # bound widgets put the option text itself in the URL: keep it short
DEFAULT_CONTROLLERS = ("sc", "cmc")
DEFAULT_BASELINE = "sc | k=64"
STOPPED = "frontier_stopped"


def main() -> None:
    st.title("Frontier")
    st.caption("Accuracy against tokens for whole sweeps of controllers: which one buys accuracy cheapest?")
    try:
        store = current_store()
        names = dataset_names(store)
        if not names:
            return
        presets(names)
        warn_unknown("view", VIEWS, "view")
        view = st.segmented_control("view", VIEWS, key="view", bind="query-params",
                                    default=initial("view", "frontier"))
        if view == "table1":
            table1_view(store)
        else:
            frontier_view(store, names)
    except USER_ERRORS as exc:
        st.error(f"{type(exc).__name__}: {exc}")
    copy_link_button()


def presets(names: list[str]) -> None:
    """One-click presets: they set the inputs (and so the URL), then the page draws them."""
    left, right, _ = st.columns([1, 1, 3])
    left.button("Paper Table 1", on_click=st.session_state.update, kwargs={"view": "table1"},
                help="every method x model x benchmark of the paper, ours beside the paper's")
    figure3 = [d for d in fr.FIGURE3_DATASETS if d in names]
    right.button("Paper Figure 3", on_click=st.session_state.update,
                 kwargs={"view": "frontier", "datasets": figure3, "heldout": figure3, "axis": "total",
                         "controllers": list(fr.FIGURE3_CONTROLLERS)},
                 help="held-out panels; baselines by budget sweep, CMC by beta sweep; total tokens")


def frontier_view(store: Store, names: list[str]) -> None:
    datasets, heldout, refs, axis, shuffles, mode = frontier_inputs(store, names)
    if not datasets or not refs:
        st.info("Choose at least one dataset and one controller.")
        return
    entries = [fr.entry_for(store, ref) for ref in refs]
    run = sweep_with_stop(store, datasets, entries, shuffles, mode)
    if not run.all_points():
        return
    panel_points = fr.panels(run, heldout)
    bands = st.toggle("95% CI bands", True, key="ci", bind="query-params")
    live = fr.live_points(store, datasets, heldout) if axis == "total" else {}
    fig = frontier_figure(panel_points, axis, title=f"Accuracy vs {axis} tokens ({shuffles} shuffles, {mode})",
                          bands=bands, extra=live)
    if live:
        st.caption("Diamonds: live runs of a controller on the same model and questions (the /live page); "
                   "their gap to the replay curve is what replay mispredicts.")
    st.plotly_chart(fig, width="stretch")
    summary(panel_points, axis)
    compare_runs(entries, run)
    exports(fig, panel_points)


def frontier_inputs(store: Store, names: list[str]) -> tuple[list[str], list[str], list[str], str, int, str]:
    """Datasets (and which are held out), controllers, token axis, shuffles, mode: all in the URL."""
    saved = {f"{PREFIX}{c.id}": f"{c.name} (saved {c.id[:8]})" for c in list_controllers(store)}
    options = sorted(BUILTINS) + list(saved)
    left, right = st.columns(2)
    datasets = multiselect_param("datasets", names, "datasets", names[:1], "dataset", container=left)
    heldout = multiselect_param("held-out datasets (the rest are search)", datasets, "heldout", (), "dataset",
                                container=left)
    refs = multiselect_param("controllers", options, "controllers", DEFAULT_CONTROLLERS, "controller",
                             container=right, format_func=lambda r: saved.get(r, r),
                             help="built-ins by their sweeps (budget baselines by budget, CMC by beta); "
                                  "saved controllers by beta, sandboxed")
    a, b, c = right.columns([3, 2, 2])
    warn_unknown("axis", AXES, "token axis")
    axis = a.segmented_control("tokens", AXES, key="axis", bind="query-params",
                                default=initial("axis", "total"))
    shuffles = int(b.number_input("shuffles", 1, 1000, 100, step=10, key="shuffles", bind="query-params"))
    warn_unknown("mode", MODES, "mode")
    mode = c.selectbox("mode", MODES, key="mode", bind="query-params")
    return datasets, heldout, refs, axis or "total", shuffles, mode


def sweep_with_stop(store: Store, datasets: list[str], entries: list[SweepEntry], shuffles: int,
                    mode: str) -> SweepRun:
    """The sweeps, from the cache when it holds them all; else through the fair queue (place in line,
    then a progress bar) with a Stop button.

    Stop reruns the page, which cancels the sweep (waiting or running); the page then shows what was
    evaluated until then (it is all in the store) and offers to resume.
    """
    signature = repr((datasets, [e.ref for e in entries], shuffles, mode))
    cached = fr.run_sweeps(store, datasets, entries, shuffles=shuffles, mode=mode, cached_only=True)
    if cached.complete:
        return cached
    if st.session_state.get(STOPPED) == signature:
        st.warning(f"Stopped: showing what was evaluated before the stop ({cached.missing} evaluations missing).")
        st.button("Resume", on_click=st.session_state.pop, args=(STOPPED, None))
        return cached
    stop = st.empty()
    stop.button("Stop the sweep", on_click=st.session_state.update, kwargs={STOPPED: signature})

    def work(job: Job) -> SweepRun:
        return fr.run_sweeps(store, datasets, entries, shuffles=shuffles, mode=mode, cancel=job.cancel,
                             limits=sandbox_limits(job),
                             progress=lambda done, total, label: job.report(done, total, f"[{done}/{total}] {label}"))

    # A sweep takes the heavy lane even of built-ins only (many evaluations: seconds); saved
    # controllers get as many sandbox workers as the session's share allows.
    sandboxed = not all(e.trusted for e in entries)
    try:
        run = run_fairly(work, label="evaluating the sweeps", workers=Limits().workers if sandboxed else 1, stop=None)
    finally:
        stop.empty()
    return cached if run is None else run


def summary(panel_points: dict[str, list[Any]], axis: str) -> None:
    """Per controller and panel: best accuracy, tokens at the baseline's accuracy, frontier score."""
    st.subheader("Summary per controller")
    options = fr.baseline_options([p for pts in panel_points.values() for p in pts])
    options.sort(key=lambda o: o != DEFAULT_BASELINE)  # the default first: SC@64 when it is swept
    warn_unknown("baseline", options, "baseline")
    baseline = st.selectbox("baseline for matched accuracy", options, key="baseline", bind="query-params")
    rows = fr.summary_rows(panel_points, baseline, axis)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=35 * (min(len(rows), 30) + 1) + 3)
    st.caption("Frontier score: mean attainable accuracy over log tokens on the range all controllers of a panel "
               "cover. Tokens at the baseline's accuracy: the cheapest config reaching it, as a share of the "
               "baseline's tokens. Definitions: docs/frontier.md.")


def compare_runs(entries: list[SweepEntry], run: SweepRun) -> None:
    """Parallel coordinates of one controller's knobs against the outcomes; a table of chosen runs
    showing only the settings in which they differ."""
    with st.expander("Compare runs"):
        labels = {e.label: e for e in entries}
        chosen = st.selectbox("controller", list(labels), key="compare_controller")
        rows = fr.run_rows(labels[chosen], run.all_points())
        if rows:
            st.plotly_chart(knobs_parallel(rows, fr.numeric_dimensions(rows), f"{chosen}: knobs vs outcomes"),
                            width="stretch")
        every = [row for e in entries for row in fr.run_rows(e, run.all_points())]
        names = [run_name(r) for r in every]
        picked = st.multiselect("runs to compare", names, default=names[:2], key="compare_runs")
        table = [every[names.index(n)] for n in picked]
        if len(table) >= 2:
            keys = [k for k in fr.differing(table) if k not in fr.OUTCOMES] + list(fr.OUTCOMES)
            st.dataframe(pd.DataFrame({n: [str(r.get(k, "")) for k in keys] for n, r in zip(picked, table,
                                                                                            strict=True)},
                                      index=keys), width="stretch")


def run_name(row: dict[str, Any]) -> str:
    knobs = ", ".join(f"{k}={row[k]}" for k in ("k", "max_samples", "num_chains", "beta") if k in row)
    return f"{row['controller']} | {knobs} | {row['dataset']}"


def exports(fig: Any, panel_points: dict[str, list[Any]]) -> None:
    """The points as CSV, the figure as standalone HTML and as PNG (both rendered only when clicked)."""
    points = [p for pts in panel_points.values() for p in pts]
    a, b, c = st.columns(3)
    a.download_button("Points (CSV)", pd.DataFrame(fr.points_rows(points)).to_csv(index=False),
                      "frontier_points.csv", "text/csv", on_click="ignore")
    b.download_button("Figure (HTML)", lambda: export.figure_html(fig), "frontier.html", "text/html",
                      on_click="ignore")
    c.download_button("Figure (PNG)", lambda: export.figure_png(fig), "frontier.png", "image/png",
                      on_click="ignore")


def table1_view(store: Store) -> None:
    """Every cell of the paper's Table 1 with ours beside it, the difference, and the documented exceptions."""
    paper = fr.read_paper_table()
    rows = run_fairly(lambda job: fr.table1(store, paper, progress=job.report, cancel=job.cancel),
                      label="evaluating Table 1", stop="table1")
    if rows is None:  # stopped
        return
    frame = pd.DataFrame([{
        "model": r.model, "benchmark": r.benchmark, "method": r.method,
        "paper acc %": r.paper_accuracy, "ours acc %": r.ours_accuracy, "diff acc": r.accuracy_diff,
        "paper tokens k": r.paper_tokens_k, "ours tokens k": r.ours_tokens_k, "diff tokens k": r.tokens_diff_k,
        "match": "yes" if r.matches else "no", "note": r.note,
    } for r in rows])
    matching = sum(r.matches for r in rows)
    st.metric("cells matching the paper (after its rounding)", f"{matching} / {len(rows)}")
    st.caption("Ours: 100 shuffles, compat mode, accuracy to 0.1 %, int(tokens) to 0.1k as the paper prints "
               "them. Qwen3-4B ASC uses max_samples=40 as the paper did; the Qwen3-1.7B Parallel-Probe row "
               "is not reproducible with any known setting (docs: controllers.md).")
    differ = [f"{r.model}/{r.benchmark} {r.method}" for r in rows if not r.matches]
    if differ:
        st.warning("Cells that differ from the paper: " + "; ".join(differ), icon=":material/difference:")
    st.dataframe(frame, hide_index=True, width="stretch", height=35 * (len(frame) + 1) + 3)
    st.download_button("Table 1 (CSV)", frame.to_csv(index=False), "table1.csv", "text/csv", on_click="ignore")


main()
