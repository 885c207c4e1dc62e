"""Load test: a class on one server. Loopback only, bounded, stops by itself.

    python benchmarks/load_test.py [--sessions 8] [--moves 8]

Starts `streamlit run benchmarks/load_app.py` on 127.0.0.1 with a temp store, then drives headless
Chromium contexts (one browser) as a class does:

1. alone: one visitor opens the app and moves the beta slider ``--moves`` times;
2. together: ``--sessions`` visitors at once; one runs a controller that never returns (/loop,
   through the fair queue), the others each move the beta slider ``--moves`` times.

Slider-to-update latency: from the key press that moves the slider to the page showing the knobs
of the new beta (a new evaluation: each visitor uses its own shuffle count, so nothing is shared
through the result cache). Prints median and p95 alone and together, their ratio, the errors seen
(none allowed: exit status 1), and checks the store afterwards: datasets unchanged, every
evaluation a visitor saw stored once, and a sample recomputed to the same figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from test_home_browser import CHROMIUM, CHROMIUM_ARGS, IDLE, free_port  # noqa: E402

from engine.evaluate import ControllerSpec, evaluate, result_key  # noqa: E402
from engine.paths import data_dir  # noqa: E402
from engine.store import Store  # noqa: E402

DATASET = "Qwen3-8B/aime24"
CONTROLLER = "cmc"
STEP = 0.05  # the home slider's step
BETA0 = 0.5  # its default
STARTUP_S = 60
PAGE_MS = 180_000
DEADLINE_S = 900  # the whole run, whatever happens
ERROR_ALERT = ("Error", "Exception", "QueueFull")
LOOP_PAGE = "/loop"  # benchmarks/load_app.py's page whose controller never returns
# Where a visitor moves the beta slider, and the text that page shows once it has evaluated a beta.
# The first page listed whose "beta" slider exists is used: /lab once it has one (add its marker).
UPDATE_MARKERS = {"/": lambda beta: f"{CONTROLLER} knobs at beta = {beta:.2f}"}


class Visitor:
    """One browser context; records its latencies and the errors it saw."""

    def __init__(self, browser, url: str, shuffles: int) -> None:
        self.browser, self.url, self.shuffles = browser, url, shuffles
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.betas: list[float] = []  # the betas this visitor saw evaluated, with its own shuffles

    async def open(self, path: str = "/"):
        self.context = await self.browser.new_context(viewport={"width": 1400, "height": 2400})
        self.page = await self.context.new_page()
        self.page.set_default_timeout(PAGE_MS)
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        await self.page.goto(self.url + path)
        return self.page

    async def slide(self, path: str, moves: int) -> None:
        """Open ``path``, pick this visitor's shuffles, then move the beta slider ``moves`` times."""
        page = await self.open(path)
        self.marker = UPDATE_MARKERS[path]
        await self.knobs_at(BETA0)
        shuffles = page.get_by_test_id("stNumberInput").filter(has_text="shuffles").locator("input")
        await shuffles.fill(str(self.shuffles))
        await shuffles.press("Enter")
        await page.wait_for_timeout(1500)  # setup, not measured: let the rerun start, then finish
        await page.wait_for_selector(IDLE)
        thumb = page.get_by_test_id("stSlider").filter(has_text="beta").get_by_role("slider")
        for i in range(1, moves + 1):
            beta = round(BETA0 + i * STEP, 2)
            await thumb.focus()
            started = time.perf_counter()
            await thumb.press("ArrowRight")
            await self.knobs_at(beta)
            self.latencies.append(time.perf_counter() - started)
            self.betas.append(beta)
            await self.check_errors()

    async def knobs_at(self, beta: float) -> None:
        await self.page.get_by_text(self.marker(beta)).wait_for()

    async def check_errors(self) -> None:
        if await self.page.get_by_test_id("stException").count():
            self.errors.append(await self.page.get_by_test_id("stException").first.inner_text())
        for text in await self.page.get_by_test_id("stAlert").all_inner_texts():
            if any(word in text for word in ERROR_ALERT):
                self.errors.append(text)

    async def loop(self) -> None:
        """Open the loop page: its controller never returns; wait until it runs in its slot."""
        page = await self.open(LOOP_PAGE)
        await page.get_by_test_id("stProgress").wait_for()

    async def close(self) -> None:
        await self.context.close()


async def slider_page(browser, url: str) -> str:
    """The first page of UPDATE_MARKERS (in reverse: /lab before /) that has a "beta" slider."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        for path in reversed(UPDATE_MARKERS):
            await page.goto(url + path)
            await page.get_by_test_id("stHeading").first.wait_for(timeout=PAGE_MS)  # its run started ...
            await page.wait_for_selector(IDLE, timeout=PAGE_MS)  # ... and ended
            if await page.get_by_test_id("stSlider").filter(has_text="beta").count():
                return path
    finally:
        await context.close()
    raise SystemExit(f"no page among {list(UPDATE_MARKERS)} has a beta slider")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def drive(url: str, sessions: int, moves: int) -> tuple[list[Visitor], Visitor, Visitor]:
    """Phase 1 (one visitor alone), then phase 2 (``sessions`` at once, one of them looping)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            path = await slider_page(browser, url)
            alone = Visitor(browser, url, shuffles=100 + 1)
            await alone.slide(path, moves)
            await alone.close()
            looper = Visitor(browser, url, shuffles=0)
            class_ = [Visitor(browser, url, shuffles=100 + 2 + i) for i in range(sessions - 1)]
            await looper.loop()
            await asyncio.gather(*(v.slide(path, moves) for v in class_))
            still_looping = await looper.page.get_by_test_id("stProgress").count() > 0
            if not still_looping:
                looper.errors.append("the infinite loop stopped before the class finished")
            await looper.close()
            for v in class_:
                await v.close()
        finally:
            await browser.close()
    return class_, alone, looper


def store_rows(db: Path) -> tuple[list[tuple], dict[str, dict]]:
    """(datasets with content hashes, results by key) read from the file after the server stopped."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        datasets = con.execute("SELECT name, content_hash, n_questions, n_branches_total FROM datasets "
                               "ORDER BY name").fetchall()
        keys = [k for (k,) in con.execute("SELECT key FROM results").fetchall()]
    finally:
        con.close()
    return datasets, Store(db).get_results(keys)


def check_store(db: Path, before: list[tuple], visitors: list[Visitor]) -> list[str]:
    """Problems found: datasets changed, a seen evaluation missing, or stored figures that differ."""
    datasets, results = store_rows(db)
    problems = [] if datasets == before else [f"datasets changed: {before} -> {datasets}"]
    dataset = Store(db).load_dataset(DATASET)
    seen = {(v.shuffles, b) for v in visitors for b in v.betas}
    for shuffles, beta in sorted(seen):
        key = result_key(dataset, ControllerSpec.builtin(CONTROLLER, {"beta": beta}), shuffles, "compat")
        if key not in results:
            problems.append(f"result missing: beta={beta} shuffles={shuffles}")
    for shuffles, beta in sorted(seen)[:: max(1, len(seen) // 4)]:  # a sample, recomputed without the store
        spec = ControllerSpec.builtin(CONTROLLER, {"beta": beta})
        stored = results.get(result_key(dataset, spec, shuffles, "compat"))
        fresh = evaluate(dataset, spec, shuffles=shuffles)
        if stored is not None and stored["metrics"]["accuracy"] != fresh.accuracy:
            problems.append(f"stored accuracy differs at beta={beta} shuffles={shuffles}")
    return problems


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "TTSLAB_DB": str(root / "ttslab.duckdb"), "TTSLAB_DATA": str(root / "data"),
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "benchmarks" / "load_app.py"),
           "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
           "--browser.gatherUsageStats", "false"]
    log = (root / "streamlit.log").open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            import urllib.request

            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"the server did not start:\n{(root / 'streamlit.log').read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help="concurrent browser contexts (one loops)")
    parser.add_argument("--moves", type=int, default=8, help="slider moves per visitor")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} not found (apt-get install -y chromium)")
    root = Path(tempfile.mkdtemp(prefix="ttslab-load-"))
    try:
        (root / "data" / DATASET).parent.mkdir(parents=True)
        shutil.copy(data_dir() / f"{DATASET}.json", root / "data" / f"{DATASET}.json")
        Store(root / "ttslab.duckdb").import_path(root / "data")
        before = store_rows(root / "ttslab.duckdb")[0]
        proc, url = start_server(root)
        try:
            started = time.perf_counter()
            class_, alone, looper = asyncio.run(asyncio.wait_for(drive(url, args.sessions, args.moves), DEADLINE_S))
            wall = time.perf_counter() - started
        finally:
            stop(proc)
        problems = check_store(root / "ttslab.duckdb", before, [*class_, alone])
        report(alone, class_, looper, problems, wall, args)
        errors = [e for v in (alone, looper, *class_) for e in v.errors]
        return 1 if errors or problems else 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(alone: Visitor, class_: list[Visitor], looper: Visitor, problems: list[str], wall: float,
           args: argparse.Namespace) -> None:
    together = [t for v in class_ for t in v.latencies]
    a_med, a_p95 = statistics.median(alone.latencies), percentile(alone.latencies, 0.95)
    t_med, t_p95 = statistics.median(together), percentile(together, 0.95)
    errors = [e for v in (alone, looper, *class_) for e in v.errors]
    print(f"load test: {args.sessions} Chromium contexts on {os.cpu_count()} cores, one in an infinite loop, "
          f"{args.moves} slider moves each ({wall:.0f} s; machine load average {os.getloadavg()[1]:.1f} "
          "over the last 5 min, the browsers included)")
    print(f"  slider-to-update, alone:    median {a_med:.2f} s   p95 {a_p95:.2f} s   ({len(alone.latencies)} moves)")
    print(f"  slider-to-update, together: median {t_med:.2f} s   p95 {t_p95:.2f} s   ({len(together)} moves)")
    print(f"  together / alone:           median {t_med / a_med:.1f}x   p95 {t_p95 / a_p95:.1f}x")
    print(f"  errors: {len(errors)}" + "".join(f"\n    {e[:200]}" for e in errors))
    print(f"  store: {'intact' if not problems else 'PROBLEMS'}" + "".join(f"\n    {p}" for p in problems))


if __name__ == "__main__":
    sys.exit(main())
