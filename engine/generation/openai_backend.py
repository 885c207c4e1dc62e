"""Any OpenAI-compatible server through litellm's text completion endpoint.

``vllm serve``, llama.cpp's server, Ollama or a hosted model: the prompt is a text prefix and the
reply its continuation (``/v1/completions``). llama.cpp ignores ``n>1``, so a batch is sent as
parallel requests, at most ``concurrency`` at a time; a failed request is retried with exponential
backoff. On creation the server's ``/models`` list is read once, so an unreachable server or a
model it does not serve is a clear one-line ``BackendError`` before any work starts.

The API key comes from ``TTSLAB_API_KEY`` (or ``OPENAI_API_KEY``); it is passed to litellm only and
never recorded (``describe`` holds the server address without credentials or query string).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine.generation.backend import PROBE_TOKENS, BackendError, Completion, Request, Sampling

BACKOFF_SECONDS = 0.5


def public_url(url: str | None) -> str:
    """``url`` without user, password or query string: safe to store and show."""
    if not url:
        return ""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class OpenAIBackend:
    """Text completions from an OpenAI-compatible server (see the module docstring)."""

    name = "openai"

    def __init__(self, model: str, api_base: str | None, *, concurrency: int = 8, retries: int = 3,
                 timeout: float = 600.0, check: bool = True) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.model, self.api_base = model, (api_base or "").rstrip("/") or None
        self.concurrency, self.retries, self.timeout = concurrency, retries, timeout
        self._key = os.environ.get("TTSLAB_API_KEY") or os.environ.get("OPENAI_API_KEY") or "none"
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="ttslab-openai")
        if check and self.api_base:
            self._check_model()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "api_base": public_url(self.api_base),
                "concurrency": self.concurrency}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the interface -------------------------------------------------------------------------
    def generate(self, requests: list[Request], sampling: Sampling) -> list[Completion]:
        params = {"temperature": sampling.temperature, "top_p": sampling.top_p,
                  "extra_body": {"top_k": sampling.top_k}}
        calls = [dict(params, prompt=r.prompt, max_tokens=r.max_tokens, seed=r.seed) for r in requests]
        return list(self._pool.map(self._complete, calls))

    def probe(self, prompts: list[str], max_tokens: int = PROBE_TOKENS) -> list[Completion]:
        calls = [{"prompt": p, "max_tokens": max_tokens, "temperature": 0.0} for p in prompts]
        return list(self._pool.map(self._complete, calls))

    # -- one request ---------------------------------------------------------------------------
    def _complete(self, params: dict[str, Any]) -> Completion:
        import litellm

        litellm.suppress_debug_info = True
        attempt = 0
        while True:
            try:
                response = litellm.text_completion(
                    model=f"text-completion-openai/{self.model}", api_base=self.api_base, api_key=self._key,
                    timeout=self.timeout, num_retries=0, **params)
                return _completion(response)
            except (litellm.NotFoundError, litellm.AuthenticationError, litellm.BadRequestError) as exc:
                raise BackendError(f"{public_url(self.api_base) or 'the provider'} refused the request for "
                                   f"model {self.model!r}: {_first_line(exc)}") from None
            except Exception as exc:  # connection errors, 5xx, timeouts: retried
                attempt += 1
                if attempt > self.retries:
                    raise BackendError(f"request to {public_url(self.api_base) or 'the provider'} failed after "
                                       f"{attempt} attempts: {_first_line(exc)}") from None
                time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))

    def _check_model(self) -> None:
        """Read ``/models`` once: unreachable server or unknown model -> BackendError."""
        url = f"{self.api_base}/models"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self._key}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                listing = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError:
            return  # a server without a model list (or one that wants other credentials) may still complete
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BackendError(f"cannot reach the OpenAI-compatible server at {public_url(self.api_base)}: "
                               f"{reason}") from None
        served = [m.get("id") for m in listing.get("data", []) if isinstance(m, dict)]
        if served and self.model not in served:
            raise BackendError(f"model {self.model!r} is not served by {public_url(self.api_base)} "
                               f"(it serves: {', '.join(map(str, served))})")


def _completion(response: Any) -> Completion:
    choice = response.choices[0]
    text = choice.text or ""
    usage = getattr(response, "usage", None)
    tokens = getattr(usage, "completion_tokens", None)
    if tokens is None:
        raise BackendError("the server's reply has no usage.completion_tokens; token counts would be guesses")
    return Completion(text=text, tokens=int(tokens), finish_reason=str(choice.finish_reason or "stop"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
