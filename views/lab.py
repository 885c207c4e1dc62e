"""Controller lab (`/lab`): pick or write a controller, move beta, see it replayed against the baselines.

Thin: widgets -> ``engine.lab`` / ``engine.saved`` -> ``engine.plots.lab``. The view lives in the URL
(README, "Share links"): dataset, controller, mode, shuffles, beta, budget, axis, seed. User code only
runs sandboxed (``evaluate(..., trusted=False)``). Whatever is not cached (a replay, the baselines'
curves, user code) runs through the app's fair queue (``ui.fair``): place in line, progress and Stop;
a built-in's replay in its fast lane.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
import streamlit as st
from code_editor import code_editor

from engine import lab, saved
from engine.admission import FAST, Job
from engine.controllers import BETAS, BUDGETS, BUILTINS
from engine.controllers.loader import ControllerError
from engine.dataset import Dataset
from engine.evaluate import ControllerSpec, EvalResult, evaluate, result_key
from engine.plots import lab as lab_plots
from engine.plots import schedule_curve
from engine.replay import MODES
from engine.sandbox import Limits
from engine.store import Store
from ui.context import USER_ERRORS, current_store
from ui.fair import run_fairly, stream_fairly
from ui.links import copy_link_button

DEFAULT_CONTROLLER = "cmc"
# User code in the lab: an episode that runs 5 s is a loop, not a strategy; the page must come back.
LIMITS = Limits(episode_seconds=5.0, evaluation_seconds=120.0)
RUN_BUTTON = [{"name": "Run", "feather": "Play", "primary": True, "hasText": True, "showWithIcon": True,
               "alwaysOn": True, "commands": ["submit"], "style": {"bottom": "0.44rem", "right": "0.4rem"}}]
EDITOR_OPTIONS = {"showLineNumbers": True, "showGutter": True, "tabSize": 4, "useSoftTabs": True}
EDITOR_PROPS = {"scrollMargin": [0, 0, 0, 0]}  # the default top margin shifts the gutter after a paste
TABLE_PX = 420
ROW_PX = 35  # st.dataframe row height


@dataclass(frozen=True)
class Pick:
    """What the inputs above the results chose: dataset, controller, mode, shuffles and the code to run."""

    dataset: str
    ref: str
    mode: str
    shuffles: int
    source: str | None = None  # user code to evaluate; None for a built-in or preset
    class_name: str | None = None
    saved_id: str | None = None  # the saved controller this code is (or was edited from)
    edited: bool = False  # the code differs from the saved version (links cannot carry it)
    label: str = ""  # what figures call this controller
    content_hash: str = ""  # of the dataset: in-memory caches are keyed by it

    @property
    def link_controller(self) -> str | None:
        """The controller id links may carry: none for code that is not saved as it is."""
        return None if self.edited else lab.link_ref(self.ref)


def main() -> None:
    """Render the page; expected failures become one st.error line instead of a traceback."""
    st.title("Controller lab")
    st.caption("Pick a controller or write one, move beta, and see its replayed accuracy against tokens "
               "over the built-in baselines. Your code runs in the sandbox, never in this server.")
    try:
        store = current_store()
        hashes = {i.name: i.content_hash for i in store.list_datasets()}
        datasets = list(hashes)
        if not datasets:
            st.info("No datasets are stored yet: open the home page (it imports them on first run) or run "
                    "`python -m engine import PATH`, then reload this page.")
            return
        versions = saved.versions(store)
        pick = replace(inputs(store, datasets, versions), content_hash=hashes[st.session_state["dataset"]])
        results(store, pick)
        if pick.source is not None:
            save_form(store, pick)
        versions_section(versions)
    except USER_ERRORS as exc:
        st.error(f"{type(exc).__name__}: {exc}")


# -- inputs --------------------------------------------------------------------------------------
def inputs(store: Store, datasets: list[str], versions: list[saved.Version]) -> Pick:
    """Dataset, controller, mode and shuffles (all in the URL), then the code of a saved or new one."""
    refs = lab.controller_refs(versions)
    link_notices(datasets, refs)
    left, middle, mode_col, shuffles_col = st.columns([3, 3, 1, 1])
    dataset = left.selectbox("dataset", datasets, key="dataset", bind="query-params")
    ref = middle.selectbox("controller", refs, key="controller", format_func=lambda r: lab.ref_label(r, versions),
                           help="a built-in, a preset, a saved controller, or new code")
    if st.query_params.get("controller") != ref:  # not bound: the picker shows names, the URL keeps the id
        # Written only on a change: each write sends this run's whole query string, which would put back a
        # beta the slider has already moved past (a slider move reruns the page while the URL follows it).
        st.query_params["controller"] = ref
    mode = mode_col.selectbox("mode", MODES, key="mode", bind="query-params",
                              help="compat: the reference's rules; strict: invalid actions are errors")
    shuffles = int(shuffles_col.number_input("shuffles", min_value=1, max_value=1000, value=100, step=10,
                                             key="shuffles", bind="query-params"))
    pick = Pick(dataset, ref, mode, shuffles, label=ref)
    kind = lab.kind_of(ref)
    if kind in ("builtin", "preset"):
        base = ControllerSpec.builtin(ref).name
        with st.expander(f"Source of {base} (to edit a copy, pick “new” and start from {base})"):
            st.code(lab.builtin_source(base), language="python", line_numbers=True)
        return pick
    if kind == "saved":
        found = saved.get_controller(store, ref)
        st.caption(f"{lab.ref_label(ref, versions)} · {found.note or 'no note'}"
                   + (f" · edited from {found.parent[:8]}" if found.parent else ""))
        return editor(replace(pick, label=found.name), found.source, found.class_name, found.id,
                      f"lab_editor:{found.id}")
    start = st.selectbox("start from", list(lab.starters()), key="lab_start",
                         help="the template, or a built-in's own source (it runs unmodified, sandboxed)")
    return editor(replace(pick, label="your code"), lab.starters()[start], None, None, f"lab_editor:new:{start}")


def link_notices(datasets: list[str], refs: list[str]) -> None:
    """Friendly words for a link naming what this store lacks; the controller is seeded from the URL here."""
    notices = st.session_state.setdefault("lab_notices", [])
    wanted = st.query_params.get("dataset")
    if wanted is not None and wanted not in datasets:
        notices.append(f"This link names the dataset **{wanted}**, which this store does not hold; showing "
                       f"{datasets[0]} instead. Stored: {', '.join(datasets)}.")
    pending = st.session_state.pop("lab_pending_controller", None)
    if pending is not None:
        st.session_state["controller"] = pending
    elif "controller" not in st.session_state:
        wanted = st.query_params.get("controller", DEFAULT_CONTROLLER)
        if wanted not in refs:
            notices.append(_unknown_controller(wanted))
        st.session_state["controller"] = wanted if wanted in refs else DEFAULT_CONTROLLER
    for text in notices:
        st.warning(text, icon=":material/link_off:")


def _unknown_controller(ref: str) -> str:
    if ref.startswith(saved.PREFIX):
        return (f"This link's controller **{ref}** is not saved here: it was deleted, or saved in another "
                f"database. Showing {DEFAULT_CONTROLLER} instead.")
    return (f"This link names an unknown controller **{ref}**; showing {DEFAULT_CONTROLLER} instead. "
            f"Built-ins: {', '.join(sorted(BUILTINS))}; presets and saved controllers are in the picker.")


def editor(pick: Pick, source: str, class_name: str | None, saved_id: str | None, key: str) -> Pick:
    """The code editor (Ace, offline, line numbers); its Run button evaluates the code it holds."""
    response = code_editor(source, lang="python", height=[14, 40], buttons=RUN_BUTTON, options=EDITOR_OPTIONS,
                           props=EDITOR_PROPS, key=key)
    runs = st.session_state.setdefault("lab_runs", {})
    if response and response.get("type") == "submit" and response.get("id") != runs.get(key, (None,))[0]:
        runs[key] = (response["id"], response["text"])
        forget_failures(response["text"])
    code = runs.get(key, (None, source))[1]
    edited = saved_id is not None and code != source
    st.caption("Run (the button in the editor) evaluates the code as it is in the editor"
               + ("; it differs from the saved version, so links show the saved one until you save it."
                  if edited else "."))
    label = f"{pick.label} (edited)" if edited else pick.label
    return replace(pick, source=code, class_name=None if edited else class_name, saved_id=saved_id, edited=edited,
                   label=label)


def forget_failures(code: str) -> None:
    """An explicit Run retries code that failed or was stopped before."""
    for name in ("lab_failed", "lab_stopped"):
        marks = st.session_state.setdefault(name, {})
        for request in [r for r, (_, c) in marks.items() if c == code]:
            del marks[request]


# -- results -------------------------------------------------------------------------------------
def results(store: Store, pick: Pick) -> None:
    """Sliders and everything they change. Not a fragment, even for a built-in's fast replay: Streamlit
    lets a full rerun (Stop, a slider) interrupt a running or queued evaluation, but queues a fragment's
    reruns behind it, and under load a built-in's replay may wait its turn in the fair queue."""
    knob = lab.budget_knob(pick.ref)
    preset = lab.kind_of(pick.ref) == "preset"
    sliders, display = st.columns([3, 2])
    beta = sliders.slider("beta", 0.0, 1.0, 0.5, step=0.05, key="beta", bind="query-params",
                          disabled=knob is not None or preset,
                          help="one scalar in [0, 1] that sets every knob (config['beta'] for your code); "
                               "budget baselines are set by their budget, presets are fixed")
    budget = 64
    if knob is not None:
        budget = sliders.select_slider(f"budget ({knob})", BUDGETS, value=64, key="budget", bind="query-params")
    axis = display.radio("tokens axis", list(lab_plots.AXES), key="axis", bind="query-params", horizontal=True)
    seed = int(display.number_input("episode seed (for the episode links)", min_value=0, max_value=999, value=0,
                                 key="seed", bind="query-params"))
    config = lab.lab_config(pick.ref, beta, budget)
    dataset = _dataset(store.path, pick.dataset, pick.content_hash)
    curves = baselines(store, dataset, pick)
    if curves is None:  # stopped while waiting for them
        return
    view = View(store, dataset, pick, axis, seed, curves)
    if pick.source is None:
        builtin_results(view, ControllerSpec.builtin(pick.ref, config))
    else:
        user_results(view, lab.user_spec(pick.source, config, class_name=pick.class_name))
    copy_link_button()
    if pick.link_controller is None:
        st.caption("Unsaved code is not part of links (links carry ids, never code): save it to share this view.")


@dataclass(frozen=True)
class View:
    """What drawing a result needs besides the result."""

    store: Store
    dataset: Dataset
    pick: Pick
    axis: str
    seed: int
    baselines: dict[str, list[EvalResult]]


@st.cache_resource(max_entries=8, show_spinner=False)
def _dataset(path: Path, name: str, content_hash: str) -> Dataset:
    """Datasets are loaded once per content (shared by sessions: they are read-only)."""
    return Store(path).load_dataset(name)


def baselines(store: Store, dataset: Dataset, pick: Pick) -> dict[str, list[EvalResult]] | None:
    """The baselines' curves at the chosen shuffles (replayed once per dataset and setting, through the
    fair queue's heavy lane since they are a sweep, then kept in memory); None if the visitor stopped them."""
    curves = lab.cached_curves(dataset, shuffles=pick.shuffles, mode=pick.mode)
    if curves is not None:
        return curves
    return run_fairly(lambda job: lab.baseline_curves(store, dataset, shuffles=pick.shuffles, mode=pick.mode,
                                                      progress=job.report),
                      label="the baselines' curves (replayed once, then cached)", stop="lab_baselines")


def builtin_results(view: View, spec: ControllerSpec) -> None:
    """A built-in or preset: from the result cache, else replayed (compiled kernel) through the fair
    queue's fast lane (a slider move never waits behind sandboxed runs); the knob table from its schedule."""
    pick = view.pick
    result = lab.cached_result(view.store, view.dataset, spec, pick.shuffles, pick.mode) or run_fairly(
        lambda job: evaluate(view.dataset, spec, shuffles=pick.shuffles, mode=pick.mode, store=view.store,
                             progress=job.report),
        label=f"replaying {spec.name} at {lab.point_label(spec.config)}", lane=FAST, stop="lab_replay")
    if result is None:  # stopped while waiting or replaying
        return
    draw(view, spec, result, knobs=lab.knob_table(spec))
    schedule = st.expander(f"How beta sets the knobs of {spec.name}", key="lab_schedule", on_change="rerun")
    if schedule.open:  # drawn only when open: twelve small panels cost more than the replay itself
        schedule.plotly_chart(schedule_curve(BUILTINS[spec.name], BETAS, current=spec.config.get("beta")),
                              width="stretch")


def user_results(view: View, spec: ControllerSpec) -> None:
    """User code: sandboxed, a first estimate then the full count, with Stop; failures point at the line."""
    pick = view.pick
    request = result_key(view.dataset, spec, pick.shuffles, pick.mode)  # names this evaluation
    failed = st.session_state.setdefault("lab_failed", {})
    stopped = st.session_state.setdefault("lab_stopped", {})
    if request in failed:
        show_failure(failed[request][0], pick.source or "", spec.filename)
        return
    if request in stopped:
        st.info("Stopped. Run the code again (the editor's Run button) or move a slider to evaluate another setting.")
        partial = lab.cached_result(view.store, view.dataset, spec, lab.FIRST_ESTIMATE_SHUFFLES, pick.mode)
        if partial is not None:
            draw(view, spec, partial)
        return
    stop = st.empty()
    stop.button("Stop", icon=":material/stop_circle:", key="lab_stop", on_click=_mark,
                args=(stopped, request, pick.source))
    area = st.empty()

    def produce(job: Job) -> object:
        return lab.progressive(view.dataset, spec, shuffles=pick.shuffles, mode=pick.mode, store=view.store,
                               limits=replace(LIMITS, workers=job.workers), cancel=job.cancel, progress=job.report)

    try:
        stream_fairly(produce, label="first estimate ...", show=lambda r: _draw_in(area, view, spec, r),
                      workers=LIMITS.workers, stop=None)
    except ControllerError as exc:
        stop.empty()
        _mark(failed, request, pick.source, str(exc))
        show_failure(str(exc), pick.source or "", spec.filename)
        return
    stop.empty()
    sweep_button(view, spec)


def _mark(marks: dict, request: str, code: str | None, message: str = "") -> None:
    marks[request] = (message, code)


def _draw_in(area, view: View, spec: ControllerSpec, result: EvalResult) -> None:
    """Each stage redraws the same elements in place (same structure, so nothing stale is left)."""
    with area.container():
        draw(view, spec, result)


def sweep_button(view: View, spec: ControllerSpec) -> None:
    """Trace this code's scaling curve over a few betas (sandboxed, cached point by point)."""
    betas = ", ".join(f"{b:g}" for b in lab.SWEEP_BETAS)
    if not st.button(f"Draw its curve (beta = {betas})", key="lab_sweep"):
        return
    pick = view.pick
    specs = lab.own_sweep(spec)

    def produce(job: Job) -> object:
        return lab.each_point(view.dataset, specs, shuffles=pick.shuffles, mode=pick.mode, store=view.store,
                              limits=replace(LIMITS, workers=job.workers), cancel=job.cancel, progress=job.report)

    try:
        stream_fairly(produce, label="sweeping beta ...", workers=LIMITS.workers, stop="lab_sweep")
    except ControllerError as exc:
        st.error(str(exc).splitlines()[0])
        return
    st.rerun()  # redraw the curve with the points now cached


def draw(view: View, spec: ControllerSpec, result: EvalResult, knobs: list[tuple[str, str]] | None = None) -> None:
    """Metrics, the curve over the baselines, the knob table and the per-question table of one result."""
    lo, hi = result.ci95
    if result.shuffles < view.pick.shuffles:
        st.caption(f"First estimate from {result.shuffles} shuffles; refining to {view.pick.shuffles} ...")
    else:
        st.caption(f"{result.shuffles} shuffles" + (" (from the result cache)" if result.cached else ""))
    cells = st.columns(5)
    cells[0].metric("accuracy", f"{result.accuracy:.2f}%")
    cells[1].metric("95% CI (%)", f"{lo:.1f}-{hi:.1f}")
    cells[2].metric("avg total tokens", f"{result.avg_total_tokens:,.0f}")
    cells[3].metric("avg sequential tokens", f"{result.avg_sequential_tokens:,.0f}")
    cells[4].metric("shuffles", f"{result.shuffles}", help="from cache" if result.cached else "replayed now")
    side, chart = st.columns([1, 3])
    with side:
        if knobs is not None:
            st.markdown(f"**{spec.name} knobs at {lab.point_label(spec.config)}**")
            st.dataframe(pd.DataFrame(knobs, columns=["knob", "value"]), hide_index=True, width="stretch",
                         height=ROW_PX * (len(knobs) + 1) + 3)
        else:
            st.markdown(f"**config passed to your code**: `{dict(spec.config)}`")
    chart.plotly_chart(curve_figure(view, spec, result), width="stretch")
    question_table(view, result)


def curve_figure(view: View, spec: ControllerSpec, result: EvalResult):
    """The scaling curve: this result over the baselines (at the chosen shuffles, also under a first
    estimate), and its own sweep where known."""
    pick = view.pick
    highlight = spec.name if spec.is_builtin else None
    own = [] if spec.is_builtin else lab.cached_points(view.store, view.dataset, lab.own_sweep(spec),
                                                       pick.shuffles, pick.mode)
    return lab_plots.scaling_curves(view.baselines, result, own, name=pick.label, axis=view.axis,
                                    highlight=highlight)


def question_table(view: View, result: EvalResult) -> None:
    """Accuracy, tokens and gold per question; each row opens that episode in the viewer."""
    rows = lab.question_rows(view.dataset, result, controller=view.pick.link_controller, seed=view.seed)
    frame = pd.DataFrame([asdict(r) for r in rows])
    if view.pick.link_controller is None:
        frame = frame.drop(columns="episode")
    st.dataframe(frame, hide_index=True, width="stretch", height=TABLE_PX, column_config={
        "question": st.column_config.NumberColumn("question", help="index, as in `python -m engine trace`"),
        "accuracy": st.column_config.ProgressColumn("accuracy %", min_value=0, max_value=100, format="%.1f"),
        "avg_tokens": st.column_config.NumberColumn("avg tokens", format="%d"),
        "text": st.column_config.TextColumn("question text"),
        "episode": st.column_config.LinkColumn("episode", display_text="open episode"),
    })


def show_failure(message: str, source: str, filename: str) -> None:
    """The sandbox's message, its line, and the code around that line."""
    line = lab.error_line(message, filename)
    headline = message.splitlines()[0].rstrip(":")
    st.error(f"{headline}" + (f" — line {line} of your code" if line else ""), icon=":material/error:")
    if line is not None:
        st.code(lab.excerpt(source, line), language=None)
    if "\n" in message:
        with st.expander("full message"):
            st.code(message, language=None)
    st.caption("Fix the code and press Run; the rest of the app is unaffected.")


# -- saving and versions ---------------------------------------------------------------------------
def save_form(store: Store, pick: Pick) -> None:
    """Save the code last run: a new version when it was edited from a saved one."""
    with st.expander("Save this controller" + (" (as a new version)" if pick.edited else "")), \
            st.form("lab_save", border=False):
        default = "" if pick.saved_id is None else saved.get_controller(store, pick.saved_id).name
        name = st.text_input("name", value=default, max_chars=80, key="lab_save_name")
        note = st.text_input("note", max_chars=300, help="what changed, or why", key="lab_save_note")
        if not st.form_submit_button("Save the code last run", icon=":material/save:"):
            return
        try:
            found = saved.save_controller(store, pick.source or "", lab.class_name(pick.source or ""), name,
                                          note=note, parent=pick.saved_id if pick.edited else None)
        except ValueError as exc:
            st.error(str(exc))
            return
    st.session_state["lab_pending_controller"] = f"{saved.PREFIX}{found.id}"
    st.rerun()


def versions_section(versions: list[saved.Version]) -> None:
    """Every saved controller by family and version; the diff between any two."""
    if not versions:
        return
    with st.expander(f"Saved controllers ({len(versions)}): versions and diff"):
        st.dataframe(pd.DataFrame([{
            "controller": f"{saved.PREFIX}{v.controller.id}", "name": v.controller.name, "version": v.number,
            "family": v.family[:8], "parent": (v.controller.parent or "")[:8], "note": v.controller.note,
            "saved": v.controller.created_at} for v in versions]), hide_index=True, width="stretch")
        if len(versions) < 2:
            return
        labels = {v.label: v.controller for v in versions}
        names = list(labels)
        left, right = st.columns(2)
        old = left.selectbox("old", names, index=0, key="lab_diff_old")
        new = right.selectbox("new", names, index=1, key="lab_diff_new")
        text = saved.diff(labels[old], labels[new])
        st.code(text or "same code", language="diff")


main()
