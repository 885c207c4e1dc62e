"""/frontier, /explorer, /episode and the home page's upload in a real browser: a `streamlit run app.py`
server on a store holding all 12 real datasets, driven by headless Chromium (helpers from the home test)."""

import re
import shutil
from pathlib import Path

import pytest
from test_home_browser import IDLE, PAGE_MS, SCREENSHOTS, chromium, server  # noqa: F401

from engine import frontier as fr
from engine.evaluate import ControllerSpec
from engine.formats.autotts import write_autotts
from engine.paths import data_dir
from engine.simulate import Knobs, synthetic_dataset
from engine.store import Store
from engine.timeline import run_episode

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

DATASETS = "Qwen3-8B/aime24,Qwen3-4B/hmmt25"


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    """All 12 real files under a temp data dir, already imported into the server's store (the home
    test's ``server`` fixture derives its data dir and database from this path)."""
    root = tmp_path_factory.mktemp("views")
    shutil.copytree(data_dir(), root / "data")
    Store(root / "ttslab.duckdb").import_path(root / "data")
    return root / "data" / "Qwen3-8B" / "aime24.json"


@pytest.fixture(scope="module")
def browser(server):  # noqa: F811
    from playwright.sync_api import expect

    expect.set_options(timeout=PAGE_MS)  # cold sweeps take a while on a busy 2-core machine
    with chromium() as browser:
        yield browser


def open_view(browser, url: str):
    """A fresh browser context (no shared state) on ``url``, once the script has finished."""
    tab = browser.new_context(viewport={"width": 1400, "height": 3000}).new_page()
    tab.set_default_timeout(PAGE_MS)
    tab.goto(url)
    tab.wait_for_selector(IDLE)
    return tab


def shot(tab, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.wait_for_timeout(500)  # let plotly finish drawing: the screenshot is for a human to look at
    tab.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def share_link(tab) -> str:
    """The URL the page's "Copy link" popover offers."""
    tab.get_by_role("button", name=re.compile("Copy link")).click()
    code = tab.get_by_test_id("stPopoverBody").get_by_test_id("stCode")
    code.wait_for()
    return code.inner_text().strip()


def metric(tab, label: str) -> str:
    return tab.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue").inner_text()


def test_frontier_link_reopens_the_same_view(browser, server):  # noqa: F811
    """A frontier view opened from a link shows its panels and summary; its share link, opened in a
    fresh browser, shows the same panels and the same summary table."""
    from playwright.sync_api import expect

    tab = open_view(browser, f"{server}/frontier?datasets={DATASETS}&heldout=Qwen3-4B/hmmt25&controllers=sc,asc,cmc")
    chart = tab.get_by_test_id("stPlotlyChart").first
    for title in ("Qwen3-8B/aime24 (search)", "Qwen3-4B/hmmt25 (held-out)", fr.AVERAGE):
        expect(chart).to_contain_text(title)
    summary = tab.get_by_test_id("stDataFrame").first
    expect(summary).to_contain_text("tokens at sc | k=64 accuracy")
    shot(tab, "frontier")
    link = share_link(tab)
    assert "/frontier?" in link and "datasets=Qwen3-8B%2Faime24%2CQwen3-4B%2Fhmmt25" in link
    again = open_view(browser, link)
    expect(again.get_by_test_id("stPlotlyChart").first).to_contain_text("Qwen3-4B/hmmt25 (held-out)")
    assert again.get_by_test_id("stDataFrame").first.inner_text() == summary.inner_text()


def download(tab, label: str) -> bytes:
    """Click a download button and return the file it delivers."""
    with tab.expect_download() as got:
        tab.get_by_role("button", name=label).click()
    return Path(got.value.path()).read_bytes()


def test_frontier_exports_and_compare_runs(browser, server):  # noqa: F811
    """CSV, standalone HTML and PNG downloads carry the points and the figure; "Compare runs" draws the
    parallel coordinates and a table of the differing settings."""
    from playwright.sync_api import expect

    tab = open_view(browser, f"{server}/frontier?datasets=Qwen3-8B/aime24&controllers=sc,cmc")
    tab.get_by_test_id("stPlotlyChart").first.wait_for()
    csv = download(tab, "Points (CSV)").decode()
    assert csv.splitlines()[0] == ("dataset,controller,config,accuracy,ci_low,ci_high,avg_total_tokens,"
                                   "avg_sequential_tokens")
    assert len(csv.splitlines()) == 1 + 6 + 11
    html = download(tab, "Figure (HTML)").decode()
    assert "aime24 (search)" in html and "<script src=" not in html  # plotly writes "/" as "\\/"
    assert download(tab, "Figure (PNG)")[:8] == b"\x89PNG\r\n\x1a\n"
    tab.get_by_text("Compare runs").click()
    tab.wait_for_selector(IDLE)
    expect(tab.get_by_test_id("stPlotlyChart").nth(1)).to_contain_text("knobs vs outcomes")
    shot(tab, "frontier_compare")


def test_figure3_preset(browser, server):  # noqa: F811
    """The Figure 3 button draws its four held-out panels and the average, over total tokens."""
    from playwright.sync_api import expect

    tab = open_view(browser, f"{server}/frontier")
    tab.get_by_role("button", name="Paper Figure 3").click()
    tab.wait_for_selector(IDLE)
    chart = tab.get_by_test_id("stPlotlyChart").first
    for name in fr.FIGURE3_DATASETS:
        expect(chart).to_contain_text(f"{name} (held-out)")
    expect(chart).to_contain_text("avg total tokens")
    assert "controllers=sc%2Casc%2Cesc%2Cparallel_probe%2Ccmc" in share_link(tab)
    shot(tab, "frontier_figure3")


def test_table1_preset_matches_the_paper_except_the_documented_row(browser, server):  # noqa: F811
    """Paper Table 1: every cell equals the paper's after its rounding except Qwen3-1.7B Parallel-Probe."""
    from playwright.sync_api import expect

    tab = open_view(browser, f"{server}/frontier")
    tab.get_by_role("button", name="Paper Table 1").click()
    tab.wait_for_selector(IDLE)
    expect(tab.get_by_test_id("stMetric")).to_contain_text("69 / 72")
    differ = tab.get_by_test_id("stAlertContentWarning").filter(has_text="differ from the paper").inner_text()
    listed = set(re.findall(r"(Qwen3-[\d.]+B/\w+) (\w+)", differ))
    assert listed == {(f"Qwen3-1.7B/{b}", "parallel_probe") for b in fr.PAPER_BENCHMARKS}
    assert "view=table1" in share_link(tab)
    shot(tab, "frontier_table1")


def test_a_long_sweep_shows_progress_and_stops(browser, server):  # noqa: F811
    """A sweep over all datasets shows a progress bar and a Stop button; Stop keeps what was evaluated and
    offers to resume."""
    from playwright.sync_api import expect

    every = ",".join(f"{m}/{b}" for m in fr.PAPER_MODELS for b in fr.PAPER_BENCHMARKS)
    tab = browser.new_context(viewport={"width": 1400, "height": 3000}).new_page()
    tab.set_default_timeout(PAGE_MS)
    tab.goto(f"{server}/frontier?datasets={every}&controllers=parallel_probe,cmc&shuffles=37")
    expect(tab.get_by_test_id("stProgress")).to_be_visible()
    tab.get_by_role("button", name="Stop the sweep").click()
    tab.wait_for_selector(IDLE)
    expect(tab.get_by_text("Stopped: showing what was evaluated before the stop")).to_be_visible()
    expect(tab.get_by_role("button", name="Resume")).to_be_visible()
    shot(tab, "frontier_stopped")


def test_explorer_link_reopens_the_same_question(browser, server, data_file):  # noqa: F811
    """The explorer shows the linked question's gold answer and heatmap; its share link reopens it."""
    from playwright.sync_api import expect

    tab = open_view(browser, f"{server}/explorer?dataset=Qwen3-8B/aime24&question=3")
    gold = Store(data_file.parents[1].parent / "ttslab.duckdb").load_dataset("Qwen3-8B/aime24").questions[3].gold
    assert metric(tab, "gold answer") == gold
    expect(tab.get_by_test_id("stPlotlyChart").first).to_contain_text("Qwen3-8B/aime24, Q3: probed answers")
    shot(tab, "explorer")
    again = open_view(browser, share_link(tab))
    assert metric(again, "gold answer") == gold


def test_episode_link_reopens_the_same_step(browser, server, data_file):  # noqa: F811
    """The episode viewer replays CMC on the linked question and seed, at the linked step; ▶ moves one action
    on; the share link reopens that step with the same numbers."""
    from playwright.sync_api import expect

    dataset = Store(data_file.parents[1].parent / "ttslab.duckdb").load_dataset("Qwen3-8B/aime24")
    direct = run_episode(dataset, ControllerSpec.builtin("cmc", {"beta": 0.3}), 3, 5)
    url = f"{server}/episode?dataset=Qwen3-8B/aime24&question=3&seed=5&controller=cmc&beta=0.3&step=12"
    tab = open_view(browser, url)
    assert metric(tab, "total tokens") == f"{direct.total_tokens:,}"
    assert metric(tab, "final answer") == str(direct.answer)
    expect(tab.get_by_test_id("stPlotlyChart").first).to_contain_text(f"action 12 of {len(direct.steps)}")
    tab.get_by_role("button", name="▶").click()
    tab.wait_for_selector(IDLE)
    expect(tab.get_by_test_id("stPlotlyChart").first).to_contain_text(f"action 13 of {len(direct.steps)}")
    expect(tab.get_by_text("Session State API")).to_have_count(0)
    shot(tab, "episode")
    again = open_view(browser, share_link(tab))
    expect(again.get_by_test_id("stPlotlyChart").first).to_contain_text(f"action 13 of {len(direct.steps)}")
    assert metric(again, "total tokens") == f"{direct.total_tokens:,}"


def test_home_upload_imports_a_file(browser, server, tmp_path):  # noqa: F811
    """Uploading an AutoTTS JSON file on the home page stores it under the prefix and lists it."""
    from playwright.sync_api import expect

    upload = tmp_path / "lesson.json"
    write_autotts(synthetic_dataset(Knobs(questions=3, branches=4)), upload)
    tab = open_view(browser, server)
    tab.get_by_text("Add data: upload files").click()
    tab.get_by_test_id("stTabs").get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(upload))
    tab.get_by_role("button", name="Import", exact=True).click()
    tab.wait_for_selector(IDLE)
    expect(tab.get_by_test_id("stAlertContentSuccess")).to_contain_text("imported uploaded/lesson")
    expect(tab.get_by_test_id("stDataFrame").first).to_contain_text("uploaded/lesson")
    shot(tab, "home_upload")
