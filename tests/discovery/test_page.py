"""The /discovery page through Streamlit's AppTest: a finished session's views, share-link keys,
promotion, and starting a session from the form (which runs in a background process)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from engine.discovery import SessionConfig, sessions, start_session, worker
from engine.paths import PROJECT_ROOT
from engine.plots.discovery import HELDOUT_BANNER
from engine.saved import list_controllers
from engine.store import Store
from tests.discovery.conftest import HELDOUT, SEARCH
from tests.discovery.test_screening import SCREEN_SHUFFLES, screening_config, screening_reply
from tests.servers import scripted_server

PAGE = str(PROJECT_ROOT / "views" / "discovery.py")


@pytest.fixture
def page_store(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("TTSLAB_DB", str(store_path))
    return Store(store_path)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_finished_session_shows_curves_heldout_apart_lineage_and_promotes(page_store: Store) -> None:
    """Opened from a link (session, round), the page shows the status, the search curves, the held-out
    curves under their banner, the diff from the parent, and promotes the round to the saved controllers."""
    start_session(page_store, SessionConfig(name="off", proposer="offline", search=(SEARCH,), heldout=(HELDOUT,),
                                            betas=(0.0, 1.0), shuffles=2, rounds=2))
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["session"] = "off"
    at.query_params["round"] = "2"
    run(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Status"] == "done" and metrics["Round"] == "2/2"
    assert len(at.get("plotly_chart")) == 4
    assert any(HELDOUT_BANNER in w.value for w in at.warning)
    assert any(c.language == "diff" and "@@" in c.value for c in at.code)
    compared = next(d.value for d in at.dataframe if "critic" in d.value.columns)
    assert compared.iloc[0]["session"] == "off" and compared.iloc[0]["critic"] == "-"
    assert compared.iloc[0]["objective"] == "curve" and compared.iloc[0]["valid rounds"] == 2
    next(b for b in at.button if "Promote" in b.label).click()
    run(at)
    assert any("saved as" in s.value for s in at.success)
    assert [c.origin for c in list_controllers(page_store)] == [{"session": "off", "round": 2, "attempt": 0}]


def test_a_link_to_an_unknown_session_or_round_says_so_and_shows_the_default(page_store: Store) -> None:
    """A shared link naming a deleted session or a round the session does not have gets a warning naming it,
    and the page carries on with the default session and its latest round (no error, no exception)."""
    start_session(page_store, SessionConfig(name="off", proposer="offline", search=(SEARCH,), betas=(0.0, 1.0),
                                            shuffles=2, rounds=1))
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["session"] = "gone"
    at.query_params["round"] = "99"
    run(at)
    warnings = [w.value for w in at.warning]
    assert any("discovery session 'gone'" in w for w in warnings), warnings
    assert any("round '99'" in w for w in warnings), warnings
    assert at.selectbox(key="session").value == "off" and at.selectbox(key="round").value == 1


def test_form_starts_a_background_session(page_store: Store) -> None:
    """Submitting the form creates the session and starts its own process, which runs it to the end."""
    at = run(AppTest.from_file(PAGE, default_timeout=120))
    assert at.number_input(key="new_screen").value == SessionConfig.screen_shuffles
    at.text_input(key="new_name").input("from-ui")
    at.multiselect(key="new_search").set_value([SEARCH])
    at.number_input(key="new_rounds").set_value(1)
    at.number_input(key="new_shuffles").set_value(2)
    next(b for b in at.button if b.label == "Start").click()
    run(at)
    deadline = time.monotonic() + 300
    while sessions.get_session(page_store, "from-ui").status != "done" and time.monotonic() < deadline:
        time.sleep(1)
    final = sessions.get_session(page_store, "from-ui")
    assert final.status == "done" and not worker.is_alive(final.pid, "from-ui")
    assert [r.round for r in sessions.list_rounds(page_store, "from-ui")] == [0, 1]


def test_screened_out_and_promoted_rounds_are_shown_as_such(page_store: Store) -> None:
    """A screening session against the scripted server (SCRIPTED CONTENT: round 1 promoted, round 2 screened
    out): the rounds table labels each round's status, the comparison table counts the screened-out round,
    and the lineage of the screened-out round shows its screen figures with their shuffle count."""
    with scripted_server(screening_reply) as server:
        start_session(page_store, screening_config("scr", server.base_url, rounds=2, heldout=()))
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["session"] = "scr"
    at.query_params["round"] = "2"
    run(at)
    table = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert list(table["status"]) == ["seed", "promoted", "screened out"]
    assert pd.isna(table.iloc[2]["score"]) and not pd.isna(table.iloc[1]["score"])  # no full-count score
    compared = next(d.value for d in at.dataframe if "critic" in d.value.columns)
    assert compared.iloc[0]["screened out"] == 1 and compared.iloc[0]["valid rounds"] == 2
    assert any(f"screened out: screen figures at {SCREEN_SHUFFLES} shuffles" in c.value for c in at.caption)
    screen = next(d.value for d in at.dataframe if list(d.value.columns) == ["dataset", "beta", "accuracy %",
                                                                            "ktokens"])
    assert len(screen) == 2
