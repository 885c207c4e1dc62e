"""ui.access without a server: who the app-script check lets in, and the token rules."""

import pytest
from streamlit.testing.v1 import AppTest

from engine.paths import PROJECT_ROOT
from ui import access


@pytest.fixture
def gate(monkeypatch) -> access.Gate:
    """A gate installed as this process's, removed afterwards."""
    gate = access.Gate("a-token-of-enough-length")
    monkeypatch.setattr(access, "_GATE", gate)
    return gate


def test_private_mode_lets_in_this_computer_only(monkeypatch):
    """Without sharing, loopback (or no address: a local socket) is in; any other address is refused."""
    monkeypatch.delenv(access.SHARE_ENV, raising=False)
    assert access.refusal(None, None) is None
    assert access.refusal(None, "127.0.0.1") is None and access.refusal(None, "::1") is None
    assert access.refusal(None, "192.0.2.7") == access.PRIVATE_MESSAGE


def test_shared_mode_needs_the_cookie_whatever_the_address(gate):
    """Behind the gate, only the cookie derived from the token counts; the address does not."""
    assert access.refusal(gate.cookie_value, "192.0.2.7") is None
    assert access.refusal(None, None) == access.TOKEN_MESSAGE
    assert access.refusal("a-token-of-enough-length", None) == access.TOKEN_MESSAGE  # the token is not the cookie


def test_sharing_asked_without_the_gate_fails_closed(monkeypatch, tmp_path):
    """TTSLAB_SHARE=1 with a bare `streamlit run app.py`: every session is refused and no page runs."""
    monkeypatch.setenv(access.SHARE_ENV, "1")
    monkeypatch.setenv("TTSLAB_DB", str(tmp_path / "ttslab.duckdb"))
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()
    assert [e.value for e in at.error] == [access.UNGATED_MESSAGE]
    assert not (tmp_path / "ttslab.duckdb").exists()


def test_an_operator_token_must_be_long(monkeypatch):
    """A short TTSLAB_TOKEN stops the server at start with the rule, instead of serving a guessable one."""
    with pytest.raises(access.AccessError, match="at least 16 characters"):
        access.Gate("short")


def test_links_carry_the_token_and_the_cookie_does_not(gate):
    """The printed links hold the token; the cookie is an HMAC that does not reveal it."""
    assert gate.links(8501, ["localhost"]) == ["http://localhost:8501/?token=a-token-of-enough-length"]
    assert "a-token" not in gate.cookie_value and len(gate.cookie_value) == 64


def call_gate(gate: access.Gate, path: str, query: str = "", cookie: str = "") -> tuple[int, dict[bytes, bytes]]:
    """One HTTP GET through TokenGate in front of an app that answers 200: (status, headers)."""
    import asyncio

    async def downstream(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
             "headers": [(b"cookie", cookie.encode())] if cookie else []}
    asyncio.run(access.TokenGate(downstream, gate)(scope, receive, send))
    return sent[0]["status"], dict(sent[0]["headers"])


def test_the_redirect_after_the_token_stays_on_this_server(gate):
    """A link like //evil.example?token=... redirects to a path here, never to another host."""
    status, headers = call_gate(gate, "//evil.example/x", "token=a-token-of-enough-length&dataset=a")
    assert status == 303 and headers[b"location"] == b"/evil.example/x?dataset=a"
    assert headers[b"set-cookie"].startswith(f"{access.COOKIE}={gate.cookie_value}; Path=/;".encode())
    assert b"HttpOnly" in headers[b"set-cookie"]


def test_the_cookie_is_found_among_other_sites_odd_cookies(gate):
    """Cookies of other apps on the same host (quotes, JSON, no value) do not hide the access cookie."""
    odd = f'a="{{\\"x\\": 1}}"; flag; {access.COOKIE}={gate.cookie_value}; b=c d'
    assert call_gate(gate, "/lab", cookie=odd)[0] == 200
    assert call_gate(gate, "/lab", cookie="ttslab_access=forged")[0] == 401
