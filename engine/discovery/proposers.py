"""Who proposes candidates: any model through litellm, or Optuna over the beta-map family (offline).

The API key lives only in the ``LLMProposer`` object (or in the environment, where litellm finds
it): it is never part of a config, a stored row, a log line or an error message.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from engine.discovery import family

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm must never fetch prices at import


class ProposerError(Exception):
    """A request to the model failed (message scrubbed of secrets)."""


@dataclass(frozen=True)
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    usd: float
    seconds: float


class LLMProposer:
    """A chat model behind litellm: ``model`` is any litellm model string, ``api_base`` optional."""

    def __init__(self, model: str, *, api_base: str | None = None, api_key: str | None = None,
                 temperature: float = 0.7, max_tokens: int = 4096, timeout: float = 600.0) -> None:
        import litellm  # lazy: ~2 s to import

        litellm.suppress_debug_info = True
        logging.getLogger("LiteLLM").setLevel(logging.WARNING)
        self._litellm = litellm
        self.model, self.api_base = model, api_base
        # An OpenAI-compatible local server needs some key; it is not a secret.
        self._key = api_key or (None if api_base is None or _env_has_key(model) else "local")
        self.temperature, self.max_tokens, self.timeout = temperature, max_tokens, timeout

    def count_tokens(self, text: str) -> int:
        return int(self._litellm.token_counter(model=self.model, messages=[{"role": "user", "content": text}]))

    def ask(self, prompt: str) -> Reply:
        """One chat completion; cost from litellm's price map (0 for a model it does not price)."""
        start = time.perf_counter()
        try:
            response = self._litellm.completion(
                model=self.model, messages=[{"role": "user", "content": prompt}], api_base=self.api_base,
                api_key=self._key, temperature=self.temperature, max_tokens=self.max_tokens, timeout=self.timeout,
                num_retries=0)
        except Exception as exc:  # every provider error: report it, scrubbed
            raise ProposerError(self._scrub(f"{type(exc).__name__}: {exc}")[:2000]) from None
        seconds = time.perf_counter() - start
        text = response.choices[0].message.content or ""
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        return Reply(text, prompt_tokens, completion_tokens, self._cost(response), seconds)

    def _cost(self, response: object) -> float:
        try:
            return float(self._litellm.completion_cost(completion_response=response, model=self.model) or 0.0)
        except Exception:  # a model litellm does not price (a local one) costs nothing
            return 0.0

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key and self._key != "local" else text


def _env_has_key(model: str) -> bool:
    """Whether litellm will find a provider key for ``model`` in the environment."""
    provider = model.split("/", 1)[0].upper() if "/" in model else "OPENAI"
    return any(os.environ.get(v) for v in (f"{provider}_API_KEY", "OPENAI_API_KEY"))


class OfflineProposer:
    """Optuna's TPE over the family, on the session objective's terms: ``directions`` ["maximize"] for the
    curve score, or ["maximize", "minimize"] (multi-objective: search accuracy, tokens) for the point ones.

    The study is rebuilt from the session's finished trials each time, and the sampler is seeded
    by the number of trials, so a resumed session asks exactly what the killed one would have.
    """

    def __init__(self, seed: int = 0, directions: list[str] | None = None,
                 ranges: dict[str, tuple[float, float]] | None = None) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self.seed = seed
        self.directions = directions or ["maximize", "minimize"]
        self.ranges = ranges or {}  # per parameter (low, high); default: the knob's whole range for both ends

    def distributions(self) -> dict:
        d = self._optuna.distributions
        out = {}
        for knob, (kind, low, high) in family.KNOBS.items():
            for end in ("v0", "v1"):
                lo, hi = self.ranges.get(f"{knob}.{end}", (low, high))
                out[f"{knob}.{end}"] = d.IntDistribution(int(lo), int(hi)) if kind is int else \
                    d.FloatDistribution(lo, hi)
            out[f"{knob}.p"] = d.CategoricalDistribution(family.SHAPES)
        return out

    def ask(self, history: list[tuple[family.Params, list[float]]]) -> family.Params:
        """The next member to try, given ``(params, objective values)`` of every finished trial."""
        optuna = self._optuna
        dists = self.distributions()
        multivariate = len(self.directions) == 1  # the curve score: knobs interact, model them jointly
        sampler = optuna.samplers.TPESampler(seed=self.seed + len(history), n_startup_trials=10,
                                             multivariate=multivariate)
        study = optuna.create_study(directions=self.directions, sampler=sampler)
        for params, values in history:
            study.add_trial(optuna.trial.create_trial(params=_typed(params, dists), distributions=dists,
                                                      values=values))
        trial = study.ask(dists)
        return {k: trial.params[k] for k in dists}


def _typed(params: family.Params, dists: dict) -> dict:
    """Stored JSON numbers back to the types the distributions hold (ints stay ints)."""
    out = {}
    for k, dist in dists.items():
        v = params[k]
        out[k] = round(v) if type(dist).__name__ == "IntDistribution" else float(v)
    return out
