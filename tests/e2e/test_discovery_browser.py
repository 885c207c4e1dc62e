"""The /discovery page in a real browser (`streamlit run app.py` + headless Chromium): a shared link opens
a finished session at a round; the held-out curves sit in their own marked tab."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.discovery import SessionConfig, start_session
from engine.plots.discovery import HELDOUT_BANNER
from engine.store import Store
from tests.discovery.conftest import HELDOUT, SEARCH, relabelled
from tests.e2e.test_home_browser import (
    IDLE,
    PAGE_MS,
    SCREENSHOTS,
    chromium,
    require_chromium,
    streamlit_app,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]


@pytest.fixture(scope="module")
def server(real_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A streamlit server on a store holding one finished offline session named 'off' (2 rounds, held-out)."""
    require_chromium()
    root = tmp_path_factory.mktemp("discovery_e2e")
    db = root / "ttslab.duckdb"
    shutil.copy(real_store_path, db)
    store = Store(db)
    store.import_dataset(relabelled(store.load_dataset("Qwen3-0.6B/aime25")))
    start_session(store, SessionConfig(name="off", proposer="offline", search=(SEARCH,), heldout=(HELDOUT,),
                                       betas=(0.0, 0.5, 1.0), shuffles=2, rounds=2))
    with streamlit_app({"TTSLAB_DB": str(db)}, root / "streamlit.log") as url:
        yield url


def test_shared_link_opens_the_session_and_heldout_is_marked_apart(server: str) -> None:
    """/discovery?session=off&round=1 shows that session done with its lineage at round 1; the held-out
    tab carries the display-only banner and its own figure."""
    from playwright.sync_api import expect

    with chromium() as browser:
        tab = browser.new_page(viewport={"width": 1400, "height": 2200})
        tab.set_default_timeout(PAGE_MS)
        tab.goto(f"{server}/discovery?session=off&round=1")
        tab.wait_for_selector(IDLE)
        status = tab.get_by_test_id("stMetric").filter(has_text="Status").get_by_test_id("stMetricValue")
        expect(status).to_have_text("done")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=SCREENSHOTS / "discovery.png", full_page=True)
        tab.get_by_role("tab", name="Held-out (display only)").click()
        expect(tab.get_by_text(HELDOUT_BANNER).first).to_be_visible()
        tab.screenshot(path=SCREENSHOTS / "discovery_heldout.png", full_page=True)
        tab.get_by_role("tab", name="Lineage").click()
        expect(tab.get_by_text("Round 1").first).to_be_visible()
        tab.screenshot(path=SCREENSHOTS / "discovery_lineage.png", full_page=True)

