"""vLLM in-process (``vllm.LLM``): the backend for a GPU machine. Deliberately thin.

vLLM is imported only when this backend is built (``requirements-gpu.txt``), so nothing else needs
it. Prefix caching is on: a probe's prompt is the branch's prefix plus a short suffix, and the next
interval's prompt is the same prefix plus the interval just generated, so both reuse the branch's
KV cache instead of recomputing it. A batch goes to ``LLM.generate`` in one call (vLLM schedules it);
probes are greedy (temperature 0) with a small cap. The keyword dictionaries are built by plain
functions so the contract (sampling, caching, probes) is checked without a GPU.
"""

from __future__ import annotations

from typing import Any

from engine.generation.backend import PROBE_TOKENS, BackendError, Completion, Request, Sampling


def engine_kwargs(model: str, **options: Any) -> dict[str, Any]:
    """Arguments of ``vllm.LLM``: prefix caching on unless explicitly turned off; ``options`` pass
    through (``tensor_parallel_size``, ``max_model_len``, ``gpu_memory_utilization``, ...)."""
    return {"model": model, "enable_prefix_caching": True, **options}


def sample_kwargs(request: Request, sampling: Sampling) -> dict[str, Any]:
    """``SamplingParams`` of one branch interval."""
    return {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k,
            "seed": request.seed, "max_tokens": request.max_tokens}


def probe_kwargs(max_tokens: int = PROBE_TOKENS) -> dict[str, Any]:
    """``SamplingParams`` of an answer-forcing probe: greedy, capped."""
    return {"temperature": 0.0, "max_tokens": max_tokens}


class VLLMBackend:
    """``vllm.LLM`` behind the backend interface."""

    name = "vllm"

    def __init__(self, model: str, **options: Any) -> None:
        try:
            import vllm
        except ImportError:
            raise BackendError("vLLM is not installed here: `pip install -r requirements-gpu.txt` on a machine with "
                               "a CUDA GPU, or use --backend openai against a `vllm serve` server") from None
        self._vllm = vllm
        self.model = model
        self.options = options
        self.llm = vllm.LLM(**engine_kwargs(model, **options))

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "options": self.options}

    def close(self) -> None:
        """Stop the engine's worker processes now (else vLLM stops them at interpreter exit, after logging closed)."""
        self.llm.llm_engine.engine_core.shutdown()

    def generate(self, requests: list[Request], sampling: Sampling) -> list[Completion]:
        params = [self._vllm.SamplingParams(**sample_kwargs(r, sampling)) for r in requests]
        return self._run([r.prompt for r in requests], params)

    def probe(self, prompts: list[str], max_tokens: int = PROBE_TOKENS) -> list[Completion]:
        return self._run(prompts, self._vllm.SamplingParams(**probe_kwargs(max_tokens)))

    def _run(self, prompts: list[str], params: Any) -> list[Completion]:
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        return [Completion(text=o.outputs[0].text, tokens=len(o.outputs[0].token_ids),
                           finish_reason=str(o.outputs[0].finish_reason or "stop")) for o in outputs]
