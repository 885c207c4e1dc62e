"""The vLLM backend's contract: sampling parameters, prefix caching, greedy capped probes.

The keyword dictionaries are checked everywhere; the real engine only where vllm and a GPU are present
(the CI machines have neither, and `vllm` from PyPI cannot run without CUDA: ecosystem-notes.md)."""

from __future__ import annotations

import importlib.util
import os

import pytest

from engine.generation.backend import PROBE_TOKENS, BackendConfig, BackendError, Request, Sampling, make_backend
from engine.generation.vllm_backend import engine_kwargs, probe_kwargs, sample_kwargs

MODEL_ENV = "TTSLAB_VLLM_MODEL"  # a local model path or name the GPU machine has


def test_engine_turns_prefix_caching_on() -> None:
    """Probes and the next interval reuse the branch's KV cache only with prefix caching on."""
    assert engine_kwargs("m", tensor_parallel_size=2) == {"model": "m", "enable_prefix_caching": True,
                                                          "tensor_parallel_size": 2}
    assert engine_kwargs("m", enable_prefix_caching=False)["enable_prefix_caching"] is False


def test_sampling_and_probe_parameters() -> None:
    """Intervals sample with the chosen temperature/top-p/top-k and a per-request seed; probes are greedy, capped."""
    request = Request("p", 500, seed=7)
    assert sample_kwargs(request, Sampling(0.7, 0.95, 20, 0)) == {
        "temperature": 0.7, "top_p": 0.95, "top_k": 20, "seed": 7, "max_tokens": 500}
    assert probe_kwargs() == {"temperature": 0.0, "max_tokens": PROBE_TOKENS}


def _gpu_reason() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (requirements-gpu.txt, CUDA machines only)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU"
    if not os.environ.get(MODEL_ENV):
        return f"set {MODEL_ENV} to a local model for the vLLM contract test"
    return None


def test_missing_vllm_is_a_clear_error() -> None:
    """Without vllm installed, choosing the backend says what to install or use instead."""
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    with pytest.raises(BackendError, match="vLLM is not installed"):
        make_backend(BackendConfig("vllm", "any"))


@pytest.mark.skipif(_gpu_reason() is not None, reason=str(_gpu_reason()))
def test_vllm_generates_and_probes() -> None:
    """On a GPU: intervals stop at their cap, probes at 32 tokens, and the same seed gives the same text."""
    backend = make_backend(BackendConfig("vllm", os.environ[MODEL_ENV], options={"max_model_len": 2048}))
    prompts = [Request("Question: 2 + 3 = ?\nAnswer:", 16, seed=1)] * 2
    first, second = backend.generate(prompts, Sampling())
    assert first.text == second.text and first.tokens <= 16
    (probe,) = backend.probe(["The answer is \\boxed{"])
    assert probe.tokens <= PROBE_TOKENS
