"""The database picker in a real browser: switch stores, reopen one from a db= link, refuse bad links."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from test_home_browser import IDLE, PAGE_MS, SCREENSHOTS, chromium, streamlit_app

from engine.formats.autotts import parse_autotts
from engine.store import Store

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

DOC = [{"question": "What is 3 + 4?", "each_branch": [[["7"], 900, "7"], [["8"], 800, "8"], [["7"], 700, "7"]],
        "gold_answer": "7", "probe_freq": 500}]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """The app on a stores folder holding alpha (the server's store, m/alpha) and beta (m/beta)."""
    root = tmp_path_factory.mktemp("stores_e2e")
    folder = root / "stores"
    for name in ("alpha", "beta"):
        Store(folder / f"{name}.duckdb").import_dataset(parse_autotts(json.dumps(DOC), name=f"m/{name}"))
    (root / "no-data").mkdir()
    env = {"TTSLAB_DB": str(folder / "alpha.duckdb"), "TTSLAB_DATA": str(root / "no-data")}
    with streamlit_app(env, root / "streamlit.log") as url:
        yield url


@pytest.fixture
def browser():
    with chromium() as browser:
        yield browser


def open_page(browser, url: str):
    """A new tab on ``url`` once the app's script has finished."""
    tab = browser.new_page(viewport={"width": 1400, "height": 1600})
    tab.set_default_timeout(PAGE_MS)
    tab.goto(url)
    tab.wait_for_selector(IDLE)
    return tab


def expect_datasets(tab, name: str) -> None:
    """The home page's datasets table lists ``name`` (the grid fills in after the script has run)."""
    from playwright.sync_api import expect

    expect(tab.get_by_test_id("stMain").get_by_test_id("stDataFrame").first).to_contain_text(name, timeout=PAGE_MS)


def test_picker_switches_stores_and_the_url_reopens_them(server: str, browser) -> None:
    """Choosing beta in the sidebar shows beta's datasets and db=beta in the URL; that URL reopens beta."""
    from playwright.sync_api import expect

    tab = open_page(browser, server)
    expect_datasets(tab, "m/alpha")
    tab.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").click()
    tab.get_by_role("option", name="beta · 1 dataset").click()
    tab.wait_for_selector(IDLE)
    expect_datasets(tab, "m/beta")
    expect(tab).to_have_url(f"{server}/?db=beta")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=SCREENSHOTS / "stores_picker_beta.png", full_page=True)
    tab.get_by_test_id("stSidebarNav").get_by_text("Data explorer").click()
    tab.wait_for_selector(IDLE)
    expect(tab.get_by_test_id("stSidebar").get_by_role("combobox")).to_have_value("beta · 1 dataset")
    expect(tab).to_have_url(f"{server}/explorer?db=beta")  # the link of any page keeps the store
    link = open_page(browser, f"{server}/?db=beta")
    expect_datasets(link, "m/beta")
    fresh = open_page(browser, server)  # another session: still on the server's store
    expect_datasets(fresh, "m/alpha")


@pytest.mark.parametrize("bad", ["../../etc/passwd", "%2Fetc%2Fpasswd", "nope"])
def test_bad_db_link_is_refused_with_a_message(server: str, browser, bad: str) -> None:
    """db= naming a path or an unknown store is refused in words; the server's store is shown instead."""
    from playwright.sync_api import expect

    tab = open_page(browser, f"{server}/?db={bad}")
    expect(tab.get_by_test_id("stAlertContentError").first).to_contain_text("was not opened")
    expect_datasets(tab, "m/alpha")


def test_no_deploy_button(server: str, browser) -> None:
    """The project's Streamlit config hides the Deploy button (toolbar in viewer mode); the toolbar is there."""
    from playwright.sync_api import expect

    tab = open_page(browser, server)
    expect(tab.get_by_test_id("stToolbar")).to_be_attached()
    expect(tab.get_by_test_id("stAppDeployButton")).to_have_count(0)


def open_panel(tab):
    """The home page's database panel, expanded."""
    panel = tab.get_by_test_id("stExpander").filter(has_text="Trajectory databases")
    panel.get_by_text("Trajectory databases").first.click()
    return panel


def test_upload_keeps_a_valid_store_and_refuses_junk(server: str, browser, tmp_path) -> None:
    """Uploading a real store keeps it in the folder and opens it; a text file named .duckdb is refused."""
    from playwright.sync_api import expect

    good = tmp_path / "gamma.duckdb"
    Store(good).import_dataset(parse_autotts(json.dumps(DOC), name="m/gamma"))
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database\n" * 500)
    tab = open_page(browser, server)
    panel = open_panel(tab)
    panel.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(junk))
    expect(tab.get_by_test_id("stAlertContentError").first).to_contain_text("junk.duckdb was not kept", timeout=PAGE_MS)
    expect_datasets(tab, "m/alpha")
    panel.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(good))
    expect(tab.get_by_test_id("stAlertContentSuccess").first).to_contain_text("Kept gamma.duckdb as gamma",
                                                                               timeout=PAGE_MS)
    expect_datasets(tab, "m/gamma")
    expect(tab).to_have_url(f"{server}/?db=gamma")
    tab.wait_for_selector(IDLE)  # the run has ended: the previous store's widgets are gone
    expect(panel.get_by_test_id("stMultiSelect")).to_contain_text("m/gamma")  # download offers the new store
    panel.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=SCREENSHOTS / "stores_panel_uploaded.png", full_page=True)


def test_download_gives_a_store_with_the_chosen_datasets(server: str, browser, tmp_path) -> None:
    """'Download as .duckdb' on beta gives a file that opens as a store holding m/beta."""
    tab = open_page(browser, f"{server}/?db=beta")
    expect_datasets(tab, "m/beta")
    panel = open_panel(tab)
    with tab.expect_download() as download:
        panel.get_by_role("button", name="Download as .duckdb").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "beta.duckdb"
    assert [i.name for i in Store(saved).list_datasets()] == ["m/beta"]
