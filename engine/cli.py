"""`python -m engine ...`: the command line, a thin shell over the store and the engine.

Each subcommand is a parser plus a handler ``handler(args, store) -> exit code``; ``build_parser``
registers them and returns the handlers by name, so a new subcommand is one more function.
Expected failures (bad files, name conflicts, a busy database) print one ``error:`` line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine import cli_discover, cli_doctor, cli_eval, cli_generate, cli_saved, cli_simulate, cli_stores, transfer
from engine.controllers.loader import ControllerError
from engine.formats.autotts import FormatError
from engine.store import EXPORT_FORMATS, DatasetInfo, Store, StoreError, schema_version

Handler = Callable[[argparse.Namespace, Store], int]

# KeyError: an unknown controller name; ValueError: a bad --set, knob or mode.
USER_ERRORS: tuple[type[Exception], ...] = (FormatError, StoreError, OSError, ControllerError, KeyError, ValueError)

# Modules that add subcommands of their own (each has ``add_parsers(sub) -> {name: handler}``).
COMMAND_MODULES = (
    cli_eval,
    cli_doctor,
    cli_simulate,
    cli_generate,
    cli_stores,
    cli_saved,
    cli_discover,
)

_SUFFIX = {"autotts": ".json", "parquet": ".parquet"}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    """The argument parser and the handler of each subcommand."""
    parser = argparse.ArgumentParser(prog="python -m engine", description="TTS Lab: trajectories, replay, results.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    imp = sub.add_parser("import", help="import AutoTTS files, directories of <model>/<bench>.json, or Parquet exports")
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    imp.add_argument("--replace", action="store_true", help="overwrite datasets whose content changed")

    exp = sub.add_parser("export", help="write a dataset as an AutoTTS file or parquet")
    exp.add_argument("dataset", help="e.g. Qwen3-8B/aime24")
    exp.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    exp.add_argument("-o", "--output", type=Path, help="output file (default: <model>__<bench>.json|.parquet)")

    lst = sub.add_parser("datasets", help="list the imported datasets")
    lst.add_argument("--json", action="store_true", help="print JSON")

    handlers = {"import": run_import, "export": run_export, "datasets": run_datasets}
    for module in COMMAND_MODULES:
        handlers |= module.add_parsers(sub)
    for p in (parser, *sub.choices.values()):  # `--db FILE` before or after the subcommand
        p.add_argument("--db", type=Path, default=argparse.SUPPRESS,
                       help="DuckDB file (default: $TTSLAB_DB or cache/ttslab.duckdb)")
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the subcommand, return its exit code (2 for expected errors)."""
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    try:
        store = Store(getattr(args, "db", None))
        if store.backup is not None:
            print(f"note: {store.path} was migrated to schema version {schema_version()}; the file as it was "
                  f"is kept at {store.backup}", file=sys.stderr)
        return handlers[args.command](args, store)
    except USER_ERRORS as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2


def run_import(args: argparse.Namespace, store: Store) -> int:
    progress = _print_progress if sys.stderr.isatty() else None
    for path in args.paths:
        reports = (transfer.import_parquet(store, path, replace=args.replace) if path.suffix == ".parquet"
                   else store.import_path(path, replace=args.replace, progress=progress))
        for r in reports:
            print(f"{r.status} {r.name} ({r.n_questions} questions, {r.n_branches} branches)")
    return 0


def run_export(args: argparse.Namespace, store: Store) -> int:
    out = args.output or Path(args.dataset.replace("/", "__") + _SUFFIX[args.format])
    store.export_dataset(args.dataset, out, args.format)
    print(f"exported {args.dataset} to {out}")
    return 0


def run_datasets(args: argparse.Namespace, store: Store) -> int:
    infos = store.list_datasets()
    if args.json:
        print(json.dumps([_info_json(i) for i in infos], indent=2))
    elif not infos:
        print("no datasets yet; import some with: python -m engine import PATH")
    else:
        print(_table(["name", "questions", "branches", "interval", "pass@1", "majority", "any", "source"],
                     [[i.name, i.n_questions, i.n_branches_total, i.probe_freq or "mixed", f"{i.pass_at_1:.1f}",
                       f"{i.majority_all:.1f}", f"{i.any_correct:.1f}", i.source] for i in infos]))
    return 0


def _info_json(info: DatasetInfo) -> dict[str, Any]:
    return {**asdict(info), "imported_at": info.imported_at.isoformat()}


def _table(header: list[str], rows: list[list[Any]]) -> str:
    """Plain text table: numeric columns right-aligned, others left-aligned."""
    cells = [header, *[[str(c) for c in row] for row in rows]]
    columns = list(zip(*cells, strict=True))
    widths = [max(map(len, col)) for col in columns]
    numeric = [all(map(_is_number, col[1:])) for col in columns]
    lines = ("  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(row, widths, numeric, strict=True))
             for row in cells)
    return "\n".join(line.rstrip() for line in lines)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _print_progress(done: int, total: int, label: str) -> None:
    print(f"\r[{done}/{total}] {label}".ljust(80), end="\n" if done == total else "", file=sys.stderr, flush=True)
