"""/discovery: start, follow and stop discovery sessions; read their lineage, curves and spend.

Thin: widgets -> ``engine.discovery`` -> figures from ``engine.plots.discovery``. Sessions run in a
background process (``engine.discovery.worker``); this page only reads the store, so reloading it
or restarting the server never stops a session. Link keys: ``session``, ``round``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.controllers import BETAS
from engine.discovery import OFFLINE, SessionConfig, lineage, ranked, sessions, worker
from engine.discovery.config import OBJECTIVES
from engine.plots import discovery as figures
from engine.store import Store
from ui.context import USER_ERRORS, current_store
from ui.links import copy_link_button
from ui.query import warn_unknown

REFRESH_SECONDS = 2.0
CRITIC_LABELS = {True: "on", False: "off", None: "-"}  # None: offline, no critic step


def main() -> None:
    st.title("Discovery")
    st.caption("A proposer writes controllers, replay judges them on the search datasets, the history teaches "
               "the next round. Held-out datasets are only ever displayed.")
    try:
        store = current_store()
        names = [s.name for s in sessions.list_sessions(store)]
        with st.expander("New session", expanded=not names):
            new_session_form(store)
        if not names:
            st.info("No sessions yet: start one above (the offline proposer needs no model and no key).")
            return
        warn_unknown("session", names, "discovery session")
        name = st.selectbox("Session", names, key="session", bind="query-params")
        copy_link_button()
        live_status(store, name)
        show_session(store, name, names)
    except USER_ERRORS as exc:
        st.error(str(exc))


def new_session_form(store: Store) -> None:
    datasets = [d.name for d in store.list_datasets()]
    with st.form("new_session"):
        c1, c2 = st.columns(2)
        proposer = c1.text_input("Proposer (litellm model string, or 'offline')", OFFLINE, key="new_proposer")
        api_base = c2.text_input("API base (optional, e.g. http://127.0.0.1:8080/v1)", key="new_api_base")
        api_key = c2.text_input("API key (this session only; never stored)", type="password")
        name = c1.text_input("Session name", f"session-{len(sessions.list_sessions(store)) + 1}", key="new_name")
        search = st.multiselect("Search datasets", datasets, default=[d for d in datasets if d.endswith("/aime24")][:1],
                                key="new_search")
        heldout = st.multiselect("Held-out datasets (display only)", [d for d in datasets if d not in search],
                                 key="new_heldout")
        c1, c2, c3, c4 = st.columns(4)
        screen = c1.number_input("Screen shuffles (0 = no screening)", 0, 1000, SessionConfig.screen_shuffles,
                                 key="new_screen", help="LLM candidates are first evaluated at this many shuffles; "
                                 "only those within the margin of the best's screen score get the full evaluation")
        margin = c2.number_input("Screen margin (score points)", 0.0, 100.0, SessionConfig.screen_margin,
                                 key="new_margin")
        rounds = c1.number_input("Rounds", 1, 1000, 5, key="new_rounds")
        budget_usd = c2.number_input("Budget $ (0 = none)", 0.0, 10_000.0, 0.0)
        budget_minutes = c3.number_input("Wall clock, minutes (0 = none)", 0.0, 10_000.0, 0.0)
        shuffles = c4.number_input("Shuffles", 1, 1000, 20, key="new_shuffles")
        objective = c1.selectbox("Objective", OBJECTIVES)
        gamma = c2.number_input("gamma (points per 1000 tokens)", 0.0, 10.0, 0.01, format="%.3f")
        retries = c3.number_input("Retries", 0, 10, 2)
        critic = c4.checkbox("Critic step", value=True)
        if st.form_submit_button("Start", type="primary"):
            config = SessionConfig(
                name=name.strip(), proposer=proposer.strip(), api_base=api_base.strip() or None, search=tuple(search),
                heldout=tuple(heldout), seeds=("cmc",), betas=BETAS, shuffles=int(shuffles), objective=objective,
                gamma=float(gamma), rounds=int(rounds), budget_usd=budget_usd or None,
                budget_seconds=budget_minutes * 60 or None, retries=int(retries), critic=critic,
                screen_shuffles=int(screen) or None, screen_margin=float(margin))
            sessions.create_session(store, config)
            worker.spawn(store, config.name, api_key or None)
            st.query_params["session"] = config.name
            st.rerun()


@st.fragment(run_every=REFRESH_SECONDS)
def live_status(store: Store, name: str) -> None:
    """Round, step, spend and time, refreshed every few seconds; stop or resume buttons."""
    s = sessions.get_session(store, name)
    status = worker.state(s)
    c = st.columns(5)
    c[0].metric("Status", status)
    c[1].metric("Round", f"{s.round}/{s.config.rounds}")
    c[2].metric("Step", s.step)
    c[3].metric("Spend", f"${s.spent_usd:.4f}" + (f" / ${s.config.budget_usd:g}" if s.config.budget_usd else ""))
    c[4].metric("Time", f"{s.elapsed_seconds:.0f} s")
    if s.message:
        st.caption(s.message)
    if status in (worker.RUNNING, worker.STARTING):
        if st.button("Stop", icon=":material/stop:", disabled=s.stop_requested):
            sessions.request_stop(store, name)
            st.rerun(scope="fragment")
        if s.stop_requested:
            st.caption("stopping at the next step boundary")
        return
    key = "" if s.config.offline else st.text_input("API key to resume (never stored)", type="password",
                                                   key=f"resume_key_{name}")
    more = st.number_input("Rounds in all", s.config.rounds, 1000, max(s.config.rounds, s.round + 1),
                           key=f"more_{name}")
    if st.button("Resume", icon=":material/play_arrow:"):
        if more != s.config.rounds:
            sessions.update_session(store, name, config=s.config.extended(rounds=int(more)))
        worker.spawn(store, name, key or None)
        st.rerun(scope="fragment")


def show_session(store: Store, name: str, names: list[str]) -> None:
    session = sessions.get_session(store, name)
    records = sessions.list_rounds(store, name)
    progress, search, heldout, lineage_tab, compare = st.tabs(
        ["Progress", "Curves (search)", "Held-out (display only)", "Lineage", "Compare sessions"])
    with progress:
        st.plotly_chart(figures.progress(records, session.config.objective), width="stretch")
        st.dataframe(rounds_table(records, lineage.statuses(store, name)), hide_index=True, width="stretch")
        if session.config.screens:
            st.caption(f"Screening: each proposed candidate is first evaluated at {session.config.screen_shuffles} "
                       f"shuffles and gets the full {session.config.shuffles}-shuffle evaluation only if its score "
                       f"is within {session.config.screen_margin:g} of the best's at the same count; screened-out "
                       "rounds have no score (their screen figures are in the lineage).")
    labels = [f"r{r.round}" if r.round else f"seed {session.config.seeds[r.attempt]}" for r in ranked(records)]
    with search:
        chosen = st.multiselect("Candidates", labels, default=labels[:3], key=f"cands_{name}")
        points = [p for p in lineage.curves(store, name) if p.label in chosen]
        base = lineage.baselines(store, list(session.config.search), session.config.betas, session.config.shuffles)
        st.plotly_chart(figures.scaling_curves(points, base, title="Search datasets"), width="stretch")
    with heldout:
        st.warning(figures.HELDOUT_BANNER, icon=":material/visibility_off:")
        held = [p for p in lineage.heldout_curves(store, name) if p.label in chosen]
        if held:
            base = lineage.baselines(store, list(session.config.heldout), session.config.betas,
                                     session.config.shuffles)
            st.plotly_chart(figures.scaling_curves(held, base, heldout=True, title="Held-out datasets"),
                            width="stretch")
        else:
            st.info("No held-out datasets in this session, or none of the chosen candidates was evaluated on them.")
    with lineage_tab:
        show_lineage(store, name, records)
    with compare:
        others = st.multiselect("Sessions", names, default=[name], key="compare")
        st.plotly_chart(figures.compare_sessions({n: lineage.best_curve(store, n) for n in others}), width="stretch")
        st.dataframe(stats_table([lineage.stats(store, n) for n in others]), hide_index=True, width="stretch")
        st.caption("Scores compare only between sessions with the same objective, search datasets, betas and "
                   "shuffles; the critic column shows whether each session reviewed its candidates.")


def stats_table(rows: list[lineage.Stats]) -> pd.DataFrame:
    return pd.DataFrame([{
        "session": s.name, "proposer": s.proposer, "critic": CRITIC_LABELS[s.critic], "objective": s.objective,
        "rounds": s.rounds, "valid rounds": s.valid_rounds, "screened out": s.screened_out,
        "valid answers %": None if s.valid_rate is None else round(100 * s.valid_rate, 1), "retries": s.retries,
        "critic revisions": s.critic_revisions, "best score": s.best_score, "best new score": s.best_new_score,
        "best acc %": s.best_accuracy,
        "best ktokens": None if s.best_tokens is None else s.best_tokens / 1000, "$": s.spent_usd,
        "seconds": round(s.seconds, 1)} for s in rows])


def rounds_table(records: list, statuses: dict[tuple[int, int], str]) -> pd.DataFrame:
    return pd.DataFrame([{"round": r.round, "candidate": r.attempt, "status": statuses.get((r.round, r.attempt)),
                          "parent": r.parent, "saw": r.seen, "idea": r.summary, "score": r.score,
                          "accuracy %": r.accuracy,
                          "ktokens": None if r.tokens is None else r.tokens / 1000, "prompt tokens": r.prompt_tokens,
                          "$": r.usd, "seconds": round(r.seconds, 1)} for r in records])


def show_lineage(store: Store, name: str, records: list) -> None:
    rounds = sorted({r.round for r in records})
    if not rounds:
        st.info("No finished round yet.")
        return
    warn_unknown("round", rounds, "round")
    rnd = st.selectbox("Round", rounds, index=len(rounds) - 1, key="round", bind="query-params")
    node = next(n for n in lineage.nodes(store, name) if n.round == rnd)
    st.markdown(f"**Round {rnd}** — {node.summary}  \nparent: round {node.parent}; the prompt showed rounds "
                f"{node.seen or 'none'}")
    if node.parent is not None and node.code:
        st.code(lineage.diff(lineage.code_of(store, name, node.parent), node.code, f"round {node.parent}",
                             f"round {rnd}") or "(no change)", language="diff")
    status = lineage.statuses(store, name).get((node.round, node.attempt))
    screen = lineage.screen_points(store, name, rnd, node.attempt)
    if screen:
        config = sessions.get_session(store, name).config
        st.caption(f"{status}: screen figures at {config.screen_shuffles} shuffles (compared only with the best's "
                   f"at the same count, never with the {config.shuffles}-shuffle figures)")
        st.dataframe(pd.DataFrame([{"dataset": p.dataset, "beta": p.beta, "accuracy %": p.accuracy,
                                    "ktokens": p.tokens / 1000} for p in screen]), hide_index=True)
    with st.expander("Code"):
        st.code(node.code or "(no valid candidate)", language="python")
    for cand in (c for c in sessions.list_candidates(store, name) if c.round == rnd):
        if cand.error:
            st.error(f"attempt {cand.attempt} ({cand.origin}): {cand.error}")
    for call in (c for c in sessions.list_calls(store, name) if c.round == rnd and c.prompt):
        with st.expander(f"{call.purpose} request {call.attempt}: {call.prompt_tokens} prompt tokens, "
                         f"${call.usd or 0:.4f}"):
            st.text(call.prompt)
            st.markdown("**Reply**")
            st.text(call.response or call.error or "(no answer stored)")
    if node.code and st.button("Promote to saved controllers", icon=":material/bookmark_add:"):
        saved = lineage.promote(store, name, rnd)
        st.success(f"saved as {saved.name} (saved:{saved.id})")


main()
