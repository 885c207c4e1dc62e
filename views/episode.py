"""Episode viewer (`/episode`): one controller solving one question, replayed action by action.

Thin: widgets -> ``engine.timeline.run_episode`` (built-ins in process, saved code sandboxed) ->
``engine.plots.episode``. Dataset, question, seed, controller, beta or budget, mode and the step
live in the URL, so a teacher's link opens on the same action.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from engine import explore, saved
from engine.controllers import BUDGET_KNOB, BUDGETS, BUILTINS, PRESETS
from engine.dataset import Dataset
from engine.evaluate import ControllerSpec
from engine.plots import episode as plots
from engine.replay import MODES
from engine.store import Store
from engine.timeline import MAX_SEED, EpisodeRun, run_episode
from ui.context import USER_ERRORS, current_store, dataset_names
from ui.links import copy_link_button
from ui.query import warn_unknown

DEFAULT_CONTROLLER = "cmc"
LAST_RUN = "episode_last_run"


def main() -> None:
    st.title("Episode viewer")
    st.caption("One controller, one question, one shuffle: every open, advance and read, the answers it saw, "
               "the running vote and the tokens it spent. Move the step slider to replay it.")
    try:
        store = current_store()
        names = dataset_names(store)
        if not names:
            return
        dataset, qi, seed, spec, mode, trusted = inputs(store, names)
        run = cached_run(dataset, spec, qi, seed, mode, trusted)
        show(run, dataset)
    except USER_ERRORS as exc:
        st.error(f"{type(exc).__name__}: {exc}")
    copy_link_button()


def inputs(store: Store, names: list[str]) -> tuple[Dataset, int, int, ControllerSpec, str, bool]:
    a, b, c = st.columns(3)
    warn_unknown("dataset", names, "dataset")
    dataset = store.load_dataset(a.selectbox("dataset", names, key="dataset", bind="query-params"))
    n = dataset.n_questions
    qi = int(b.number_input("question (0-based)", 0, n - 1, 0, key="question", bind="query-params"))
    seed = int(c.number_input("shuffle seed", 0, MAX_SEED, 0, key="seed", bind="query-params"))
    stored = {f"{saved.PREFIX}{s.id}": s for s in saved.list_controllers(store)}
    options = sorted(BUILTINS) + sorted(PRESETS) + list(stored)
    warn_unknown("controller", options, "controller", " (a deleted saved controller?)")
    # No format_func: a bound selectbox writes the option's text to the URL, which must stay the id.
    name = a.selectbox("controller", options, key="controller", bind="query-params",
                       index=options.index(DEFAULT_CONTROLLER))
    if name in stored:
        a.caption(f"saved controller **{stored[name].name}** (runs sandboxed)")
    warn_unknown("mode", MODES, "mode")
    mode = c.selectbox("mode", MODES, key="mode", bind="query-params")
    knob = BUDGET_KNOB.get(name)
    if name in PRESETS:
        b.caption(f"preset {name}: {PRESETS[name][1]}")
        return dataset, qi, seed, ControllerSpec.builtin(name), mode, True
    if knob is not None:
        budget = b.selectbox(f"budget ({knob})", BUDGETS, index=len(BUDGETS) - 1, key="budget", bind="query-params")
        return dataset, qi, seed, ControllerSpec.builtin(name, {knob: budget}), mode, True
    beta = b.slider("beta", 0.0, 1.0, 0.5, step=0.05, key="beta", bind="query-params")
    if name in stored:
        code = stored[name]
        return dataset, qi, seed, ControllerSpec.from_source(code.source, code.class_name, {"beta": beta},
                                                             f"{code.name}.py"), mode, False
    return dataset, qi, seed, ControllerSpec.builtin(name, {"beta": beta}), mode, True


def cached_run(dataset: Dataset, spec: ControllerSpec, qi: int, seed: int, mode: str, trusted: bool) -> EpisodeRun:
    """The episode, replayed once per input change (moving the step slider reuses it)."""
    key = repr((dataset.name, dataset.content_hash, spec.code_hash(), sorted(spec.config.items()), qi, seed, mode))
    last = st.session_state.get(LAST_RUN)
    if last is not None and last[0] == key:
        return last[1]
    with st.spinner("replaying the episode ..." if trusted else "replaying the episode in the sandbox ..."):
        run = run_episode(dataset, spec, qi, seed, mode=mode, trusted=trusted)
    st.session_state[LAST_RUN] = (key, run)
    return run


def show(run: EpisodeRun, dataset: Dataset) -> None:
    cells = st.columns(5)
    cells[0].metric("final answer", str(run.answer))
    cells[1].metric("gold answer", run.gold)
    cells[2].metric("verdict", "correct" if run.correct else "wrong")
    cells[3].metric("total tokens", f"{run.total_tokens:,}")
    cells[4].metric("actions", len(run.steps))
    if not run.steps:
        st.info("The controller took no action on this question.")
        return
    n = len(run.steps)
    if st.session_state.get("step", 1) > n:
        del st.session_state["step"]  # a longer episode's step: start this one at its end
    back, slider, forward = st.columns([1, 10, 1], vertical_alignment="bottom")
    step = slider.slider("step (replay the episode action by action)", 1, n, n, key="step", bind="query-params")
    back.button("◀", help="one action back", on_click=_move_step, args=(-1, n), disabled=step <= 1)
    forward.button("▶", help="one action forward", on_click=_move_step, args=(1, n), disabled=step >= n)
    clusters = explore.clusters_of(dataset.questions[run.question])
    st.plotly_chart(plots.timeline(run, clusters, step - 1), width="stretch")
    st.plotly_chart(plots.vote_and_cost(run, run.gold, step - 1), width="stretch")
    st.dataframe(steps_frame(run, step), hide_index=True, width="stretch")


def _move_step(delta: int, n: int) -> None:
    """The ◀ / ▶ buttons: one action back or forward (a teacher's click-through)."""
    st.session_state["step"] = min(n, max(1, st.session_state.get("step", n) + delta))


def steps_frame(run: EpisodeRun, upto: int) -> pd.DataFrame:
    """The first ``upto`` actions as a table (what the figures show, in words)."""
    rows: list[dict[str, Any]] = [{
        "action": s.index + 1, "kind": s.kind, "branch": f"#{s.position} (b{s.branch})", "interval": s.interval + 1,
        "answer": s.answer, "branch ends": s.finished, "tokens": s.tokens, "total tokens": s.total_tokens,
        "vote (latest answers)": s.vote, "vote (ended branches)": s.finished_vote,
    } for s in run.steps[:upto]]
    return pd.DataFrame(rows)


main()
