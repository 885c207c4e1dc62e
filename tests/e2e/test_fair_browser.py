"""The fair queue in a real browser: place in line, Stop, and a closed tab giving its slot back.

A `streamlit run tests/e2e/fair_app.py` server with one slot (TTSLAB_SLOTS=1). Its default page runs a
sandboxed controller that never returns, so a slot frees only when the queue cancels its job; its lab
and frontier pages queue for the same slot.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_access_browser import streamlit_server
from test_home_browser import DATASET, chromium, data_file, require_chromium

from engine.evaluate import ControllerSpec, evaluate
from engine.formats.autotts import load_autotts_file
from engine.lab import point_label
from engine.store import Store

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser"), pytest.mark.timeout(300)]
__all__ = ["data_file"]  # a fixture, imported for its use here

SWITCH_MS = 20_000  # a cancelled sandbox stops within seconds; the next job then starts


@pytest.fixture(scope="module")
def server(data_file: Path) -> Iterator[str]:
    require_chromium()
    Store(data_file.parents[2] / "ttslab.duckdb").import_path(data_file.parents[1])  # the lab's and frontier's data
    with streamlit_server("tests/e2e/fair_app.py", data_file.parents[2], "--server.address", "127.0.0.1",
                          env={"TTSLAB_SLOTS": "1"}) as (port, _):
        yield f"http://127.0.0.1:{port}"


def open_tab(browser, url: str):
    tab = browser.new_page()
    tab.set_default_timeout(60_000)
    tab.goto(url)
    return tab


def test_queue_position_stop_and_closed_tab(server):
    """Tab A runs; tab B waits as number 1 in line; Stop in A starts B; closing B starts C."""
    with chromium() as browser:
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


def test_frontier_sweeps_and_lab_replays_wait_in_line_and_stop(server, data_file):
    """While a loop holds the only heavy slot, a frontier sweep and the lab's baselines each show
    their place in line and stop on Stop; once the slot is free, Resume draws the sweep and the lab
    shows the engine's figures; with the loop back in the slot, a beta slider move is replayed in the
    fast lane and drawn while the loop still runs."""
    from playwright.sync_api import expect

    with chromium() as browser:
        expect.set_options(timeout=60_000)
        loop = open_tab(browser, server)
        loop.get_by_test_id("stProgress").wait_for()
        sweep = open_tab(browser, f"{server}/frontier?datasets={DATASET}&controllers=sc,cmc&shuffles=13")
        expect(sweep.get_by_text("you are number 1 of 1 in line (1 running)")).to_be_visible()
        sweep.get_by_role("button", name="Stop the sweep").click()
        expect(sweep.get_by_text("Stopped: showing what was evaluated before the stop")).to_be_visible()
        lab = open_tab(browser, f"{server}/lab?dataset={DATASET}&shuffles=11")
        expect(lab.get_by_text("you are number 1 of 1 in line (1 running)")).to_be_visible()
        lab.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop").click()  # not the header's
        expect(lab.get_by_text("Stopped the baselines' curves")).to_be_visible()
        loop.get_by_test_id("stButton").get_by_role("button", name="Stop").click()
        expect(loop.get_by_text("Stopped an infinite loop.")).to_be_visible()
        sweep.get_by_role("button", name="Resume").click()
        expect(sweep.get_by_test_id("stPlotlyChart").first).to_be_visible()
        lab.reload()
        cmc = evaluate(load_autotts_file(data_file, DATASET), ControllerSpec.builtin("cmc", {"beta": 0.5}), shuffles=11)
        accuracy = lab.get_by_test_id("stMetric").filter(has_text="accuracy").get_by_test_id("stMetricValue")
        expect(accuracy).to_have_text(f"{cmc.accuracy:.2f}%")
        loop.reload()  # the loop holds the only heavy slot again
        loop.get_by_test_id("stProgress").wait_for(timeout=SWITCH_MS)
        thumb = lab.get_by_test_id("stSlider").filter(has_text="beta").get_by_role("slider")
        thumb.focus()
        thumb.press("ArrowRight")  # beta 0.55: not cached, replayed in the fast lane past the loop
        expect(lab.get_by_text(f"cmc knobs at {point_label({'beta': 0.55})}", exact=True)).to_be_visible()
        cmc = evaluate(load_autotts_file(data_file, DATASET), ControllerSpec.builtin("cmc", {"beta": 0.55}),
                       shuffles=11)
        expect(accuracy).to_have_text(f"{cmc.accuracy:.2f}%")
        expect(loop.get_by_test_id("stProgress")).to_be_visible()  # still looping
