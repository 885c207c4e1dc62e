"""`python -m engine discover`, `sessions` and `promote`: agentic discovery from the command line.

Thin over ``engine.discovery``: parse a session config, run or resume it printing a line per
round, list sessions, promote a candidate to the saved controllers.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from engine.discovery import OFFLINE, Event, SessionConfig, lineage, ranked, run_session, sessions, start_session
from engine.discovery.config import OBJECTIVES, ConfigError
from engine.store import Store

FAILED = 1


def add_parsers(sub: argparse._SubParsersAction) -> dict[str, Any]:
    """Register discover, sessions and promote; returns their handlers by name."""
    d = sub.add_parser("discover", help="run (or --resume) a discovery session")
    which = d.add_mutually_exclusive_group(required=True)
    which.add_argument("--proposer", help=f"a litellm model string, or {OFFLINE!r} (Optuna over the CMC family)")
    which.add_argument("--resume", metavar="NAME", help="continue a session from its last finished step")
    d.add_argument("--api-base", help="OpenAI-compatible server URL (e.g. a local llama.cpp or vLLM server)")
    d.add_argument("--api-key-stdin", action="store_true",
                   help="read the API key from the first line of stdin (else the provider's environment variable)")
    d.add_argument("--search", type=_names, help="search datasets, comma separated")
    d.add_argument("--heldout", type=_names, default=(), help="held-out datasets (shown, never selected on)")
    d.add_argument("--session", help="session name (default: discover-<time>)")
    d.add_argument("--rounds", type=int, help="rounds after the seeds (default 5)")
    d.add_argument("--budget-usd", type=float, help="stop before the next request once spend reaches this")
    d.add_argument("--budget-seconds", type=float, help="stop at the next step once the session ran this long")
    d.add_argument("--seeds", type=_names, help="seed controllers: cmc, saved:<id> (offline: family presets)")
    d.add_argument("--betas", type=_floats, help="comma list of betas (default 0,0.1,...,1)")
    d.add_argument("--shuffles", type=int, default=100)
    d.add_argument("--screen-shuffles", type=int,
                   help=f"screen each LLM-written candidate at this many shuffles first; only one within "
                        f"--screen-margin of the best's screen score gets the full --shuffles evaluation "
                        f"(default {SessionConfig.screen_shuffles}; 0 = no screening)")
    d.add_argument("--screen-margin", type=float, help=f"score points below the best's screen score that still "
                                                       f"promote (default {SessionConfig.screen_margin:g})")
    d.add_argument("--objective", choices=OBJECTIVES, default=OBJECTIVES[0],
                   help="curve: the whole beta curve against CMC's budget range (default); accuracy or "
                        "penalised: the sweep's mean point")
    d.add_argument("--gamma", type=float, default=0.01, help="penalised objective: points per 1000 tokens")
    d.add_argument("--retries", type=int, default=2, help="retries of an invalid candidate, shown the error")
    d.add_argument("--no-critic", action="store_true", help="skip the critic step")
    d.add_argument("--prompt-budget", type=int, default=6000, help="prompt size limit in tokens")
    d.add_argument("--max-tokens", type=int, default=4096, help="completion tokens per request")
    d.add_argument("--temperature", type=float, default=0.7)
    d.add_argument("--seed", type=int, default=0, help="offline sampler seed")
    d.add_argument("--verbose", action="store_true", help="also print a line as each step starts")
    s = sub.add_parser("sessions", help="list discovery sessions")
    s.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("promote", help="save a session's candidate as a saved controller")
    p.add_argument("session")
    p.add_argument("round", type=int)
    p.add_argument("--attempt", type=int, help="which candidate of the round (default: the round's chosen one)")
    p.add_argument("--name", help="saved controller name (default: <session>-r<round>)")
    return {"discover": run_discover, "sessions": run_sessions, "promote": run_promote}


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in _names(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of numbers, got {text!r}") from None


def run_discover(args: argparse.Namespace, store: Store) -> int:
    key = sys.stdin.readline().strip() or None if args.api_key_stdin else None
    listener = _printer(args.verbose)
    try:
        if args.resume:
            final = run_session(store, args.resume, api_key=key, on_event=listener, rounds=args.rounds,
                                budget_usd=args.budget_usd, budget_seconds=args.budget_seconds)
        else:
            final = start_session(store, _config(args), api_key=key, on_event=listener)
    except KeyboardInterrupt:
        print(f"stopped; continue with: python -m engine discover --resume {args.resume or args.session}",
              file=sys.stderr)
        return 130
    print(f"session {final.name}: {final.status} ({final.message})")
    return FAILED if final.status == "failed" else 0


def _config(args: argparse.Namespace) -> SessionConfig:
    if not args.search:
        raise ConfigError("--search is required with --proposer")
    name = args.session or f"discover-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    extra = {k: v for k, v in (("rounds", args.rounds), ("budget_usd", args.budget_usd),
                               ("budget_seconds", args.budget_seconds), ("betas", args.betas),
                               ("screen_margin", args.screen_margin)) if v is not None}
    if args.screen_shuffles is not None:
        extra["screen_shuffles"] = args.screen_shuffles or None  # 0: no screening
    seeds = args.seeds if args.seeds is not None else ("cmc",)
    return SessionConfig(
        name=name, proposer=args.proposer, api_base=args.api_base, search=args.search, heldout=args.heldout,
        seeds=seeds, shuffles=args.shuffles, objective=args.objective, gamma=args.gamma, retries=args.retries,
        critic=not args.no_critic, prompt_budget=args.prompt_budget, max_tokens=args.max_tokens,
        temperature=args.temperature, seed=args.seed, **extra)


def _printer(verbose: bool) -> Any:
    def show(event: Event) -> None:
        if event.kind == "round" or (verbose and event.kind == "step"):
            print(event.text, flush=True)

    return show


def run_sessions(args: argparse.Namespace, store: Store) -> int:
    from engine.cli import _table  # the CLI's one table formatter

    rows = []
    for s in sessions.list_sessions(store):
        best = ranked(sessions.list_rounds(store, s.name))
        rows.append({"name": s.name, "proposer": s.config.proposer, "status": s.status,
                     "round": f"{s.round}/{s.config.rounds}", "best_accuracy": best[0].accuracy if best else None,
                     "best_tokens": best[0].tokens if best else None, "spent_usd": round(s.spent_usd, 6),
                     "seconds": round(s.elapsed_seconds, 1), "search": ",".join(s.config.search)})
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no discovery sessions yet; start one with: python -m engine discover --proposer offline --search D")
    else:
        print(_table(["name", "proposer", "status", "round", "best acc%", "best ktok", "spend $", "seconds", "search"],
                     [[r["name"], r["proposer"], r["status"], r["round"], _fmt(r["best_accuracy"], "{:.2f}"),
                       _fmt(r["best_tokens"], "{:.1f}", 1000), f"{r['spent_usd']:.4f}", r["seconds"], r["search"]]
                      for r in rows]))
    return 0


def _fmt(value: float | None, pattern: str, scale: float = 1.0) -> str:
    return "-" if value is None else pattern.format(value / scale)


def run_promote(args: argparse.Namespace, store: Store) -> int:
    saved = lineage.promote(store, args.session, args.round, attempt=args.attempt, name=args.name)
    print(f"saved {saved.name} as saved:{saved.id} (use --controller saved:{saved.id})")
    return 0
