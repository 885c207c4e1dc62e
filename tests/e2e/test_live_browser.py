"""The /live page in a real browser (the `streamlit run app.py` server and Chromium of test_home_browser)."""

from pathlib import Path

import pytest
from test_home_browser import IDLE, PAGE_MS, SCREENSHOTS, chromium, data_file, server  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]
DEAD_SERVER = "http://127.0.0.1:9/v1"


def test_live_page_reads_the_url_and_reports_an_unreachable_server(server: str, tmp_path: Path) -> None:  # noqa: F811
    """Model and server come from the link; collecting from an uploaded questions file against a server
    that is not there shows one error line naming it, and the page keeps serving."""
    from playwright.sync_api import expect

    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"question": "What is 2 + 3?", "answer": "5"}\n')
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        page.set_default_timeout(PAGE_MS)
        page.goto(f"{server}/live?model=scripted&server={DEAD_SERVER}")
        page.wait_for_selector(IDLE)
        expect(page.get_by_role("heading", name="Live generation")).to_be_visible()
        expect(page.get_by_label("Model")).to_have_value("scripted")
        expect(page.get_by_label("Server (OpenAI-compatible)")).to_have_value(DEAD_SERVER)
        page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(questions))
        page.get_by_label("New dataset name").fill("mine/tiny")
        page.get_by_role("button", name="Collect").click()
        page.wait_for_selector(IDLE)
        error = page.get_by_test_id("stAlertContentError")
        expect(error).to_contain_text(f"cannot reach the OpenAI-compatible server at {DEAD_SERVER}")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "live_unreachable.png", full_page=True)
        page.get_by_role("tab", name="Run a controller live").click()
        expect(page.get_by_text("No datasets yet")).to_be_visible()

