"""/live: collect a trajectory dataset from a model, or run a controller live and see the replay-vs-live gap.

Thin: widgets -> ``engine.generation`` -> figures from ``engine.plots.live``. The server address, model and
dataset live in the URL; an API key never does (it comes from ``TTSLAB_API_KEY`` on the server side).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from engine.controllers import BUILTINS, PRESETS
from engine.evaluate import ControllerSpec, evaluate
from engine.formats.autotts import dump_autotts
from engine.generation import records
from engine.generation.backend import BACKENDS, FORMATS, BackendConfig, Sampling, make_backend, prompt_format
from engine.generation.branches import BranchEngine, GrowthSettings
from engine.generation.collect import CollectSettings, collect, read_questions
from engine.generation.live import compare, run_live
from engine.plots.live import gap_figure, live_series, overlay_traces
from engine.saved import list_controllers
from engine.store import Store
from ui.context import USER_ERRORS, current_store
from ui.links import copy_link_button


def main() -> None:
    st.title("Live generation")
    st.caption("Collect trajectories from a model (vLLM or any OpenAI-compatible server) into the store, or run a "
               "controller live to check that replay predicted its accuracy and cost.")
    copy_link_button()
    store = guarded(current_store)
    if store is None:
        return
    config = backend_form()
    collect_tab, live_tab = st.tabs(["Collect a dataset", "Run a controller live"])
    with collect_tab:
        guarded(collect_section, store, config)
    with live_tab:
        guarded(live_section, store, config)


def guarded(fn: Any, *args: Any) -> Any:
    """Run one section; an expected failure is one error line there, and the other sections still render."""
    try:
        return fn(*args)
    except USER_ERRORS as exc:
        st.error(f"{type(exc).__name__}: {exc}")
        return None


def backend_form() -> dict[str, Any]:
    """Backend, model, server and sampling, shared by both tabs."""
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([1, 2, 3, 1])
        backend = c1.selectbox("Backend", BACKENDS, key="backend", bind="query-params")
        model = c2.text_input("Model", key="model", bind="query-params", placeholder="e.g. Qwen/Qwen3-8B")
        api_base = c3.text_input("Server (OpenAI-compatible)", key="server", bind="query-params",
                                 placeholder="http://127.0.0.1:8000/v1", disabled=backend != "openai")
        concurrency = c4.number_input("Parallel requests", 1, 256, 8)
        s1, s2, s3, s4, s5, s6 = st.columns(6)
        fmt = s1.selectbox("Prompt format", sorted(FORMATS), index=sorted(FORMATS).index("qwen3-think"), key="fmt")
        max_tokens = s2.number_input("Max tokens per branch", 16, 131_072, 40_960, step=1024, key="max_tokens")
        temperature = s3.number_input("Temperature", 0.0, 2.0, 0.7, step=0.05)
        top_p = s4.number_input("Top-p", 0.0, 1.0, 0.95, step=0.05)
        top_k = s5.number_input("Top-k", -1, 1000, 20)
        seed = s6.number_input("Seed", 0, 2**31 - 1, 0)
    return {"backend": backend, "model": model.strip(), "api_base": api_base.strip() or None,
            "concurrency": int(concurrency), "format": fmt, "max_tokens": int(max_tokens),
            "sampling": Sampling(float(temperature), float(top_p), int(top_k), int(seed))}


def _backend(config: dict[str, Any]) -> Any:
    if not config["model"]:
        raise ValueError("enter a model name first")
    return make_backend(BackendConfig(config["backend"], config["model"], config["api_base"],
                                      concurrency=config["concurrency"]))


def _growth(config: dict[str, Any], interval: int, seed_offset: int = 0) -> GrowthSettings:
    s = config["sampling"]
    sampling = Sampling(s.temperature, s.top_p, s.top_k, s.seed + seed_offset)
    return GrowthSettings(interval=interval, max_tokens=config["max_tokens"], sampling=sampling,
                          prompt_format=config["format"])


def _progress_bar(label: str) -> tuple[Any, Any]:
    bar = st.progress(0.0, text=label)
    return bar, lambda done, total, text: bar.progress(done / max(total, 1), text=f"{done}/{total} · {text}")


# -- collection -------------------------------------------------------------------------------------
def collect_section(store: Store, config: dict[str, Any]) -> None:
    runs = records.list_runs(store)
    if runs:
        st.subheader("Collections")
        st.dataframe(pd.DataFrame([{
            "dataset": r.dataset, "status": r.status, "branches": f"{r.branches_done}/{r.branches_total}",
            "model": r.backend.get("model"), "tokens": r.generated_tokens,
            "tokens/s": round(r.generated_tokens / r.generate_seconds, 1) if r.generate_seconds else None,
            "probe share %": round(100 * r.probe_seconds / r.generate_seconds, 1) if r.generate_seconds else None,
        } for r in runs]), hide_index=True)
        resume_or_export(store, config, runs)
    st.subheader("New collection")
    with st.form("collect"):
        source = st.radio("Questions", ["Upload JSONL/CSV (question, answer)", "From a stored dataset"],
                          horizontal=True, key="source")
        upload = st.file_uploader("Questions file", type=["jsonl", "json", "csv"])
        names = [i.name for i in store.list_datasets()]
        from_dataset = st.selectbox("Stored dataset", names, index=None, key="from_dataset")
        c1, c2, c3, c4 = st.columns(4)
        name = c1.text_input("New dataset name", placeholder="MyModel/aime24", key="new_name")
        branches = c2.number_input("Branches per question", 1, 1024, 128, key="branches")
        interval = c3.number_input("Probe interval Δ (tokens)", 1, 100_000, 500, key="interval")
        parallel = c4.number_input("Branches in flight", 1, 4096, 16)
        submitted = st.form_submit_button("Collect", type="primary", key="collect_submit")
    if not submitted:
        return
    if not name.strip():
        raise ValueError("give the new dataset a name")
    questions = _questions(source.startswith("Upload"), upload, from_dataset, store)
    settings = CollectSettings(int(branches), _growth(config, int(interval)), int(parallel))
    _run_collection(store, name.strip(), _backend(config), questions=questions, settings=settings)


def _questions(uploaded: bool, upload: Any, dataset: str | None, store: Store) -> list[tuple[str, str]]:
    if uploaded:
        if upload is None:
            raise ValueError("upload a JSONL or CSV file with question and answer columns")
        suffix = Path(upload.name).suffix or ".jsonl"
        with tempfile.NamedTemporaryFile(suffix=suffix) as f:
            f.write(upload.getvalue())
            f.flush()
            return read_questions(f.name)
    if not dataset:
        raise ValueError("choose a stored dataset to take the questions from")
    return read_questions(dataset, store)


def _run_collection(store: Store, name: str, backend: Any, **kwargs: Any) -> None:
    bar, progress = _progress_bar(f"Collecting {name} ...")
    report = collect(store, name, backend, progress=progress, **kwargs)
    bar.empty()
    st.success(f"{name}: {report.branches_written} branches, {report.timing.tokens:,} tokens in "
               f"{report.seconds:.1f} s ({report.tokens_per_second:,.1f} tokens/s; probes took "
               f"{100 * report.probe_share:.0f}% of generation time)"
               + ("" if report.complete else " — not complete yet"))


def resume_or_export(store: Store, config: dict[str, Any], runs: list[records.RunInfo]) -> None:
    c1, c2 = st.columns(2)
    unfinished = [r.dataset for r in runs if r.status != records.COMPLETE]
    if unfinished:
        with c1:
            chosen = st.selectbox("Unfinished collection", unfinished)
            if st.button("Resume", help="finish it with its recorded settings (the model above must match)"):
                _run_collection(store, chosen, _backend(config), resume=True)
    finished = [r.dataset for r in runs if r.status == records.COMPLETE]
    if finished:
        with c2:
            chosen = st.selectbox("Finished collection", finished)
            data = json.dumps(dump_autotts(store.load_dataset(chosen)), ensure_ascii=False)
            st.download_button("Download AutoTTS JSON", data, file_name=chosen.replace("/", "__") + ".json",
                               mime="application/json")


# -- live runs --------------------------------------------------------------------------------------
def live_section(store: Store, config: dict[str, Any]) -> None:
    names = [i.name for i in store.list_datasets()]
    if not names:
        st.info("No datasets yet: collect one first (or import AutoTTS files on the home page).")
        return
    with st.form("live"):
        c1, c2, c3 = st.columns([2, 2, 3])
        dataset_name = c1.selectbox("Dataset (replay side)", names, key="dataset", bind="query-params")
        saved = {f"saved: {c.name} ({c.id[:8]})": c for c in list_controllers(store)}
        choices = [*sorted(BUILTINS), *sorted(PRESETS), *saved]
        controller = c2.selectbox("Controller", choices, index=0, key="controller",
                                  help="saved controllers run sandboxed, driving the model from there")
        knobs = c3.text_input("Config (JSON)", "{}", help='e.g. {"beta": 0.5} or {"k": 8}', key="knobs")
        d1, d2, d3, d4 = st.columns(4)
        k = d1.number_input("Questions (first k)", 1, 10_000, 2, key="k")
        pool = d2.number_input("Branch pool per question", 1, 4096, 128, key="pool")
        shuffles = d3.number_input("Replay shuffles", 1, 1000, 100, key="shuffles")
        math = d4.checkbox("Math-aware grading", help="fractions, \\frac, spacing, leading zeros (not for parity)")
        submitted = st.form_submit_button("Run live", type="primary", key="live_submit")
    if submitted:
        spec = _spec(controller, knobs, saved)
        _live_run(store, config, dataset_name, spec, int(k), int(pool), int(shuffles), math)
    runs = records.list_live_runs(store, dataset_name)
    if runs:
        st.subheader("Live runs on this dataset")
        st.plotly_chart(_overlay_figure(runs), key="live_points")
        st.dataframe(pd.DataFrame([{**{k: r[k] for k in ("controller", "accuracy", "avg_tokens", "seconds")},
                                    "config": json.dumps(r["config"]), "questions": len(r["questions"]),
                                    "model": r["backend"].get("model"), "id": r["id"]} for r in runs]),
                     hide_index=True)


def _overlay_figure(runs: list[dict[str, Any]]) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure(overlay_traces(live_series(runs)))
    fig.update_layout(xaxis_title="average tokens per question", yaxis_title="accuracy %", height=340,
                      margin={"t": 20, "b": 30})
    return fig


def _spec(controller: str, knobs: str, saved: dict[str, Any]) -> ControllerSpec:
    try:
        options = json.loads(knobs or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"config is not JSON: {exc.msg}") from None
    if not isinstance(options, dict):
        raise ValueError("config must be a JSON object")
    if controller in saved:
        c = saved[controller]
        return ControllerSpec.from_source(c.source, c.class_name, options, filename=f"<saved {c.name}>")
    return ControllerSpec.builtin(controller, options)


def _live_run(store: Store, config: dict[str, Any], dataset_name: str, spec: ControllerSpec, k: int,
              pool: int, shuffles: int, math: bool) -> None:
    dataset = store.load_dataset(dataset_name)
    engine = BranchEngine(_backend(config), prompt_format(config["format"]),
                          _growth(config, dataset.questions[0].probe_freq, seed_offset=1))
    bar, progress = _progress_bar("Running live ...")
    run = run_live(dataset, spec, engine, questions=list(range(min(k, dataset.n_questions))), pool=pool,
                   math=math, store=store, progress=progress)
    bar.empty()
    gap = compare(evaluate(dataset, spec, shuffles=shuffles, store=store), run)
    m1, m2, m3 = st.columns(3)
    m1.metric("Live accuracy", f"{gap.live_accuracy:.1f}%", f"{gap.accuracy_gap:+.1f} pts vs replay")
    m2.metric("Live tokens / question", f"{gap.live_tokens:,.0f}", f"{100 * gap.token_gap:+.1f}% vs replay",
              delta_color="inverse")
    m3.metric("Wall clock", f"{run.seconds:.1f} s")
    st.plotly_chart(gap_figure(gap), key="gap")


main()
