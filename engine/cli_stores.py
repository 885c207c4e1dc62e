"""`python -m engine attach` and `export-db`: DuckDB stores as files people exchange (``engine.transfer``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine import transfer
from engine.store import Store


def add_parsers(sub: argparse._SubParsersAction) -> dict[str, Any]:
    """Register attach and export-db on the CLI's subparsers; returns their handlers by name."""
    att = sub.add_parser("attach", help="copy datasets (and results) from another TTS Lab DuckDB file")
    att.add_argument("file", type=Path, help="the store to read (opened read-only)")
    att.add_argument("--replace", action="store_true", help="overwrite datasets whose content differs")
    exp = sub.add_parser("export-db", help="write chosen datasets as a new standalone DuckDB store")
    exp.add_argument("output", type=Path, help="the new .duckdb file (must not exist)")
    for p in (att, exp):
        p.add_argument("--datasets", type=_names, help="comma list, e.g. Qwen3-8B/aime24,Qwen3-8B/aime25 "
                                                       "(default: all)")
        p.add_argument("--with-results", action="store_true", help="also copy cached results and their traces")
        p.add_argument("--with-saved", action="store_true", help="also copy saved controllers")
    return {"attach": run_attach, "export-db": run_export_db}


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma list of dataset names")
    return names


def run_attach(args: argparse.Namespace, store: Store) -> int:
    report = transfer.attach(store, args.file, datasets=args.datasets, with_results=args.with_results,
                             with_saved=args.with_saved, replace=args.replace)
    print("\n".join(report.lines()))
    return 0


def run_export_db(args: argparse.Namespace, store: Store) -> int:
    report = transfer.export_db(store, args.output, datasets=args.datasets, with_results=args.with_results,
                                with_saved=args.with_saved)
    print("\n".join([*report.lines(), f"wrote {args.output}"]))
    return 0
