"""Who may use this server: private by default, shared on purpose behind an access token.

Private (``make run``): the server listens on 127.0.0.1 (``.streamlit/config.toml``), and
``require_access`` also turns away any client that is not on this computer, should someone bind it
elsewhere by hand.

Shared (``make serve``: ``TTSLAB_SHARE=1 streamlit run serve.py``): every HTTP request and the app's WebSocket
pass through ``TokenGate``, an ASGI middleware, before Streamlit sees them. Without a valid access
cookie a visitor gets one small page asking for the token (no Streamlit code, no session, so no
script runs and no data leaves the server); the health check is the only other thing that answers.
The token comes once, in the link printed at start (``?token=...``, as Jupyter does) or typed into
that page; the gate then sets an HttpOnly cookie holding an HMAC of the token (never the token) and
redirects to the same URL without it, so the token stays out of the address bar, share links and
history. ``require_access`` checks the cookie again inside the app script, before any page runs.
The token is printed once on the operator's terminal and is never logged or stored.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode

COOKIE = "ttslab_access"
TOKEN_PARAM = "token"
TOKEN_ENV = "TTSLAB_TOKEN"
SHARE_ENV = "TTSLAB_SHARE"
MIN_TOKEN_CHARS = 16
MAX_FORM_BYTES = 4096
COOKIE_DAYS = 30

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_GATE: Gate | None = None  # set by share_gate(): this process serves behind the token gate


class AccessError(SystemExit):
    """The operator's sharing settings are unusable (raised at start, with the fix)."""


class Gate:
    """One server's access token, and the cookie value that proves a browser knew it."""

    def __init__(self, token: str) -> None:
        if len(token) < MIN_TOKEN_CHARS:
            raise AccessError(f"{TOKEN_ENV} must be at least {MIN_TOKEN_CHARS} characters long "
                              "(or leave it unset to get a random token)")
        self._token = token
        self.cookie_value = hmac.new(token.encode(), b"ttslab-access-v1", hashlib.sha256).hexdigest()

    def token_ok(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), self._token.encode())

    def cookie_ok(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), self.cookie_value.encode())

    def links(self, port: int, hosts: list[str], scheme: str = "http") -> list[str]:
        """The URLs to hand out, token included (printed once, on the operator's terminal)."""
        return [f"{scheme}://{host}:{port}/?{TOKEN_PARAM}={self._token}" for host in hosts]


def share_gate() -> Gate:
    """This process's gate, created once: token from ``TTSLAB_TOKEN`` (then removed from the
    environment, so no child process inherits it) or a fresh random one."""
    global _GATE
    if _GATE is None:
        _GATE = Gate(os.environ.pop(TOKEN_ENV, None) or secrets.token_urlsafe(24))
    return _GATE


def sharing_requested() -> bool:
    """``TTSLAB_SHARE=1``: the operator asked for a shared server."""
    return os.environ.get(SHARE_ENV, "").lower() in ("1", "true", "yes")


# -- the ASGI layer ---------------------------------------------------------------------------
class TokenGate:
    """ASGI middleware: nothing but the token page and the health check without the access cookie."""

    def __init__(self, app: ASGIApp, gate: Gate, base_path: str = "") -> None:
        self.app, self.gate = app, gate
        self.health = f"/{base_path.strip('/')}/_stcore/health".replace("//", "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or scope["path"] == self.health:
            return await self.app(scope, receive, send)
        if self.gate.cookie_ok(_cookies(scope).get(COOKIE)):
            return await self.app(scope, receive, send)
        if kind == "websocket":  # closing before accepting answers the handshake with 403
            return await send({"type": "websocket.close", "code": 1008})
        await self._login(scope, receive, send)

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The token page; a correct token (form or ``?token=``) sets the cookie and redirects."""
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        offered = dict(query).get(TOKEN_PARAM)
        if scope["method"] == "POST":
            offered = await _form_token(receive)
        if self.gate.token_ok(offered):
            rest = urlencode([(k, v) for k, v in query if k != TOKEN_PARAM])
            path = "/" + scope.get("raw_path", scope["path"].encode()).decode("latin-1").lstrip("/")  # never //host
            location = path + (f"?{rest}" if rest else "")
            return await _respond(send, 303, b"", [(b"location", location.encode("latin-1")),
                                                   (b"set-cookie", self._cookie(scope))])
        wrong = offered is not None
        await _respond(send, 401, _login_page(wrong).encode(), [(b"content-type", b"text/html; charset=utf-8")],
                       head=scope["method"] == "HEAD")

    def _cookie(self, scope: Scope) -> bytes:
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        return (f"{COOKIE}={self.gate.cookie_value}; Path=/; Max-Age={COOKIE_DAYS * 86400}; HttpOnly; "
                f"SameSite=Lax{secure}").encode()


def _cookies(scope: Scope) -> dict[str, str]:
    """The request's cookies (a plain split: other sites' odd cookies on the same host do not matter)."""
    raw = b"; ".join(v for k, v in scope.get("headers", []) if k == b"cookie").decode("latin-1")
    pairs = (part.strip().partition("=") for part in raw.split(";"))
    return {name: value.strip('"') for name, _, value in pairs if name}


async def _form_token(receive: Receive) -> str | None:
    """The ``token`` field of a small urlencoded form body (larger bodies are not read)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            return None
        if not message.get("more_body"):
            break
    return dict(parse_qsl(body.decode("utf-8", "replace"))).get(TOKEN_PARAM)


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]],
                   head: bool = False) -> None:
    common = [(b"cache-control", b"no-store"), (b"content-length", str(len(body)).encode()),
              (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]
    await send({"type": "http.response.start", "status": status, "headers": common + headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def _login_page(wrong: bool) -> str:
    note = '<p class="wrong">That token is not right.</p>' if wrong else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>TTS Lab: access token</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
input{{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}}button{{margin-top:.8rem;font-size:1rem}}
.wrong{{color:#b00020}}</style></head>
<body><h1>TTS Lab</h1>
<p>This server is shared with an access token. Open the link the operator gave you, or type the token.</p>
{note}<form method="post"><label for="token">Access token</label>
<input id="token" name="{TOKEN_PARAM}" type="password" autocomplete="off" autofocus>
<button type="submit">Open TTS Lab</button></form></body></html>"""


def middleware(base_path: str = "") -> list[Any]:
    """The st.App middleware for this process: the token gate when sharing, else none."""
    from starlette.middleware import Middleware

    return [Middleware(TokenGate, gate=share_gate(), base_path=base_path)] if sharing_requested() else []


@asynccontextmanager
async def announce(_app: Any) -> AsyncIterator[None]:
    """st.App lifespan: when sharing, print the links with the token once the port is final (as Jupyter does)."""
    from streamlit import config, net_util

    if _GATE is None:
        yield
        return
    port = int(config.get_option("server.port"))
    address = config.get_option("server.address") or "0.0.0.0"
    hosts = ["localhost"]
    if address in ("0.0.0.0", "::"):
        hosts += [ip] if (ip := net_util.get_internal_ip()) else []
    elif not _is_loopback(address):
        hosts = [address]
    links = share_gate().links(port, hosts, "https" if config.get_option("server.sslCertFile") else "http")
    print("\n  TTS Lab is shared. Visitors need the access token; give them this link:\n"
          + "".join(f"    {link}\n" for link in links), flush=True)
    yield


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# -- the app-script layer ---------------------------------------------------------------------
PRIVATE_MESSAGE = ("This TTS Lab server is private: it serves only the computer it runs on. "
                   "To share it, its operator starts it with `make serve`.")
TOKEN_MESSAGE = "This TTS Lab server needs an access token: open the link its operator gave you."
UNGATED_MESSAGE = ("TTSLAB_SHARE=1 is set but the token gate is not: start a shared server with "
                   "`make serve` (streamlit run serve.py), not `streamlit run app.py`.")


def refusal(cookie: str | None, client_ip: str | None) -> str | None:
    """Why this browser session may not use the app (None: it may). ``client_ip`` None = this computer."""
    if _GATE is not None:
        return None if _GATE.cookie_ok(cookie) else TOKEN_MESSAGE
    if sharing_requested():
        return UNGATED_MESSAGE
    return None if client_ip is None or _is_loopback(client_ip) else PRIVATE_MESSAGE


def _is_loopback(ip: str) -> bool:
    return _is_ip(ip) and ipaddress.ip_address(ip).is_loopback


def require_access() -> None:
    """Call in app.py before ``st.navigation``: a refused session sees one line, and no page runs."""
    import streamlit as st

    ip = st.context.ip_address  # str, or None for this computer (AppTest gives a stand-in object)
    reason = refusal(st.context.cookies.get(COOKIE), ip if isinstance(ip, str) else None)
    if reason is not None:
        st.title("TTS Lab")
        st.error(reason)
        st.stop()
