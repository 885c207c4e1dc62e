"""Load test: a class in the controller lab on one server. Loopback only, bounded, stops by itself.

    python benchmarks/load_test.py [--sessions 8] [--moves 8]

Starts `streamlit run app.py` on 127.0.0.1 with a temp store (one real dataset), then drives headless
Chromium contexts (one browser) through /lab as a class does:

1. alone: one visitor opens the lab (a link with its own shuffle count), moves the beta slider
   ``--moves`` times, then picks "new", types a controller into the editor and runs it;
2. together: ``--sessions`` visitors at once; one types a controller that never returns and runs it
   again each time the sandbox's episode limit ends it, the others do what the lone visitor did.

Slider-to-update latency: from the key press that moves the slider to the page showing CMC's knobs
at the new beta (a new evaluation: each visitor has its own shuffle count, so nothing is shared
through the result cache). Typed run: from the Run click to the full result's accuracy. Prints the
medians and p95s alone and together, their ratios, the machine's load while it ran, the errors seen
(none allowed: exit status 1), and checks the store afterwards: the data tables' row counts and
checksums unchanged, every evaluation a visitor saw stored, a sample recomputed to the same figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from test_home_browser import CHROMIUM, CHROMIUM_ARGS, IDLE, streamlit_app  # noqa: E402
from test_lab_browser import LOOP, TYPED  # noqa: E402 - the controllers a visitor types, as in the lab's browser test

from engine import lab  # noqa: E402
from engine.evaluate import ControllerSpec, evaluate, result_key  # noqa: E402
from engine.paths import data_dir  # noqa: E402
from engine.store import Store  # noqa: E402

DATASET = "Qwen3-8B/aime24"
CONTROLLER = "cmc"  # the lab's default
STEP = 0.05  # the lab's beta slider step
BETA0 = 0.5  # its default
PAGE_MS = 180_000
DEADLINE_S = 1200  # the whole browser phase, whatever happens
LOAD_EVERY_S = 5.0
ERROR_ALERT = ("Error", "Exception", "QueueFull", "exceeded")
DATA_TABLES = ("datasets", "questions", "branches", "probes", "saved_controllers")
RUNNING = '[data-testid="stApp"][data-test-script-state="running"]'
LOOP_ENDED = "episode time limit"  # the lab's sandbox ends a looping episode after 5 s and says so


def knobs_marker(beta: float) -> str:
    """What the lab shows once it has evaluated CMC at ``beta`` (``engine.lab.point_label``)."""
    return f"{CONTROLLER} knobs at {lab.point_label({'beta': round(beta, 4)})}"


class Visitor:
    """One browser context; records its latencies and the errors it saw."""

    def __init__(self, browser, url: str, shuffles: int) -> None:
        self.browser, self.url, self.shuffles = browser, url, shuffles
        self.latencies: list[float] = []
        self.typed_seconds: float | None = None
        self.errors: list[str] = []
        self.betas: list[float] = []  # the betas this visitor saw evaluated, with its own shuffles

    async def open(self, query: str):
        self.context = await self.browser.new_context(viewport={"width": 1400, "height": 2400})
        self.page = await self.context.new_page()
        self.page.set_default_timeout(PAGE_MS)
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        await self.page.goto(f"{self.url}/lab?dataset={DATASET}&{query}")
        return self.page

    async def study(self, moves: int, expected: dict[int, str]) -> None:
        """Open the lab, move beta ``moves`` times, then type and run ``TYPED``; a step that the page
        does not complete within ``PAGE_MS`` is an error (the visitor gives up), not a crash."""
        from playwright.async_api import TimeoutError as PageTimeout

        try:
            await self.steps(moves, expected)
        except PageTimeout as exc:
            self.errors.append(f"gave up after {PAGE_MS // 1000} s: {str(exc).splitlines()[-1].strip()}")

    async def steps(self, moves: int, expected: dict[int, str]) -> None:
        page = await self.open(f"shuffles={self.shuffles}")
        await self.knobs_at(BETA0)
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
        await page.wait_for_selector(IDLE)
        await page.get_by_test_id("stSelectbox").filter(has_text="controller").click()
        await page.get_by_role("option", name="new (write your own)").click()
        started = time.perf_counter()
        await run_in_editor(page, TYPED)
        accuracy = page.get_by_test_id("stMetric").filter(has_text="accuracy").get_by_test_id("stMetricValue")
        await accuracy.filter(has_text=expected[self.shuffles]).wait_for()
        await page.get_by_text(f"{self.shuffles} shuffles", exact=True).wait_for()
        self.typed_seconds = time.perf_counter() - started
        await self.check_errors()

    async def knobs_at(self, beta: float) -> None:
        await self.page.get_by_text(knobs_marker(beta), exact=True).wait_for()

    async def check_errors(self) -> None:
        if await self.page.get_by_test_id("stException").count():
            self.errors.append(await self.page.get_by_test_id("stException").first.inner_text())
        for text in await self.page.get_by_test_id("stAlert").all_inner_texts():
            if any(word in text for word in ERROR_ALERT):
                self.errors.append(text)

    async def loop(self, class_done: asyncio.Event) -> int:
        """Type a controller that never returns and run it again each time the episode limit ends it,
        until the class is done; the number of runs the limit ended."""
        page = await self.open("controller=new&shuffles=3")
        await page.wait_for_selector(IDLE)
        await run_in_editor(page, LOOP)
        ended = 0
        while True:
            await page.wait_for_selector(RUNNING, timeout=30_000)
            while not class_done.is_set() and not await page.locator(IDLE).count():
                await asyncio.sleep(0.25)
            if class_done.is_set():
                return ended
            if not await page.get_by_text(LOOP_ENDED).count():
                self.errors.append("a looping run ended without the episode time limit's message")
            ended += 1
            await page.frame_locator("iframe").first.get_by_role("button", name="Run").click()

    async def close(self) -> None:
        await self.context.close()


async def run_in_editor(page, code: str) -> None:
    """Replace the editor's text (inside the component's iframe) and press its Run button."""
    frame = page.frame_locator("iframe").first
    await frame.locator(".ace_content").click()
    await page.keyboard.press("Control+A")
    await page.keyboard.insert_text(code)  # like a paste: no auto-indent or auto-closing brackets
    await frame.get_by_role("button", name="Run").click()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def sample_load(samples: list[float], stop: asyncio.Event) -> None:
    """The machine's 1-minute load average every few seconds (the browsers and other jobs included)."""
    while not stop.is_set():
        samples.append(os.getloadavg()[0])
        try:
            await asyncio.wait_for(stop.wait(), LOAD_EVERY_S)
        except TimeoutError:
            pass


async def drive(url: str, sessions: int, moves: int, expected: dict[int, str],
                loads: list[float]) -> tuple[Visitor, list[Visitor], Visitor, int]:
    """Phase 1 (one visitor alone), then phase 2 (``sessions`` at once, one of them looping)."""
    from playwright.async_api import async_playwright

    done = asyncio.Event()
    sampler = asyncio.create_task(sample_load(loads, done))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            alone = Visitor(browser, url, shuffles=shuffle_counts(sessions)[0])
            await alone.study(moves, expected)
            await alone.close()
            looper = Visitor(browser, url, shuffles=3)
            class_ = [Visitor(browser, url, shuffles=n) for n in shuffle_counts(sessions)[1:]]
            looping = asyncio.create_task(looper.loop(done))
            await asyncio.gather(*(v.study(moves, expected) for v in class_))
            done.set()
            loops = await looping
            await looper.close()
            for v in class_:
                await v.close()
        finally:
            done.set()
            await sampler
            await browser.close()
    return alone, class_, looper, loops


def shuffle_counts(sessions: int) -> list[int]:
    """Each visitor's own shuffle count (the lone one first), so no two share a cached result."""
    return [101 + i for i in range(sessions)]


def typed_expectations(db: Path, sessions: int, moves: int) -> dict[int, str]:
    """The accuracy the lab must show for ``TYPED`` at each visitor's shuffles (replayed here)."""
    dataset = Store(db).load_dataset(DATASET)
    spec = typed_spec(round(BETA0 + moves * STEP, 2))
    return {n: f"{evaluate(dataset, spec, shuffles=n, trusted=True).accuracy:.2f}%" for n in shuffle_counts(sessions)}


def typed_spec(beta: float) -> ControllerSpec:
    return lab.user_spec(TYPED, lab.lab_config("new", beta, 64))


def data_fingerprint(db: Path) -> dict[str, tuple]:
    """Row count and content checksum of each table holding data the visitors must not change."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*), sum(hash({t})) FROM {t}").fetchone() for t in DATA_TABLES}
    finally:
        con.close()


def check_store(db: Path, before: dict[str, tuple], visitors: list[Visitor], moves: int) -> tuple[list[str], str]:
    """Problems found (data tables changed, a seen evaluation missing, stored figures that differ) and
    what was checked."""
    after = data_fingerprint(db)
    problems = [f"{t} changed: {before[t]} -> {after[t]}" for t in DATA_TABLES if after[t] != before[t]]
    store = Store(db)
    dataset = store.load_dataset(DATASET)
    seen = [(v.shuffles, ControllerSpec.builtin(CONTROLLER, {"beta": b})) for v in visitors for b in v.betas]
    seen += [(v.shuffles, typed_spec(round(BETA0 + moves * STEP, 2))) for v in visitors if v.typed_seconds]
    stored = store.get_results([result_key(dataset, spec, n, "compat") for n, spec in seen])
    for n, spec in seen:
        if result_key(dataset, spec, n, "compat") not in stored:
            problems.append(f"result missing: {spec.name} {dict(spec.config)} shuffles={n}")
    sample = seen[:: max(1, len(seen) // 6)]
    for n, spec in sample:  # recomputed without the store
        row = stored.get(result_key(dataset, spec, n, "compat"))
        if row is not None and row["metrics"]["accuracy"] != evaluate(dataset, spec, shuffles=n, trusted=True).accuracy:
            problems.append(f"stored accuracy differs: {spec.name} {dict(spec.config)} shuffles={n}")
    rows = ", ".join(f"{t} {after[t][0]}" for t in DATA_TABLES)
    return problems, (f"{len(seen)} evaluations the visitors saw looked up, {len(sample)} recomputed; "
                      f"row counts and checksums compared ({rows} rows)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help="concurrent browser contexts (one loops)")
    parser.add_argument("--moves", type=int, default=8, help="slider moves per visitor")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} not found (apt-get install -y chromium)")
    root = Path(tempfile.mkdtemp(prefix="ttslab-load-"))
    db = root / "ttslab.duckdb"
    try:
        (root / "data" / DATASET).parent.mkdir(parents=True)
        shutil.copy(data_dir() / f"{DATASET}.json", root / "data" / f"{DATASET}.json")
        Store(db).import_path(root / "data")
        before = data_fingerprint(db)
        expected = typed_expectations(db, args.sessions, args.moves)
        loads: list[float] = []
        with streamlit_app({"TTSLAB_DB": str(db), "TTSLAB_DATA": str(root / "data")}, root / "streamlit.log") as url:
            started = time.perf_counter()
            alone, class_, looper, loops = asyncio.run(asyncio.wait_for(
                drive(url, args.sessions, args.moves, expected, loads), DEADLINE_S))
            wall = time.perf_counter() - started
        problems, checked = check_store(db, before, [alone, *class_], args.moves)
        report(alone, class_, looper, loops, problems, checked, wall, loads, args)
        errors = [e for v in (alone, looper, *class_) for e in v.errors]
        return 1 if errors or problems else 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(alone: Visitor, class_: list[Visitor], looper: Visitor, loops: int, problems: list[str], checked: str,
           wall: float, loads: list[float], args: argparse.Namespace) -> None:
    together = [t for v in class_ for t in v.latencies]
    typed = [v.typed_seconds for v in class_ if v.typed_seconds is not None]
    a_med, a_p95 = statistics.median(alone.latencies), percentile(alone.latencies, 0.95)
    t_med, t_p95 = statistics.median(together), percentile(together, 0.95)
    errors = [e for v in (alone, looper, *class_) for e in v.errors]
    print(f"load test: /lab, {args.sessions} Chromium contexts on {os.cpu_count()} cores, one looping "
          f"({loops} runs ended by the episode limit), {args.moves} slider moves and one typed run each ({wall:.0f} s)")
    print(f"  machine load average (1 min) while it ran: mean {statistics.mean(loads):.1f}, max {max(loads):.1f} "
          f"(the browsers and the machine's other jobs included)")
    print(f"  slider-to-update, alone:    median {a_med:.2f} s   p95 {a_p95:.2f} s   ({len(alone.latencies)} moves)")
    print(f"  slider-to-update, together: median {t_med:.2f} s   p95 {t_p95:.2f} s   ({len(together)} moves)")
    print(f"  together / alone:           median {t_med / a_med:.1f}x   p95 {t_p95 / a_p95:.1f}x")
    if alone.typed_seconds and typed:
        print(f"  typed controller, Run to full result: alone {alone.typed_seconds:.1f} s, together median "
              f"{statistics.median(typed):.1f} s, max {max(typed):.1f} s ({len(typed)} runs)")
    print(f"  errors: {len(errors)}" + "".join(f"\n    {e[:200]}" for e in errors))
    print(f"  store: {'intact' if not problems else 'PROBLEMS'} ({checked})" + "".join(f"\n    {p}" for p in problems))


if __name__ == "__main__":
    sys.exit(main())
