"""The home page in a real browser: a `streamlit run app.py` server driven by headless Chromium."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.evaluate import ControllerSpec, evaluate
from engine.formats.autotts import load_autotts_file
from engine.paths import PROJECT_ROOT, data_dir

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]  # one server, one worker

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"
DATASET = "Qwen3-8B/aime24"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
STARTUP_SECONDS = 60
PAGE_MS = 120_000  # first load imports the data and may compile the replay kernels


def require_chromium() -> None:
    """Browser tests are optional on a laptop without Chromium, mandatory in CI."""
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} not found (install it with: apt-get install -y --no-install-recommends chromium)"
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"CI must run the browser tests: {message}")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"streamlit did not answer within {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    """One real AutoTTS file in a temp <model>/<bench>.json layout."""
    target = tmp_path_factory.mktemp("e2e") / "data" / f"{DATASET}.json"
    target.parent.mkdir(parents=True)
    shutil.copy(data_dir() / f"{DATASET}.json", target)
    return target


@contextmanager
def streamlit_app(env: dict[str, str], log: Path) -> Iterator[str]:
    """URL of a headless `streamlit run app.py` on a free port with ``env`` added; stopped afterwards.

    It runs from the project root, so Streamlit reads the project's .streamlit/config.toml as `make run` does.
    """
    require_chromium()
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "app.py"), "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port)]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **env}
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc, log)
        yield url
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate a server, killing it if it does not exit within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def chromium() -> Iterator:
    """The system's headless Chromium through Playwright (no downloaded browser), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(data_file: Path) -> Iterator[str]:
    """URL of the app on a temp store whose data dir holds ``data_file``."""
    root = data_file.parents[2]
    env = {"TTSLAB_DB": str(root / "ttslab.duckdb"), "TTSLAB_DATA": str(root / "data")}
    with streamlit_app(env, root / "streamlit.log") as url:
        yield url


@pytest.fixture
def page(server: str):
    """A fresh Chromium page on the home page, once its script has finished running."""
    with chromium() as browser:
        tab = browser.new_page(viewport={"width": 1400, "height": 3000})
        tab.set_default_timeout(PAGE_MS)
        tab.goto(server)
        tab.wait_for_selector(IDLE)
        tab.get_by_test_id("stMetric").first.wait_for()
        yield tab


def fresh(page):
    """The elements drawn by the current run: during a rerun Streamlit keeps the previous run's elements on
    screen, greyed out (``data-stale="true"``) until the run ends, so a page whose layout moved shows two of
    a kind (two "accuracy" metrics, two chart titles) for a while."""
    return page.locator('[data-testid="stElementContainer"][data-stale="false"]')


def metric(page, label: str):
    """The value of the metric labelled ``label`` as drawn by the current run."""
    return fresh(page).filter(has=page.get_by_test_id("stMetric").filter(has_text=label)).get_by_test_id(
        "stMetricValue")


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``, then wait for the rerun to finish."""
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_selector(IDLE)


def test_home_lists_the_dataset_and_shows_an_evaluation(page):
    """First load imports the data, lists the dataset in the table and shows CMC's accuracy metric."""
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    table = page.get_by_test_id("stDataFrame").first
    expect(table).to_contain_text(DATASET)
    expect(metric(page, "accuracy")).to_have_text(re.compile(r"^\d+\.\d\d%$"))
    page.screenshot(path=SCREENSHOTS / "home.png", full_page=True)
    page.get_by_text("How beta sets the knobs of cmc").click()
    schedule = page.get_by_test_id("stPlotlyChart").last
    expect(schedule).to_contain_text("cmc: knobs as a function of beta")
    schedule.scroll_into_view_if_needed()
    page.wait_for_timeout(800)  # let the expander finish opening: the screenshot is for a human to look at
    page.screenshot(path=SCREENSHOTS / "home_schedule.png", full_page=True)


def test_choosing_a_budget_baseline_runs_it(page, data_file):
    """Switching to SC with budget 8 reruns the evaluation; the page shows the engine's accuracy."""
    from playwright.sync_api import expect

    choose(page, "controller", "sc")
    choose(page, "budget", "8")
    direct = evaluate(load_autotts_file(data_file, DATASET), ControllerSpec.builtin("sc", {"k": 8}), shuffles=100)
    expect(metric(page, "accuracy")).to_have_text(f"{direct.accuracy:.2f}%")
    expect(page.get_by_text("sc knobs at k = 8")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "home_sc_budget8.png", full_page=True)


def test_missing_chromium_fails_in_ci(monkeypatch, tmp_path):
    """With CI set, a missing Chromium is a test failure, never a silent skip."""
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser tests"):
        require_chromium()


def test_missing_chromium_skips_locally(monkeypatch, tmp_path):
    """Without CI, a missing Chromium skips the browser tests with the install command."""
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install"):
        require_chromium()
