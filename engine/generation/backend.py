"""The one narrow interface every generation backend answers, and the prompts it is fed.

A backend continues text prefixes: ``generate(prompts, max_tokens)`` samples one continuation per
prompt (a branch's next interval), ``probe(prompts)`` decodes greedily with a small cap (the
answer-forcing call). Both take a batch, so vLLM can schedule it at once and a server backend can
send it in parallel. Collection (``collect.py``) and live episodes (``live.py``) are written
against this interface only: open = a new branch's first ``generate``, advance = the next
``generate``, probe = ``probe``; neither knows which backend it drives.

Prompts are plain text (the completions endpoint): the caller applies the chat template
(``PromptFormat``), as ecosystem-notes.md says llama.cpp's server needs on that endpoint.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

BACKENDS = ("openai", "vllm")
PROBE_TOKENS = 32  # the cap of an answer-forcing probe


class BackendError(OSError):
    """A backend cannot serve requests (unreachable server, unknown model, bad reply): one line.
    An ``OSError`` (an outside service failed), so the CLI and the app show it as a user error."""


@dataclass(frozen=True)
class Sampling:
    """How branches are sampled; defaults follow how the public data was made (issue 9)."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 20
    seed: int = 0

    def request_seed(self, *key: int) -> int:
        """A per-request seed derived from ``seed`` and the request's place (question, branch, step),
        so a branch's sampling does not depend on what else was in the batch."""
        digest = hashlib.sha256(repr((self.seed, *key)).encode()).digest()
        return int.from_bytes(digest[:4], "big") >> 1


@dataclass(frozen=True)
class Request:
    """One continuation: the full text prefix, how many tokens at most, and its seed."""

    prompt: str
    max_tokens: int
    seed: int = 0


@dataclass(frozen=True)
class Completion:
    """What a backend returns for one request. ``tokens`` is the count the backend reports."""

    text: str
    tokens: int
    finish_reason: str = "stop"

    def ended(self, max_tokens: int) -> bool:
        """True when the model stopped on its own (not cut by the cap)."""
        return self.tokens < max_tokens and self.finish_reason != "length"


class Backend(Protocol):
    """Continuation of text prefixes; see the module docstring."""

    name: str
    model: str

    def generate(self, requests: list[Request], sampling: Sampling) -> list[Completion]:
        """Sample one continuation per request (same order)."""
        ...

    def probe(self, prompts: list[str], max_tokens: int = PROBE_TOKENS) -> list[Completion]:
        """Greedy continuations of at most ``max_tokens`` (same order)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What to record about this backend (never a secret)."""
        ...


@dataclass(frozen=True)
class PromptFormat:
    """How a question becomes a prompt and how a probe forces an answer.

    ``think``: the model reasons inside ``<think>`` (Qwen3's thinking mode); a probe then closes the
    thinking before asking for the answer, unless the branch already closed it.
    """

    name: str
    head: str
    think: bool = False
    instruction: str = "Please reason step by step, and put your final answer within \\boxed{}."
    probe_tail: str = "\n\n**Final Answer**\n\\[ \\boxed{"

    def prompt(self, question: str) -> str:
        return self.head.format(question=f"{question}\n{self.instruction}")

    def probe_suffix(self, text: str) -> str:
        """Appended to a branch's text so far: close the thinking if open, then end in ``\\boxed{``."""
        if self.think and "</think>" not in text:
            return "\nTime is up: I must answer now.\n</think>" + self.probe_tail
        return self.probe_tail

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CHATML = "<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
FORMATS: dict[str, PromptFormat] = {
    "qwen3-think": PromptFormat("qwen3-think", CHATML + "<think>\n", think=True),
    "chatml": PromptFormat("chatml", CHATML),
    "plain": PromptFormat("plain", "Question: {question}\nAnswer: Let's think step by step.\n"),
}


def prompt_format(name: str) -> PromptFormat:
    """A prompt format by name, with the known names in the error."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown prompt format {name!r}; use one of {', '.join(FORMATS)}") from None


@dataclass(frozen=True)
class BackendConfig:
    """Everything needed to build a backend; ``api_key`` is read from the environment, never stored."""

    backend: str
    model: str
    api_base: str | None = None
    concurrency: int = 8
    retries: int = 3
    timeout: float = 600.0
    options: dict[str, Any] = field(default_factory=dict)  # vLLM engine arguments


def make_backend(config: BackendConfig) -> Backend:
    """The backend named by ``config.backend`` (vLLM is imported only when chosen)."""
    if config.backend == "openai":
        from engine.generation.openai_backend import OpenAIBackend

        return OpenAIBackend(config.model, config.api_base, concurrency=config.concurrency,
                             retries=config.retries, timeout=config.timeout)
    if config.backend == "vllm":
        from engine.generation.vllm_backend import VLLMBackend

        return VLLMBackend(config.model, **config.options)
    raise ValueError(f"unknown backend {config.backend!r}; use one of {', '.join(BACKENDS)}")
