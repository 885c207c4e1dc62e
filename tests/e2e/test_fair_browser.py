"""The fair queue in a real browser: place in line, Stop, and a closed tab giving its slot back.

A `streamlit run tests/e2e/loop_page.py` server with one slot (TTSLAB_SLOTS=1); every tab runs a
sandboxed controller that never returns, so a slot frees only when the queue cancels its job.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_access_browser import streamlit_server
from test_home_browser import CHROMIUM, CHROMIUM_ARGS, data_file, require_chromium

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser"), pytest.mark.timeout(300)]
__all__ = ["data_file"]  # a fixture, imported for its use here

SWITCH_MS = 20_000  # a cancelled sandbox stops within seconds; the next job then starts


@pytest.fixture(scope="module")
def server(data_file: Path) -> Iterator[str]:
    require_chromium()
    with streamlit_server("tests/e2e/loop_page.py", data_file.parents[2], "--server.address", "127.0.0.1",
                          env={"TTSLAB_SLOTS": "1"}) as (port, _):
        yield f"http://127.0.0.1:{port}"


def open_tab(browser, url: str):
    tab = browser.new_page()
    tab.set_default_timeout(60_000)
    tab.goto(url)
    return tab


def test_queue_position_stop_and_closed_tab(server):
    """Tab A runs; tab B waits as number 1 in line; Stop in A starts B; closing B starts C."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            a = open_tab(browser, server)
            a.get_by_test_id("stProgress").wait_for()
            b = open_tab(browser, server)
            b.get_by_text("you are number 1 of 1 in line (1 running)").wait_for()
            a.get_by_test_id("stButton").get_by_role("button", name="Stop").click()
            a.get_by_text("Stopped an infinite loop.").wait_for()
            b.get_by_test_id("stProgress").wait_for(timeout=SWITCH_MS)
            c = open_tab(browser, server)
            c.get_by_text("you are number 1 of 1 in line").wait_for()
            b.close()
            c.get_by_test_id("stProgress").wait_for(timeout=SWITCH_MS)
        finally:
            browser.close()
