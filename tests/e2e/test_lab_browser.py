"""The controller lab in a real browser: a `streamlit run app.py` server driven by headless Chromium.

Reuses the home page's server and browser helpers (one real AutoTTS file, a temp store).
"""
# ruff: noqa: F811 - the fixtures imported from test_home_browser are requested by name as arguments

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from test_home_browser import (  # noqa: F401 - data_file and server are fixtures
    DATASET,
    IDLE,
    PAGE_MS,
    SCREENSHOTS,
    chromium,
    data_file,
    fresh,
    metric,
    server,
)

from engine.evaluate import ControllerSpec, evaluate
from engine.formats.autotts import load_autotts_file
from engine.lab import TEMPLATE

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]  # one server, one worker

SHUFFLES = 10
TYPED = '''from collections import Counter


class FirstFour(LLMDesignedMethod):
    def solve(self, question):
        answers = [question.get_new_branch_final_answer() for _ in range(4)]
        return Counter(answers).most_common(1)[0][0]
'''
LOOP = "class Loop(LLMDesignedMethod):\n    def solve(self, question):\n        while True:\n            pass\n"


@pytest.fixture(scope="module")
def browser(server: str):
    """One Chromium for the module; each test opens its own contexts (separate sessions)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=PAGE_MS)  # a shared 2-core machine: replays may take seconds, not ms
    with chromium() as browser:
        yield browser


@contextmanager
def session(browser, url: str) -> Iterator:
    """A fresh browser context (its own Streamlit session) showing ``url`` once its script is idle."""
    context = browser.new_context(viewport={"width": 1400, "height": 2600})
    try:
        tab = context.new_page()
        tab.set_default_timeout(PAGE_MS)
        tab.goto(url)
        tab.wait_for_selector(IDLE)
        yield tab
    finally:
        context.close()


def shot(tab, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.wait_for_selector(IDLE)
    tab.wait_for_timeout(500)  # plotly draws after the script is idle: the screenshot is for a human
    path = SCREENSHOTS / f"{name}.png"
    tab.screenshot(path=path, full_page=True)
    return path


def run_in_editor(tab, code: str) -> None:
    """Replace the editor's text (inside the component's iframe) and press its Run button."""
    frame = tab.frame_locator("iframe").first
    frame.locator(".ace_content").click()
    tab.keyboard.press("Control+A")
    tab.keyboard.insert_text(code)  # like a paste: no auto-indent or auto-closing brackets
    frame.get_by_role("button", name="Run").click()


def expected(spec: ControllerSpec, data_file: Path, shuffles: int = SHUFFLES) -> str:
    result = evaluate(load_autotts_file(data_file, DATASET), spec, shuffles=shuffles)
    return f"{result.accuracy:.2f}%"


def test_a_deep_link_on_a_fresh_server_gets_the_app_navigation(browser, server):
    """The first visitor of a just-started server arrives by a share link: the app's own navigation shows."""
    with session(browser, f"{server}/lab?controller=sc") as tab:
        nav = tab.get_by_test_id("stSidebarNav")
        assert "Controller lab" in nav.inner_text(timeout=10_000)


@pytest.fixture(scope="module")
def lab(browser, server) -> str:
    """The lab's URL, once a visit to / has run app.py's st.navigation in this server process."""
    with session(browser, server) as tab:
        tab.get_by_test_id("stMetric").first.wait_for()
    return f"{server}/lab"


def test_moving_beta_updates_the_metric_and_the_url(browser, lab, data_file):
    """CMC at beta 0.5; four steps right on the slider show CMC's accuracy at 0.7 and put beta=0.7 in the URL."""
    from playwright.sync_api import expect

    with session(browser, f"{lab}?shuffles={SHUFFLES}") as tab:
        accuracy = metric(tab, "accuracy")
        expect(accuracy).to_have_text(expected(ControllerSpec.builtin("cmc", {"beta": 0.5}), data_file))
        shot(tab, "lab_cmc")
        thumb = tab.get_by_test_id("stSlider").filter(has_text="beta").get_by_role("slider")
        thumb.focus()
        for _ in range(4):
            tab.keyboard.press("ArrowRight")
        expect(accuracy).to_have_text(expected(ControllerSpec.builtin("cmc", {"beta": 0.7}), data_file))
        expect(tab).to_have_url(re.compile(r"[?&]beta=0\.7(&|$)"))  # the URL follows the run that drew it
        assert parse_qs(urlsplit(tab.url).query)["beta"] == ["0.7"]
        shot(tab, "lab_cmc_beta07")


def test_a_controller_typed_into_the_editor_runs_sandboxed(browser, lab, data_file):
    """New code typed into the editor and Run: the page shows the engine's figures for that code."""
    from playwright.sync_api import expect

    with session(browser, f"{lab}?controller=new&shuffles={SHUFFLES}") as tab:
        # The template runs first; type once its figures are drawn (on a loaded machine a Run pressed while
        # the template's sandboxed run is starting was once not seen within two minutes).
        expect(metric(tab, "accuracy")).to_have_text(expected(ControllerSpec.from_source(TEMPLATE), data_file))
        run_in_editor(tab, TYPED)
        want = expected(ControllerSpec.from_source(TYPED), data_file)
        expect(metric(tab, "accuracy")).to_have_text(want)
        expect(fresh(tab).get_by_text("your code against the baselines")).to_be_visible()
        shot(tab, "lab_typed_controller")


def test_an_infinite_loop_fails_clearly_while_another_session_keeps_working(browser, lab, data_file):
    """A looping controller ends with the episode-time error at its line; meanwhile a second browser
    session evaluates, moves its budget and gets its numbers."""
    from playwright.sync_api import expect

    with session(browser, f"{lab}?controller=new&shuffles={SHUFFLES}") as looping:
        run_in_editor(looping, LOOP)
        started = time.monotonic()
        with session(browser, f"{lab}?controller=sc&budget=8&shuffles={SHUFFLES}") as other:
            expect(metric(other, "accuracy")).to_have_text(expected(ControllerSpec.builtin("sc", {"k": 8}), data_file))
            other.get_by_test_id("stSlider").filter(has_text="budget").get_by_role("slider").focus()
            other.keyboard.press("ArrowRight")
            expect(metric(other, "accuracy")).to_have_text(expected(ControllerSpec.builtin("sc", {"k": 16}), data_file))
            served = time.monotonic() - started
            error = looping.get_by_test_id("stAlertContentError")
            expect(error).to_contain_text(re.compile(r"episode time limit \(5 s\) exceeded .* line 3 of your code"))
            failed = time.monotonic() - started
            shot(looping, "lab_infinite_loop")
            shot(other, "lab_second_session")
        print(f"second session served after {served:.1f} s; loop reported after {failed:.1f} s")
        assert looping.get_by_text(">    3 |         while True:").is_visible()


def test_a_share_link_reopens_the_same_view_in_a_fresh_browser(browser, lab, data_file):
    """Pick ASC at budget 16 by hand, copy the link, open it in a new context: same inputs, same numbers."""
    from playwright.sync_api import expect

    with session(browser, f"{lab}?shuffles={SHUFFLES}") as tab:
        tab.get_by_test_id("stSelectbox").filter(has_text="controller").click()
        tab.get_by_role("option", name="asc", exact=True).click()
        tab.wait_for_selector(IDLE)
        budget = tab.get_by_test_id("stSlider").filter(has_text="budget")
        for value in (32, 16):  # one step left at a time, each rerun landing in the URL
            budget.get_by_role("slider").focus()
            tab.keyboard.press("ArrowLeft")
            expect(tab).to_have_url(re.compile(f"budget={value}"))
            tab.wait_for_selector(IDLE)
        asc16 = evaluate(load_autotts_file(data_file, DATASET), ControllerSpec.builtin("asc", {"max_samples": 16}),
                         shuffles=SHUFFLES)
        want = f"{asc16.accuracy:.2f}%"
        expect(metric(tab, "accuracy")).to_have_text(want)
        expect(metric(tab, "avg total tokens")).to_have_text(f"{asc16.avg_total_tokens:,.0f}")
        tab.get_by_role("button", name="Copy link").click()
        code = tab.get_by_test_id("stCode").filter(has_text="/lab?")
        expect(code).to_contain_text("budget=16")  # the link box is drawn after the metrics, in the same run
        link = code.inner_text().strip()
        shown = {label: metric(tab, label).inner_text() for label in ("accuracy", "95% CI (%)", "avg total tokens")}
    query = parse_qs(urlsplit(link).query)
    assert query["controller"] == ["asc"] and query["budget"] == ["16"] and query["shuffles"] == [str(SHUFFLES)]
    with session(browser, link) as fresh:
        expect(metric(fresh, "accuracy")).to_have_text(want)
        assert {label: metric(fresh, label).inner_text() for label in shown} == shown
        expect(fresh.get_by_role("combobox", name="controller")).to_have_value("asc")
        shot(fresh, "lab_share_link")


def test_stop_cancels_a_running_controller_at_once(browser, lab):
    """Stop during a looping run: the page says 'Stopped' instead of waiting for the episode limit's error.

    (That the sandbox's workers die at once on cancel is tested in tests/test_lab.py, without a browser.)"""
    from playwright.sync_api import expect

    with session(browser, f"{lab}?controller=new&shuffles={SHUFFLES}") as tab:
        run_in_editor(tab, LOOP.replace("Loop", "Spin"))
        stop = tab.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop")  # not the header's
        stop.wait_for()
        start = time.monotonic()
        stop.click()
        expect(tab.get_by_text("Stopped. Run the code again")).to_be_visible()
        stopped_after = time.monotonic() - start
        assert not tab.get_by_test_id("stAlertContentError").is_visible()
        shot(tab, "lab_stopped")
    print(f"stopped {stopped_after:.1f} s after the click")


def test_an_edited_saved_controller_saves_as_a_new_version(browser, lab, data_file):
    """Open a saved controller by its link, edit it in the editor, run it, save: a v2 whose parent is v1,
    and the page (and its URL) switch to the new version."""
    from playwright.sync_api import expect

    from engine import saved
    from engine.paths import PROJECT_ROOT
    from engine.store import Store

    store = Store(data_file.parents[2] / "ttslab.duckdb")  # the server's store (see test_home_browser.server)
    source = (PROJECT_ROOT / "examples" / "controllers" / "sc_reference_style.py").read_text()
    v1 = saved.save_controller(store, source, "SelfConsistency", "browser-sc", note="k=64")
    edited = source.replace('get("k", 64)', 'get("k", 8)')
    with session(browser, f"{lab}?controller=saved:{v1.id}&shuffles={SHUFFLES}") as tab:
        expect(metric(tab, "accuracy")).to_have_text(expected(ControllerSpec.builtin("sc", {"k": 64}), data_file))
        run_in_editor(tab, edited)
        expect(metric(tab, "accuracy")).to_have_text(expected(ControllerSpec.builtin("sc", {"k": 8}), data_file))
        tab.get_by_text("Save this controller (as a new version)").click()
        tab.get_by_role("textbox", name="note").fill("k=8 is enough")
        tab.get_by_role("button", name="Save the code last run").click()
        expect(tab).to_have_url(re.compile(f"controller=saved(%3A|:)(?!{v1.id})"))  # switched to another id
        v2 = next(v.controller for v in saved.versions(store) if v.controller.source == edited)
        assert re.search(f"controller=saved(%3A|:){v2.id}", tab.url)
        tab.get_by_text("Saved controllers (2): versions and diff").click()
        expect(tab.get_by_test_id("stCode").filter(has_text='+        for _ in range(int(self.config.get("k", 8))):')
               ).to_be_visible()
        shot(tab, "lab_saved_versions")
    assert (v2.parent, v2.name, v2.note) == (v1.id, "browser-sc", "k=8 is enough")
