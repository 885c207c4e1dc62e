"""A scripted "model" for ``servers.scripted_server``: deterministic text with answers at known places.

The content is scripted, not generated: a branch is a run of words (the scripted server counts one
token per whitespace word). Its first word names its variant, chosen from the request's seed; the
variant fixes the branch's length, the box it writes as its last word (``\\boxed{box}``) and the
answer probes give. An answer-forcing probe (a prompt ending in ``\\boxed{``) answers ``"No"``-worthy
empty braces before word ``NO_UNTIL``, then ``EARLY`` until half the branch, then ``final``. Variant
v1 boxes another answer than its probes give at its end, so tests see which one is the final answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.generation.backend import FORMATS, Sampling
from engine.generation.branches import GrowthSettings
from engine.generation.collect import CollectSettings

FMT = FORMATS["chatml"]
ASSISTANT = "<|im_start|>assistant\n"
NO_UNTIL = 20
EARLY = "5"
QUESTIONS = [("What is 6*7?", "42"), ("What is 1+12?", "13")]
INTERVAL = 10  # below NO_UNTIL, so early probes say "No"
MAX_TOKENS = 120  # variant v2 (130 words) is cut at the cap


@dataclass(frozen=True)
class Variant:
    length: int  # words, the own box included
    final: str  # what a probe answers from half the branch on
    box: str  # what the branch boxes itself at its end


VARIANTS = {"v0": Variant(100, "42", "42"), "v1": Variant(70, "42", "41"), "v2": Variant(130, "13", "13")}


def variant_of(seed: int) -> str:
    return f"v{seed % len(VARIANTS)}"


def probe_answer_at(variant: str, words: int) -> str:
    """The answer a probe gives after ``words`` words of a branch of ``variant`` (after cleaning)."""
    if words < NO_UNTIL:
        return "No"
    v = VARIANTS[variant]
    return v.final if 2 * words >= v.length else EARLY


def expected_branch(seed0: int, interval: int, max_tokens: int = 10_000) -> tuple[list[str], int, str]:
    """(probes, tokens, final) the procedure must record for a branch whose first request had ``seed0``:
    a probe at every interval boundary below its end (the cap if it was cut), then the closing probe at
    its end, which is also the final answer (the last probe is the final answer)."""
    name = variant_of(seed0)
    end = min(VARIANTS[name].length, max_tokens)
    probes = [probe_answer_at(name, p) for p in [*range(interval, end, interval), end]]
    return probes, end, probes[-1]


def reply(endpoint: str, body: dict) -> str:
    """The scripted server's reply (see the module docstring)."""
    prompt = body["prompt"]
    text = prompt.split(ASSISTANT, 1)[1]
    if prompt.endswith("\\boxed{"):
        words = text[: text.rindex(FMT.probe_suffix(""))].split()
        answer = probe_answer_at(words[0], len(words))
        return ("}" if answer == "No" else f"{answer}}}") + " trailing words"
    words = text.split()
    name = words[0] if words else variant_of(body["seed"])
    v = VARIANTS[name]
    n = min(body["max_tokens"], v.length - len(words))
    out = [name] if not words else []
    out += ["w"] * (n - len(out))
    if len(words) + n == v.length and n > 0:
        out[-1] = f"\\boxed{{{v.box}}}"
    return (" " if words else "") + " ".join(out)


def settings(branches: int = 4, seed: int = 0, parallel: int = 3) -> CollectSettings:
    """Collection settings of the scripted tests (chatml, Δ = INTERVAL, cap MAX_TOKENS)."""
    growth = GrowthSettings(interval=INTERVAL, max_tokens=MAX_TOKENS, prompt_format="chatml",
                            sampling=Sampling(seed=seed))
    return CollectSettings(branches=branches, growth=growth, parallel=parallel)


def expected_dataset(cfg: CollectSettings, n_questions: int) -> list[list[tuple[list[str], int, str]]]:
    """expected_branch for every (question, branch) of a collection with ``cfg``."""
    g = cfg.growth
    return [[expected_branch(g.sampling.request_seed(q, b, 0), g.interval, g.max_tokens)
             for b in range(cfg.branches)] for q in range(n_questions)]
