"""`python -m engine generate` and `live-run`: collect trajectories from a model, run a controller live.

Thin over ``engine.generation``: parse, build the backend, run with a progress line, print.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine import cli_eval
from engine.evaluate import evaluate
from engine.generation import collect as collecting
from engine.generation import records
from engine.generation.backend import BACKENDS, FORMATS, BackendConfig, Sampling, make_backend, prompt_format
from engine.generation.branches import BranchEngine, GrowthSettings
from engine.generation.live import compare, run_live
from engine.store import Store


def add_parsers(sub: argparse._SubParsersAction) -> dict[str, Any]:
    """Register generate and live-run on the CLI's subparsers; returns their handlers by name."""
    gen = sub.add_parser("generate", help="collect a trajectory dataset from a model (resumable)")
    _backend_args(gen)
    gen.add_argument("--questions", help="JSONL/CSV file with question,answer, or a stored dataset's name")
    gen.add_argument("--dataset", required=True, help="name of the dataset to create, e.g. MyModel/aime24")
    gen.add_argument("--branches", type=int, default=collecting.DEFAULT_BRANCHES, help="branches per question")
    gen.add_argument("--interval", type=int, default=500, help="probe interval Δ in tokens")
    gen.add_argument("--parallel", type=int, default=16, help="branches in flight at once")
    gen.add_argument("--resume", action="store_true", help="finish an interrupted collection (stored settings win)")
    gen.add_argument("--export", type=Path, help="also write the finished dataset as an AutoTTS JSON file")
    live = sub.add_parser("live-run", help="run a controller live on k questions and compare with replay")
    cli_eval._controller_args(live)
    _backend_args(live)
    live.add_argument("--beta", type=float, help="beta in [0, 1] (goes into the controller's config)")
    live.add_argument("-k", "--questions", type=int, help="the first k questions (default: all)")
    live.add_argument("--pool", type=int, default=128, help="branches a controller may open per question")
    live.add_argument("--interval", type=int, help="Δ in tokens (default: the dataset's probe interval)")
    live.add_argument("--math", action="store_true", help="grade with math-aware equivalence, not exact strings")
    live.set_defaults(seed=1)  # fresh samples, not the collection's (seed 0)
    return {"generate": run_generate, "live-run": run_live_cli}


def _backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=BACKENDS, default="openai")
    p.add_argument("--model", required=True, help="model name (as the server lists it, or a path for vLLM)")
    p.add_argument("--api-base", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (key: $TTSLAB_API_KEY)")
    p.add_argument("--concurrency", type=int, default=8, help="parallel requests to the server")
    p.add_argument("--max-tokens", type=int, default=40_960, help="cap of a branch's length")
    p.add_argument("--format", dest="prompt_format", choices=sorted(FORMATS), default="qwen3-think",
                   help="chat template applied to the question (the completions endpoint needs it)")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="vLLM: GPUs per model replica")


def _backend(args: argparse.Namespace) -> Any:
    options = {"tensor_parallel_size": args.tensor_parallel_size} if args.backend == "vllm" else {}
    return make_backend(BackendConfig(args.backend, args.model, args.api_base, concurrency=args.concurrency,
                                      options=options))


def _growth(args: argparse.Namespace, interval: int) -> GrowthSettings:
    prompt_format(args.prompt_format)
    return GrowthSettings(interval=interval, max_tokens=args.max_tokens, prompt_format=args.prompt_format,
                          sampling=Sampling(args.temperature, args.top_p, args.top_k, args.seed))


def run_generate(args: argparse.Namespace, store: Store) -> int:
    questions = None
    if not args.resume:
        if not args.questions:
            raise ValueError("--questions FILE|DATASET is needed to start a collection (or use --resume)")
        questions = collecting.read_questions(args.questions, store)
    settings = collecting.CollectSettings(args.branches, _growth(args, args.interval), args.parallel)
    backend = _backend(args)
    run = records.get_run(store, args.dataset)
    n_q = len(questions) if questions is not None else (run.n_questions if run else 0)
    print(f"collecting {args.dataset}: {n_q} questions x {args.branches if not args.resume else 'stored'} branches "
          f"from {args.model}", file=sys.stderr)
    try:
        report = collecting.collect(store, args.dataset, backend, questions=questions, settings=settings,
                                    resume=args.resume, progress=cli_eval._print_progress)
    except KeyboardInterrupt:
        run = records.get_run(store, args.dataset)
        done = f"{run.branches_done}/{run.branches_total}" if run else "no"
        print(f"\ninterrupted: {done} branches are stored; finish with the same command and --resume",
              file=sys.stderr)
        return 130
    print(f"{report.dataset}: {report.branches_written} branches written, {report.timing.tokens:,} tokens in "
          f"{report.seconds:.1f} s ({report.tokens_per_second:,.1f} tokens/s; probes took "
          f"{100 * report.probe_share:.0f}% of generation time)")
    if report.complete and args.export:
        store.export_dataset(args.dataset, args.export, "autotts")
        print(f"exported {args.dataset} to {args.export}")
    return 0


def run_live_cli(args: argparse.Namespace, store: Store) -> int:
    dataset = store.load_dataset(args.dataset)
    spec = cli_eval._spec(args, {} if args.beta is None else {"beta": args.beta}, store)
    interval = args.interval or dataset.questions[0].probe_freq
    engine = BranchEngine(_backend(args), prompt_format(args.prompt_format), _growth(args, interval))
    k = dataset.n_questions if args.questions is None else min(args.questions, dataset.n_questions)
    progress = None if args.json else cli_eval._print_progress
    run = run_live(dataset, spec, engine, questions=list(range(k)), pool=args.pool, mode=args.mode,
                   trusted=args.trusted, math=args.math, store=store, progress=progress)
    replay = evaluate(dataset, spec, shuffles=args.shuffles, mode=args.mode, trusted=args.trusted,
                      store=None if args.no_cache else store)
    gap = compare(replay, run)
    if args.json:
        print(json.dumps({"run": run.id, "live_accuracy": gap.live_accuracy, "replay_accuracy": gap.replay_accuracy,
                          "live_tokens": gap.live_tokens, "replay_tokens": gap.replay_tokens,
                          "accuracy_gap": gap.accuracy_gap, "token_gap": gap.token_gap,
                          "seconds": run.seconds, "episodes": gap.per_question}))
        return 0
    print(f"{dataset.name}  {spec.name}  {dict(spec.config)}  live on {len(run.episodes)} questions")
    print(f"{'':10}{'accuracy %':>12}{'avg tokens':>14}")
    print(f"{'replay':10}{gap.replay_accuracy:12.2f}{gap.replay_tokens:14,.1f}   ({args.shuffles} shuffles)")
    print(f"{'live':10}{gap.live_accuracy:12.2f}{gap.live_tokens:14,.1f}   ({run.seconds:.1f} s wall clock)")
    print(f"{'gap':10}{gap.accuracy_gap:+12.2f}{100 * gap.token_gap:+13.1f}%")
    return 0
