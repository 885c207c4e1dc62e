"""Controller lab latency through a real browser: python benchmarks/ui_latency.py (needs /usr/bin/chromium).

Starts `streamlit run app.py` on a temp store holding one real dataset and drives /lab in headless
Chromium. Prints, side by side:
  1. slider-to-update latency of a built-in (CMC, 100 shuffles), median and worst of 10 beta steps,
     uncached (each beta replayed for the first time) and cached (the same betas again), next to the
     engine's own time for the same evaluations: the UI's share of the latency;
  2. time to first estimate (5 shuffles) and to the full result (100 shuffles) for the reference-format
     controller files in examples/controllers/, typed into the editor and run in the sandbox.
Target (issue 7): a built-in's metrics and figures update within 1 s of the slider moving (median).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.evaluate import ControllerSpec, evaluate
from engine.formats.autotts import load_autotts_file
from engine.paths import PROJECT_ROOT, data_dir
from engine.store import Store

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
TARGET_SECONDS = 1.0
STEPS = 10
BETA = 0.5
STEP = 0.05
FILES = ("sc_reference_style.py", "cmc_reference_style.py")
TIMEOUT_MS = 180_000


@contextmanager
def serve(dataset: str) -> Iterator[str]:
    """A headless app on a free port with a temp store holding ``dataset``; stopped afterwards."""
    root = Path(tempfile.mkdtemp(prefix="ttslab-ui-bench-"))
    db = root / "bench.duckdb"
    Store(db).import_path(data_dir() / f"{dataset}.json")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TTSLAB_DB": str(db), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "app.py"), "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    with (root / "streamlit.log").open("w") as log:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(root, ignore_errors=True)


def open_tab(browser, url: str):
    tab = browser.new_context(viewport={"width": 1400, "height": 2400}).new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    tab.goto(url)
    tab.wait_for_selector(IDLE)
    return tab


def slider_latencies(tab, key: str, betas: list[float]) -> list[float]:
    """Seconds from each key press to the finished rerun that shows the knobs at the new beta."""
    thumb = tab.get_by_test_id("stSlider").filter(has_text="beta").get_by_role("slider")
    times = []
    for beta in betas:
        thumb.focus()
        start = time.perf_counter()
        tab.keyboard.press(key)
        tab.get_by_text(f"cmc knobs at beta={beta}", exact=True).wait_for()
        tab.wait_for_selector(IDLE)
        times.append(time.perf_counter() - start)
    return times


def engine_seconds(dataset, betas: list[float], shuffles: int) -> list[float]:
    """The engine alone (compiled kernel, no cache) for the same evaluations."""
    times = []
    for beta in betas:
        start = time.perf_counter()
        evaluate(dataset, ControllerSpec.builtin("cmc", {"beta": beta}), shuffles=shuffles)
        times.append(time.perf_counter() - start)
    return times


WATCH_RUN = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    window.__estimate = null;
    window.__done = null;
    let ran = false;
    new MutationObserver((_, observer) => {
        const now = performance.now();
        if (window.__estimate === null && document.body.textContent.includes("First estimate from 5 shuffles")) {
            window.__estimate = now;
        }
        const state = app.getAttribute("data-test-script-state");
        ran = ran || state === "running";
        if (ran && state === "notRunning") {
            window.__done = now;
            observer.disconnect();
        }
    }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true,
                               attributeFilter: ["data-test-script-state"]});
    return performance.now();
}"""


def first_estimate(tab, source: str) -> tuple[float, float]:
    """Seconds from Run to the first estimate (5 shuffles) and to the end of the run (full result).

    The page records both moments itself: the estimate may show for a few milliseconds only, and when
    the full result lands in the same frame the estimate never shows (then both times are the same)."""
    frame = tab.frame_locator("iframe").first
    frame.locator(".ace_content").click()
    tab.keyboard.press("Control+A")
    tab.keyboard.insert_text(source)
    start = tab.evaluate(WATCH_RUN)
    frame.get_by_role("button", name="Run").click()
    tab.wait_for_function("window.__done !== null", timeout=TIMEOUT_MS)
    estimate, done = tab.evaluate("[window.__estimate, window.__done]")
    assert tab.get_by_test_id("stAlertContentError").count() == 0, "the controller failed"
    return ((estimate if estimate is not None else done) - start) / 1000, (done - start) / 1000


def row(label: str, times: list[float], engine: list[float] | None = None) -> str:
    med, worst = statistics.median(times), max(times)
    ok = "yes" if med <= TARGET_SECONDS else "NO"
    extra = ""
    if engine:
        share = 1 - statistics.median(engine) / med
        extra = f"{statistics.median(engine):10.3f}{share:9.0%}"
    return f"{label:28}{med:9.3f}{worst:9.3f}{med / TARGET_SECONDS:9.2f}x{extra}   {ok}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="Qwen3-8B/aime24")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each controller file")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    betas_up = [round(BETA + STEP * i, 2) for i in range(1, STEPS + 1)]
    betas_down = [round(b - STEP, 2) for b in reversed(betas_up)]
    with serve(args.dataset) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        open_tab(browser, url).get_by_test_id("stMetric").first.wait_for()  # app.py's navigation, kernels compiled
        tab = open_tab(browser, f"{url}/lab")
        tab.get_by_text("cmc knobs at beta=0.5", exact=True).wait_for()  # baselines replayed and cached
        uncached = slider_latencies(tab, "ArrowRight", betas_up)
        cached = slider_latencies(tab, "ArrowLeft", betas_down)
        ds = load_autotts_file(data_dir() / f"{args.dataset}.json", args.dataset)
        engine = engine_seconds(ds, betas_up, 100)
        print(f"\n== /lab slider -> updated metrics and figure, CMC on {args.dataset}, 100 shuffles, {STEPS} steps ==")
        print(f"{'':28}{'median s':>9}{'worst s':>9}{'/target':>10}{'engine s':>10}{'UI share':>9}   ok (<= 1 s)")
        print(row("uncached (replayed)", uncached, engine))
        print(row("cached (result cache)", cached))
        editor = open_tab(browser, f"{url}/lab?controller=new")
        print(f"\n== Python controller file typed into the editor, sandboxed, {args.repeat} runs each ==")
        print(f"{'file':28}{'first est. s':>13}{'full s':>9}{'first run s':>13}")
        for name in FILES:
            source = (PROJECT_ROOT / "examples" / "controllers" / name).read_text()
            runs = [first_estimate(editor, f"{source}\n# run {i}\n") for i in range(args.repeat + 1)]
            cold, warm = runs[0], runs[1:]
            print(f"{name:28}{statistics.median(r[0] for r in warm):13.3f}"
                  f"{statistics.median(r[1] for r in warm):9.3f}{cold[0]:13.3f}")
        browser.close()


if __name__ == "__main__":
    main()
