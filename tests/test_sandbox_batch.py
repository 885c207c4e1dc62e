"""Many (dataset, spec) pairs of one controller code in one sandbox pool (discovery's sweeps).

``run_sandboxed_batch`` loads the code once per worker and audits the whole batch once; each pair's
figures must be exactly those of the same pair run alone, and ``evaluate_pairs`` must cache them under
the keys ``evaluate`` uses. Real data (the AutoTTS files) and real sandboxed worker processes.
"""

from __future__ import annotations

import base64
import dataclasses
from functools import cache

import pytest

from engine.dataset import Dataset
from engine.evaluate import ControllerSpec, evaluate, evaluate_pairs, result_key, run_python
from engine.formats.autotts import load_autotts_file
from engine.paths import PROJECT_ROOT, data_dir
from engine.replay import Episode, replay_questions, shuffled_order
from engine.sandbox import Limits, SandboxError, preloads, run_sandboxed_batch
from engine.sandbox_episodes import pack_requests, serve, unpack_requests
from engine.store import Store
from tests.test_judge import MEMORISER, assert_same

pytestmark = [pytest.mark.xdist_group("sandbox"), pytest.mark.timeout(300)]

LIMITS = Limits(episode_seconds=30, startup_seconds=30, evaluation_seconds=240, workers=2)
CMC = (PROJECT_ROOT / "examples" / "controllers" / "cmc_reference_style.py").read_text()


@cache
def real(name: str, n_questions: int = 10) -> Dataset:
    ds = load_autotts_file(data_dir() / f"{name}.json", name)
    return dataclasses.replace(ds, questions=ds.questions[:n_questions],
                               content_hash=f"{ds.content_hash}-{n_questions}")


def cmc(beta: float) -> ControllerSpec:
    return ControllerSpec.from_source(CMC, config={"beta": beta}, filename="cmc.py")


@pytest.mark.parametrize("judge", ["strict", "sampled"])
def test_a_batch_gives_every_pair_the_figures_it_has_alone(judge: str) -> None:
    """Two datasets x two betas of the CMC file in one pool: each pair's episodes equal the file run in
    process on that pair, and one audit of 8 episodes covers the batch, under either judge (the sampled
    one's workers hold both datasets' branch data, and the audit's never two episodes of one question)."""
    pairs = [(real(name), cmc(beta)) for name in ("Qwen3-0.6B/aime24", "Qwen3-8B/aime24") for beta in (0.0, 1.0)]
    labels = []
    limits = dataclasses.replace(LIMITS, judge=judge, audit_episodes=8)
    outs = run_sandboxed_batch(pairs, shuffles=2, limits=limits, progress=lambda d, t, label: labels.append(label))
    for (ds, spec), out in zip(pairs, outs, strict=True):
        assert_same(out, run_python(ds, spec.build(), shuffles=2, filename="cmc.py"))
    assert labels.count("auditing 8 episodes (re-run in fresh workers)") == 1


def test_evaluate_pairs_caches_what_evaluate_would(tmp_path) -> None:
    """evaluate_pairs stores each pair under evaluate's key with evaluate's figures, reports each pair once
    its row is in the store, and a second call is served from the cache."""
    store = Store(tmp_path / "batch.duckdb")
    ds = real("Qwen3-4B/aime24")
    pairs = [(ds, cmc(beta)) for beta in (0.25, 0.75)]
    seen = []

    def stored(i: int, result) -> None:
        assert store.get_result(result.key) is not None
        seen.append(i)

    results = evaluate_pairs(pairs, shuffles=2, store=store, limits=LIMITS, on_result=stored)
    assert seen == [0, 1]
    for (d, spec), res in zip(pairs, results, strict=True):
        assert res.key == result_key(d, spec, 2, "compat") and not res.cached
        alone = evaluate(d, spec, shuffles=2, limits=LIMITS)
        for name in ("accuracy", "avg_total_tokens", "avg_sequential_tokens", "ci95", "per_question_accuracy",
                     "per_question_tokens", "avg_actions"):
            assert getattr(res, name) == getattr(alone, name), name
    again = evaluate_pairs(pairs, shuffles=2, store=store, limits=LIMITS)
    assert all(r.cached for r in again) and [r.accuracy for r in again] == [r.accuracy for r in results]


# The memoriser of tests/test_judge.py: reads every branch the first time it sees a question, then answers
# from memory; in a batch its memory spans every pair's episodes in a worker.



@pytest.mark.parametrize("judge", ["strict", "sampled"])
def test_memory_across_the_pairs_of_a_batch_is_refused(judge: str, tmp_path) -> None:
    """A controller paying in one pair and answering the other pairs from memory is refused by the
    batch's audit (here forced onto late episodes of the second pair: each worker runs its share of the
    first pair, then of the second, so those answered from memory), naming the pair; nothing is cached
    (evaluate_pairs with the default audit: 300 of the 800 episodes)."""
    store = Store(tmp_path / "batch.duckdb")
    ds = real("Qwen3-8B/aime24", 4)
    pairs = [(ds, ControllerSpec.from_source(MEMORISER, config={"n": n}, filename="memo.py")) for n in (1, 2)]
    limits = dataclasses.replace(LIMITS, judge=judge)
    with pytest.raises(SandboxError) as info:
        run_sandboxed_batch(pairs, shuffles=40, limits=limits, audit=[(1, 38, 0), (1, 39, 1)])
    assert info.value.kind == "audit" and f"of {ds.name} {{'n': 2}}" in str(info.value)
    with pytest.raises(SandboxError):
        evaluate_pairs(pairs, shuffles=100, store=store, limits=limits)
    assert store.get_results([result_key(ds, spec, 100, "compat") for _, spec in pairs]) == {}


def test_a_batch_needs_one_controller_code() -> None:
    """Specs with different source are not one batch: a clear ValueError, before any worker starts."""
    pairs = [(real("Qwen3-8B/aime24"), cmc(0.5)), (real("Qwen3-8B/aime24"), ControllerSpec.from_source(MEMORISER))]
    with pytest.raises(ValueError, match="one controller code"):
        run_sandboxed_batch(pairs, shuffles=1, limits=LIMITS)


def test_the_audit_zygote_imports_only_allow_listed_libraries() -> None:
    """What the audit's zygote imports before any user code runs is chosen from NumPy and SciPy only
    (public modules one level deep), whatever else the source names."""
    source = ("import os, numpy as np\nfrom scipy.stats import beta\nfrom scipy import special, _lib\n"
              "import scipy.sparse.linalg\nimport antigravity\nfrom . import numpy\n")
    assert preloads(source) == ["numpy", "scipy", "scipy.special", "scipy.stats"]
    assert preloads("def broken(:") == []


def test_packed_requests_round_trip_and_forged_ones_are_refused() -> None:
    """A step's requests travel as base64 of int64s: the parent unpacks exactly what the worker packed; an
    index past 64 bits travels as a JSON list and the parent's Episode refuses it with IndexError, as in
    process; anything a worker could not have packed is a ValueError (the parent voids the run)."""
    rq = replay_questions(real("Qwen3-8B/aime24", 1))[0]
    requests = [0, 0, 0, 0, 2, 0, 0, 1, 0]
    assert unpack_requests(pack_requests(requests)) == requests
    assert serve({0: Episode(rq, shuffled_order(0, rq.n_branches))}, unpack_requests(pack_requests(requests)))[2][1]
    huge = [0, 2, 1 << 70]
    assert pack_requests(huge) == huge
    reply = serve({0: Episode(rq, shuffled_order(0, rq.n_branches))}, unpack_requests(pack_requests(huge)))
    assert reply[0][0] == "IndexError" and str(1 << 70) in reply[0][1]
    for forged in ("not base64!", base64.b64encode(b"12345").decode(), 42, None, {"r": 1}):
        with pytest.raises(ValueError):
            unpack_requests(forged)
