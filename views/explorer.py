"""Data explorer (`/explorer`): one question of a dataset, branch by branch and probe by probe.

Thin: widgets -> ``engine.explore`` -> ``engine.plots.explorer``. Dataset, question and row order
live in the URL.
"""

from __future__ import annotations

import streamlit as st

from engine import explore
from engine.plots import explorer as plots
from engine.store import Store
from ui.context import USER_ERRORS, current_store, dataset_names
from ui.links import copy_link_button
from ui.query import initial, warn_unknown


def main() -> None:
    st.title("Data explorer")
    st.caption("What the branches of one question said at every probe: how early do they settle, and on what?")
    try:
        store = current_store()
        names = dataset_names(store)
        if not names:
            return
        show_question(store, names)
    except USER_ERRORS as exc:
        st.error(f"{type(exc).__name__}: {exc}")
    copy_link_button()


def show_question(store: Store, names: list[str]) -> None:
    left, middle, right = st.columns([2, 1, 2])
    warn_unknown("dataset", names, "dataset")
    name = left.selectbox("dataset", names, key="dataset", bind="query-params")
    dataset = store.load_dataset(name)
    n = dataset.n_questions
    raw = st.query_params.get("question")
    if raw is not None and not (raw.isdigit() and int(raw) < n):
        st.warning(f"This link names question {raw!r}, but {name} has questions 0 to {n - 1}; showing question 0.")
    qi = int(middle.number_input("question (0-based)", 0, n - 1, 0, key="question", bind="query-params"))
    warn_unknown("sort", explore.SORTS, "row order")
    sort = right.segmented_control("rows ordered by", explore.SORTS, key="sort", bind="query-params",
                                   default=initial("sort", explore.SORTS[0])) or explore.SORTS[0]
    question = dataset.questions[qi]
    finals = [b.final for b in question.branches]
    with st.container(border=True):
        st.markdown(f"**Q{qi}.** {question.text}")
    cells = st.columns(4)
    cells[0].metric("gold answer", question.gold)
    cells[1].metric("branches", len(finals))
    cells[2].metric("branches ending correct", f"{finals.count(question.gold)} / {len(finals)}")
    cells[3].metric("majority of final answers", str(explore.final_distribution(question)[0][0]))
    st.page_link("views/episode.py", label="Watch a controller solve this question",
                 icon=":material/timeline:", query_params={"dataset": name, "question": str(qi)})
    st.plotly_chart(plots.probe_heatmap(explore.probe_grid(question, sort),
                                        f"{name}, Q{qi}: probed answers, branch by branch"), width="stretch")
    st.plotly_chart(plots.convergence_curve(explore.convergence(question)), width="stretch")
    a, b = st.columns(2)
    a.plotly_chart(plots.branch_lengths([b.tokens for b in question.branches],
                                        [f == question.gold for f in finals]), width="stretch")
    b.plotly_chart(plots.final_answers(explore.final_distribution(question)), width="stretch")


main()
