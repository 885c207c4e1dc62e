"""`python -m engine eval` and `sweep`: evaluate controllers from the command line.

Thin over ``engine.evaluate``: parse the controller choice, run, print a table or JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine import controllers, saved
from engine.controllers.loader import ControllerError
from engine.evaluate import ControllerSpec, EvalResult, evaluate, sweep
from engine.replay import MODES
from engine.sandbox import JUDGES, SAMPLED, Limits


def add_parsers(sub: argparse._SubParsersAction) -> dict[str, Any]:
    """Register eval and sweep on the CLI's subparsers; returns their handlers by name."""
    ev = sub.add_parser("eval", help="evaluate one controller on one dataset")
    _controller_args(ev)
    ev.add_argument("--beta", type=_beta, help="beta in [0, 1] (goes into the controller's config)")
    ev.add_argument("--traces", action="store_true", help="store every episode's execution trace (see `trace`)")
    tr = sub.add_parser("trace", help="print the stored execution trace of one episode as JSON")
    tr.add_argument("key", help="the result key an `eval --traces --json` printed")
    tr.add_argument("--question", type=int, default=0)
    tr.add_argument("--seed", type=int, default=0)
    sw = sub.add_parser("sweep", help="evaluate a controller over betas or budgets")
    _controller_args(sw)
    grid = sw.add_mutually_exclusive_group()
    grid.add_argument("--betas", type=_beta_range, help="START:STOP:STEP, e.g. 0:1:0.1")
    grid.add_argument("--budgets", type=_int_list, help="comma list, e.g. 1,4,8,16,32,64")
    return {"eval": run_eval, "sweep": run_sweep, "trace": run_trace}


def _controller_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="e.g. Qwen3-8B/aime24")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--controller", help="built-in or preset (" + ", ".join(
        sorted(controllers.BUILTINS) + sorted(controllers.PRESETS)) + "), or saved:<id> or a saved name")
    which.add_argument("--controller-file", type=Path, help="a .py file in the reference format")
    p.add_argument("--class", dest="class_name", help="class to use from --controller-file")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a config value (JSON literal or string); repeatable")
    p.add_argument("--shuffles", type=int, default=100)
    p.add_argument("--mode", choices=MODES, default="compat")
    p.add_argument("--trusted", action="store_true", help="run a controller file in-process, unsandboxed")
    p.add_argument("--judge", choices=JUDGES, default=SAMPLED,
                   help="a sandboxed file's judge: 'sampled' (fast run + audit of random episodes; runs of at most "
                        "Limits.audit_episodes episodes are strict anyway) or 'strict' (the worker never holds "
                        "unrevealed data; slower), see docs/sandbox.md")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache")
    p.add_argument("--json", action="store_true", help="print JSON")


def _beta(text: str) -> float:
    try:
        beta = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= beta <= 1.0:
        raise argparse.ArgumentTypeError(f"beta must be in [0, 1], got {text}")
    return beta


def _beta_range(text: str) -> list[float]:
    try:
        start, stop, step = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP:STEP, got {text!r}") from None
    if step <= 0:
        raise argparse.ArgumentTypeError("STEP must be positive")
    if not (0.0 <= start <= 1.0 and 0.0 <= stop <= 1.0):
        raise argparse.ArgumentTypeError(f"betas must lie in [0, 1], got {text!r}")
    n = round((stop - start) / step) + 1
    return [round(start + i * step, 6) for i in range(n)]


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of integers, got {text!r}") from None


def _parse_sets(sets: list[str]) -> dict[str, Any]:
    config = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            config[key] = value
    return config


def _spec(args: argparse.Namespace, extra: dict[str, Any], store: Any) -> ControllerSpec:
    config = {**_parse_sets(args.sets), **extra}
    if args.controller:
        return saved.resolve_spec(store, args.controller, config)
    try:
        source = args.controller_file.read_text()
    except OSError as exc:
        raise ControllerError(f"cannot read {args.controller_file}: {exc.strerror}") from None
    return ControllerSpec.from_source(source, args.class_name, config, str(args.controller_file))


def _run(args: argparse.Namespace, store: Any, extra: dict[str, Any]) -> EvalResult:
    dataset = store.load_dataset(args.dataset)
    traces = getattr(args, "traces", False)
    progress = _print_progress if sys.stderr.isatty() and not args.json else None
    return evaluate(dataset, _spec(args, extra, store), shuffles=args.shuffles, mode=args.mode, progress=progress,
                    store=store if traces or not args.no_cache else None, trusted=args.trusted, traces=traces,
                    limits=Limits(judge=args.judge))


def run_eval(args: argparse.Namespace, store: Any) -> int:
    extra = {} if args.beta is None else {"beta": args.beta}
    result = _run(args, store, extra)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        lo, hi = result.ci95
        print(f"{result.dataset}  {result.controller}  {result.config}")
        print(f"accuracy              {result.accuracy:.2f} %   (95% CI {lo:.2f} - {hi:.2f}, bootstrap "
              "over questions)")
        print(f"avg total tokens      {result.avg_total_tokens:,.1f}")
        print(f"avg sequential tokens {result.avg_sequential_tokens:,.1f}")
        print(f"seconds               {result.seconds:.3f}{'   (from cache)' if result.cached else ''}")
        if result.startup_seconds and not result.cached:
            print(f"start-up seconds      {result.startup_seconds:.3f}   (loading the compiled kernel, not counted)")
        if args.traces:
            print(f"traces stored; show one with: python -m engine trace {result.key} --question 0 --seed 0")
    return 0


def run_trace(args: argparse.Namespace, store: Any) -> int:
    found = store.get_traces(args.key, q_idx=args.question, seed=args.seed)
    if not found:
        raise ValueError(f"no trace stored for result {args.key}, question {args.question}, seed {args.seed}")
    print(json.dumps(found[0][2], indent=1))
    return 0


def sweep_points(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The configs a sweep visits: --betas, --budgets, or the controller's default sweep."""
    if args.betas is not None:
        return [{"beta": b} for b in args.betas]
    builtin = _builtin(args.controller)
    if args.budgets is not None:
        knob = controllers.BUDGET_KNOB.get(builtin)
        if knob is None:
            raise ValueError("--budgets needs a handcrafted baseline: " + ", ".join(controllers.BUDGET_KNOB))
        return [{knob: k} for k in args.budgets]
    if builtin is not None:
        base = controllers.resolve(args.controller)[1]
        return [{k: v for k, v in c.items() if k not in base or base[k] != v}
                for c in controllers.sweep_configs(args.controller)]
    return [{"beta": b} for b in controllers.BETAS]


def _builtin(ref: str | None) -> str | None:
    """The built-in behind a built-in or preset name; None for a controller file or a saved controller."""
    known = ref in controllers.BUILTINS or ref in controllers.PRESETS
    return controllers.resolve(ref)[0] if known else None


def run_sweep(args: argparse.Namespace, store: Any) -> int:
    points = sweep_points(args)
    dataset = store.load_dataset(args.dataset)
    progress = None if args.json else _print_progress
    results = sweep([dataset], [_spec(args, point, store) for point in points], shuffles=args.shuffles, mode=args.mode,
                    store=None if args.no_cache else store, progress=progress, trusted=args.trusted,
                    limits=Limits(judge=args.judge))
    if args.json:
        print(json.dumps([r.to_dict() for r in results]))
        return 0
    print(f"{'point':28}{'accuracy %':>11}{'avg tokens':>13}{'seq tokens':>12}{'CI95':>16}{'s':>8}")
    for point, r in zip(points, results, strict=True):
        label = ", ".join(f"{k}={v}" for k, v in point.items())
        print(f"{label:28}{r.accuracy:11.2f}{r.avg_total_tokens:13,.0f}{r.avg_sequential_tokens:12,.0f}"
              f"{f'{r.ci95[0]:.1f}-{r.ci95[1]:.1f}':>16}{r.seconds:8.3f}")
    startup = sum(r.startup_seconds for r in results if not r.cached)
    if startup:
        print(f"start-up: {startup:.3f} s loading the compiled kernel (not in the s column)", file=sys.stderr)
    return 0


def _print_progress(done: int, total: int, label: str) -> None:
    end = "\n" if done == total else ""
    print(f"\r[{done}/{total}] {label[:60]:60}", end=end, file=sys.stderr, flush=True)
