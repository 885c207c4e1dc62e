"""Private by default, shared behind a token: real `streamlit run` servers, probed over HTTP and in Chromium."""

import base64
import http.client
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from streamlit import net_util
from test_home_browser import (
    PAGE_MS,
    chromium,
    data_file,
    free_port,
    require_chromium,
    stop_process,
    wait_healthy,
)

from engine.paths import PROJECT_ROOT
from ui.access import COOKIE, PRIVATE_MESSAGE

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]
__all__ = ["data_file"]  # a fixture, imported for its use here

LAN_IP = net_util.get_internal_ip()


@contextmanager
def streamlit_server(script: str, root: Path, *args: str,
                     env: dict[str, str] | None = None) -> Iterator[tuple[int, Path]]:
    """`streamlit run <script> <args>` on a free port with a temp store (TTSLAB_DB in ``root``); port and log."""
    port = free_port()
    log = root / f"streamlit-{port}.log"
    full_env = {**os.environ, "TTSLAB_DB": str(root / "ttslab.duckdb"), "TTSLAB_DATA": str(root / "data"),
                "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})}
    cmd = [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / script), "--server.headless", "true",
           "--server.port", str(port), "--browser.gatherUsageStats", "false", *args]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, log)
        yield port, log
    finally:
        stop_process(proc)


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


def handshake_status(port: int, host: str) -> int:
    """HTTP status of a WebSocket handshake to the app's stream with this Host header (101 = accepted)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/_stcore/stream", headers={
            "Host": host, "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()})
        return conn.getresponse().status
    finally:
        conn.close()


def get(url: str, cookie: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Cookie": f"{COOKIE}={cookie}"} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture(scope="module")
def shared(data_file: Path) -> Iterator[tuple[str, str, Path, Path]]:
    """`make serve`'s command (serve.py on 0.0.0.0) with a generated token: (url, token, db, log)."""
    require_chromium()
    root = data_file.parents[2]
    with streamlit_server("serve.py", root, "--server.address", "0.0.0.0", "--server.allowedHosts", "*",
                          env={"TTSLAB_SHARE": "1"}) as (port, log):
        links = re.findall(r"http://\S+\?token=(\S+)", log.read_text())
        assert links, log.read_text()
        yield f"http://127.0.0.1:{port}", links[0], root / "ttslab.duckdb", log


@pytest.fixture
def browser():
    with chromium() as browser:
        yield browser


@pytest.mark.parametrize("script", ["serve.py", "app.py"])
def test_private_server_listens_on_loopback_only(tmp_path, script):
    """`make run`'s entry (and a bare `streamlit run app.py`) with the project's config binds
    127.0.0.1 only: the machine's LAN address is refused, and so is a page under another host name."""
    (tmp_path / "data").mkdir()
    with streamlit_server(script, tmp_path) as (port, _):
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, and no IPv6 or wildcard socket
        assert handshake_status(port, f"localhost:{port}") == 101
        assert handshake_status(port, f"rebound.example:{port}") == 403  # a web page via DNS rebinding
        if LAN_IP:
            with pytest.raises(urllib.error.URLError):
                urllib.request.urlopen(f"http://{LAN_IP}:{port}/_stcore/health", timeout=5)


@pytest.mark.skipif(not LAN_IP, reason="this machine has no non-loopback address to connect from")
def test_private_app_bound_to_the_network_by_hand_still_refuses_remote_clients(tmp_path, browser):
    """The private server bound to 0.0.0.0 by hand: a client from another address opening /lab first
    sees only the refusal (app.py runs before any page, even on a fresh server)."""
    (tmp_path / "data").mkdir()
    network = ("--server.address", "0.0.0.0", "--server.allowedHosts", "*")
    with streamlit_server("serve.py", tmp_path, *network) as (port, _):
        page = browser.new_page()
        page.set_default_timeout(PAGE_MS)
        page.goto(f"http://{LAN_IP}:{port}/lab")
        page.get_by_test_id("stAlert").wait_for()
        assert PRIVATE_MESSAGE.replace("`", "") in page.get_by_test_id("stAlert").inner_text()
        assert page.get_by_role("heading", name="Controller lab").count() == 0  # /lab's script never ran
    assert not (tmp_path / "ttslab.duckdb").exists()  # no page opened the store


def test_without_the_token_nothing_but_the_prompt_answers(shared):
    """Every path (pages, static files, config, media, the WebSocket) answers 401/403 without the token."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url, _, db, _ = shared
    for path in ("/", "/lab", "/static/js/index.js", "/_stcore/host-config", "/media/x.png", "/_stcore/metrics"):
        status, body = get(url + path)
        assert status == 401, path
        assert "<script" not in body and "Access token" in body
    status, body = get(f"{url}/?token=not-the-token")
    assert (status, "That token is not right." in body) == (401, True)
    with pytest.raises(InvalidStatus, match="403"):
        connect(url.replace("http", "ws") + "/_stcore/stream", open_timeout=10)
    assert get(url + "/_stcore/health") == (200, "ok")
    assert not db.exists()  # no script ran: the first page run would have created the store


def test_a_browser_without_the_token_sees_the_prompt_and_runs_nothing(shared, browser):
    """Chromium without the token: the token page only, a wrong token is refused, no store is created."""
    url, _, db, _ = shared
    page = browser.new_page()
    page.goto(url + "/lab")
    assert page.locator('[data-testid="stApp"]').count() == 0
    page.get_by_label("Access token").fill("wrong-token-wrong-token")
    page.get_by_role("button", name="Open TTS Lab").click()
    assert page.get_by_text("That token is not right.").is_visible()
    time.sleep(1)
    assert not db.exists()


def test_the_token_link_opens_the_app_and_leaves_no_trace(shared, browser):
    """The printed link opens the app; the token leaves the URL, never reaches the store and is
    printed only in the start-up banner; the cookie keeps the browser in on the next visit."""
    url, token, db, log = shared
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(PAGE_MS)
    page.goto(f"{url}/?token={token}")
    page.get_by_test_id("stMetric").first.wait_for()
    assert token not in page.url
    again = context.new_page()
    again.set_default_timeout(PAGE_MS)
    again.goto(f"{url}/lab")
    again.get_by_role("heading", name="Controller lab").wait_for()
    assert db.exists()
    for file in (db, Path(f"{db}.wal")):
        assert not file.exists() or token.encode() not in file.read_bytes()
    lines_with_token = [line for line in log.read_text().splitlines() if token in line]
    assert lines_with_token and all(line.strip().startswith("http") for line in lines_with_token)


def test_typing_the_token_opens_the_app(shared, browser):
    """The token typed into the prompt (a POST, so it never sits in a URL) lets the browser in."""
    url, token, _, _ = shared
    page = browser.new_page()
    page.set_default_timeout(PAGE_MS)
    page.goto(url)
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Open TTS Lab").click()
    page.get_by_test_id("stMetric").first.wait_for()
    assert page.url.rstrip("/") == url
