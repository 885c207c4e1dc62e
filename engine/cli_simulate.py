"""`python -m engine simulate`: make a synthetic teaching dataset and store it (``engine.simulate``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.formats.autotts import write_autotts
from engine.simulate import Knobs, synthetic_dataset
from engine.store import Store


def add_parsers(sub: argparse._SubParsersAction) -> dict[str, Any]:
    """Register ``simulate`` on the CLI's subparsers; returns its handler by name."""
    sim = sub.add_parser("simulate", help="make a synthetic teaching dataset (seeded) and import it",
                         description="Made-up trajectories whose causes are knobs; the name starts with synthetic/.")
    defaults = Knobs()
    sim.add_argument("--name", help="dataset name under synthetic/ (default: from the knobs, e.g. "
                                    "synthetic/acc60-div4-conv50-spread50-s0)")
    sim.add_argument("--accuracy", type=float, default=defaults.accuracy,
                     help="mean share of branches ending on the gold answer, 0..1")
    sim.add_argument("--diversity", type=int, default=defaults.diversity, help="distinct wrong answers, 1..50")
    sim.add_argument("--convergence", type=float, default=defaults.convergence,
                     help="how early probes settle on the final answer, 0 (late) .. 1 (at once)")
    sim.add_argument("--length-spread", type=float, default=defaults.length_spread,
                     help="log-sd of branch lengths, 0..1.5")
    sim.add_argument("--questions", type=int, default=defaults.questions)
    sim.add_argument("--branches", type=int, default=defaults.branches)
    sim.add_argument("--seed", type=int, default=defaults.seed)
    sim.add_argument("-o", "--output", type=Path, help="also write it as an AutoTTS JSON file")
    sim.add_argument("--replace", action="store_true", help="overwrite a stored dataset of that name")
    return {"simulate": run_simulate}


def run_simulate(args: argparse.Namespace, store: Store) -> int:
    knobs = Knobs(accuracy=args.accuracy, diversity=args.diversity, convergence=args.convergence,
                  length_spread=args.length_spread, questions=args.questions, branches=args.branches,
                  seed=args.seed)
    dataset = synthetic_dataset(knobs, args.name)
    report = store.import_dataset(dataset, replace=args.replace)
    print(f"{report.status} {report.name} ({report.n_questions} questions, {report.n_branches} branches; synthetic)")
    if args.output is not None:
        write_autotts(dataset, args.output)
        print(f"wrote {args.output}")
    return 0
