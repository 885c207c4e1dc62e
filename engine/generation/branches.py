"""Growing branches interval by interval: the one procedure collection and live episodes share.

A branch is a text continuation of the question's prompt. ``BranchEngine.advance`` moves a batch of
branches forward by one interval of Δ tokens (one ``generate`` call for the whole batch), then
probes every branch that is still running: its text plus an answer-forcing suffix ending in
``\\boxed{``, decoded greedily with a small cap (one ``probe`` call for the batch). A branch ends when
the model stops on its own or reaches ``max_tokens``.

**The last probe is the final answer** (issue 9, and what every public AutoTTS file shows: in all
46,080 branches ``probe_list[-1] == final_answer``, and a branch of ``t`` tokens holds at most
``t // 500 + 1`` probes, i.e. one per boundary it ran past plus one at its end). So an ended branch is
probed once more at its end (the *closing probe*, unless the probe of that very step already sits at
its end), and that answer is both appended to ``probes`` and the final answer. Only when the closing
probe gives no answer ("No"/"ERR") and the branch boxed one itself is its own box used instead (still
stored as the last probe): the public finals are placeholders far less often than the probes just
before them (0.03% "No" and 1.0% "ERR" against 0.7% and 1.9%), which suggests such a fallback.

A branch of ``L`` tokens thus has ``probe_list[k]`` = its answer after ``(k+1)*Δ`` tokens for every
boundary below ``L``, then its final answer, exactly the layout replay reads; probing it to the end
costs ``Δ*len(probe_list)`` (``≥ L``), as in replay. Tokens are those the backend reports
(``usage.completion_tokens``); probe tokens are never charged, as in replay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from engine.generation import answers
from engine.generation.backend import PROBE_TOKENS, Backend, PromptFormat, Request, Sampling


@dataclass(frozen=True)
class GrowthSettings:
    """How branches grow: interval Δ, the cap, sampling, prompt format and probe cap."""

    interval: int = 500
    max_tokens: int = 40_960
    sampling: Sampling = field(default_factory=Sampling)
    prompt_format: str = "qwen3-think"
    probe_tokens: int = PROBE_TOKENS

    def __post_init__(self) -> None:
        if self.interval < 1 or self.max_tokens < 1 or self.probe_tokens < 1:
            raise ValueError("interval, max_tokens and probe_tokens must be positive")


@dataclass
class BranchState:
    """One branch being generated; ``final`` is set once it ended."""

    q_idx: int
    b_idx: int
    prompt: str
    text: str = ""
    tokens: int = 0
    probes: list[str] = field(default_factory=list)
    final: str | None = None
    steps: int = 0

    @property
    def done(self) -> bool:
        return self.final is not None


@dataclass
class Timing:
    """Wall-clock seconds spent in generation and in probes, and the tokens generated."""

    generate_seconds: float = 0.0
    probe_seconds: float = 0.0
    tokens: int = 0
    generate_calls: int = 0
    probe_calls: int = 0

    def add(self, other: Timing) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class BranchEngine:
    """A backend, a prompt format and growth settings: advances branches (module docstring)."""

    def __init__(self, backend: Backend, fmt: PromptFormat, settings: GrowthSettings) -> None:
        self.backend, self.fmt, self.settings = backend, fmt, settings

    def new_branch(self, q_idx: int, b_idx: int, question: str) -> BranchState:
        return BranchState(q_idx, b_idx, self.fmt.prompt(question))

    def advance(self, states: list[BranchState], *, to_end: bool = False) -> Timing:
        """One interval for every running branch in ``states`` (``to_end``: the whole rest, no probes)."""
        cfg, timing = self.settings, Timing()
        running = [s for s in states if not s.done]
        if not running:
            return timing
        caps = [cfg.max_tokens - s.tokens if to_end else min(cfg.interval, cfg.max_tokens - s.tokens)
                for s in running]
        requests = [Request(s.prompt + s.text, cap, cfg.sampling.request_seed(s.q_idx, s.b_idx, s.steps))
                    for s, cap in zip(running, caps, strict=True)]
        start = time.perf_counter()
        outs = self.backend.generate(requests, cfg.sampling)
        timing.generate_seconds, timing.generate_calls = time.perf_counter() - start, len(requests)
        to_probe, at_end = [], []
        for s, cap, out in zip(running, caps, outs, strict=True):
            s.text += out.text
            s.tokens += out.tokens
            s.steps += 1
            timing.tokens += out.tokens
            if not (out.ended(cap) or s.tokens >= cfg.max_tokens or to_end):
                to_probe.append(s)
            elif out.tokens == 0 and s.probes:  # stopped right where the last probe was taken
                self._close(s, s.probes.pop())
            else:
                at_end.append(s)
        self._probe(to_probe + at_end, len(to_probe), timing)
        return timing

    def _probe(self, states: list[BranchState], n_running: int, timing: Timing) -> None:
        """Probe answers: appended to the first ``n_running`` branches, closing probes for the others."""
        if not states:
            return
        prompts = [s.prompt + s.text + self.fmt.probe_suffix(s.text) for s in states]
        start = time.perf_counter()
        outs = self.backend.probe(prompts, self.settings.probe_tokens)
        timing.probe_seconds, timing.probe_calls = time.perf_counter() - start, len(prompts)
        for i, (s, out) in enumerate(zip(states, outs, strict=True)):
            answer = answers.probe_answer(out.text)
            if i < n_running:
                s.probes.append(answer)
            else:
                self._close(s, answer)

    @staticmethod
    def _close(s: BranchState, closing: str) -> None:
        """End ``s`` with the answer of its closing probe as last probe and final answer (module docstring)."""
        own = answers.final_answer(s.text) if closing in answers.PLACEHOLDERS else None
        s.final = own if own is not None and own not in answers.PLACEHOLDERS else closing
        s.probes.append(s.final)
