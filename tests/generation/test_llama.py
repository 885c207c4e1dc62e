"""End to end with a real small LLM: SmolLM2-135M behind llama.cpp's OpenAI-compatible server
(tests/servers.llama_server). Real tokens and real probes; its answers are weak, so the tests check the
plumbing and the accounting, not quality."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import llama_server

from engine.evaluate import ControllerSpec, evaluate
from engine.generation import records
from engine.generation.backend import Sampling, prompt_format
from engine.generation.branches import BranchEngine, GrowthSettings
from engine.generation.collect import CollectSettings, collect
from engine.generation.live import compare, run_live
from engine.generation.openai_backend import OpenAIBackend
from engine.replay import OPEN
from engine.store import Store

QUESTIONS = [("What is 2 + 3?", "5"), ("What is 4 * 3?", "12")]
INTERVAL, MAX_TOKENS, BRANCHES = 16, 48, 3


def growth(seed: int) -> GrowthSettings:
    return GrowthSettings(interval=INTERVAL, max_tokens=MAX_TOKENS, prompt_format="chatml",
                          sampling=Sampling(seed=seed))


@pytest.fixture(scope="module")
def smol(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OpenAIBackend, Store]]:
    """SmolLM2 served by llama.cpp, and a store holding a tiny collection from it (2 questions x 3 branches)."""
    with llama_server() as url:
        backend = OpenAIBackend("smollm2", url, concurrency=2)
        store = Store(Path(tmp_path_factory.mktemp("smol")) / "smol.duckdb")
        collect(store, "smollm2/tiny", backend, questions=QUESTIONS,
                settings=CollectSettings(branches=BRANCHES, growth=growth(0), parallel=BRANCHES * 2))
        yield backend, store
        backend.close()


def test_collects_a_tiny_dataset(smol: tuple[OpenAIBackend, Store]) -> None:
    """Every branch of the real model is stored with one probe per interval boundary below its end and the
    closing probe at its end (the last probe is the final answer), its real token count within the cap, and
    string answers; the collection is a complete dataset."""
    _, store = smol
    assert records.get_run(store, "smollm2/tiny").status == "complete"
    dataset = store.load_dataset("smollm2/tiny")
    assert [len(q.branches) for q in dataset.questions] == [BRANCHES, BRANCHES]
    for q in dataset.questions:
        assert q.probe_freq == INTERVAL
        for b in q.branches:
            assert 0 < b.tokens <= MAX_TOKENS
            assert len(b.probes) == -(-b.tokens // INTERVAL) and b.probes[-1] == b.final
            assert all(isinstance(a, str) and a for a in (*b.probes, b.final))


def test_controller_runs_live_on_the_real_model(smol: tuple[OpenAIBackend, Store]) -> None:
    """A controller that probes runs live on the real model: replay's rules charge each probe read Δ, so the
    charge is the tokens the server reported generating, plus less than Δ for each opened branch that ended
    inside its last interval (its closing probe costs a full Δ, as in the public data); wall-clock and model
    time are recorded, and the gap against replay on the same questions is computed."""
    backend, store = smol
    dataset = store.load_dataset("smollm2/tiny")
    spec = ControllerSpec.builtin("parallel_probe", {"num_chains": 2, "T": 1, "warm_up": 1, "max_steps": 1})
    engine = BranchEngine(backend, prompt_format("chatml"), growth(1))
    run = run_live(dataset, spec, engine, questions=[1], pool=BRANCHES, store=store)
    assert len(run.episodes) == 1
    for e in run.episodes:
        assert e.actions[:2] == [-1, -1] and e.total_tokens > 0
        assert e.timing.tokens <= e.total_tokens < e.timing.tokens + INTERVAL * e.actions.count(OPEN)
        assert e.seconds >= e.model_seconds > 0
    gap = compare(evaluate(dataset, spec, shuffles=10), run)
    assert gap.live_tokens == run.avg_tokens and gap.replay_tokens > 0
