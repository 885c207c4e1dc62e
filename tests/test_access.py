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
