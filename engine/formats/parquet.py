"""Read the Parquet export (``python -m engine export --format parquet``) back into datasets.

The export has one row per branch: ``dataset, q_idx, question, gold, probe_freq, b_idx, tokens,
final, probes``. Reading it is strict in the same way as the JSON reader: one ``FormatError`` naming
the file, the row and the column. The export does not say whether the JSON carried
``final_answers_trace``, so a round trip keeps every value but that optional field.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from engine.dataset import Branch, Dataset, Question
from engine.formats.autotts import FormatError, content_hash

COLUMNS = ("dataset", "q_idx", "question", "gold", "probe_freq", "b_idx", "tokens", "final", "probes")


def parse_parquet(raw: bytes, source: str) -> list[Dataset]:
    """Every dataset in one Parquet export, by name, questions and branches in index order."""
    try:
        table = pq.read_table(io.BytesIO(raw))
    except (pa.ArrowException, OSError) as exc:
        raise FormatError(f"{source}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise FormatError(f"{source}: not a TTS Lab Parquet export: missing column {missing[0]!r} "
                          f"(expected {', '.join(COLUMNS)})")
    rows = table.select(list(COLUMNS)).to_pylist()
    if not rows:
        raise FormatError(f"{source}: the file has no rows")
    grouped: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for i, row in enumerate(rows):
        _check(row, f"{source}: row {i}")
        grouped.setdefault(row["dataset"], {}).setdefault(row["q_idx"], []).append(row)
    return [_dataset(name, questions, source) for name, questions in grouped.items()]


def _check(row: dict[str, Any], where: str) -> None:
    for column, kind in (("dataset", str), ("question", str), ("gold", str), ("final", str), ("q_idx", int),
                         ("b_idx", int), ("tokens", int), ("probe_freq", int), ("probes", list)):
        if not isinstance(row[column], kind) or isinstance(row[column], bool):
            raise FormatError(f"{where}: column {column!r} must be {kind.__name__}, got {row[column]!r:.40}")
    if row["tokens"] < 0 or row["probe_freq"] <= 0:
        raise FormatError(f"{where}: tokens must be >= 0 and probe_freq > 0")
    if not all(isinstance(a, str) for a in row["probes"]):
        raise FormatError(f"{where}: column 'probes' must hold strings")


def _dataset(name: str, questions: dict[int, list[dict[str, Any]]], source: str) -> Dataset:
    if sorted(questions) != list(range(len(questions))):
        raise FormatError(f"{source}: dataset {name!r} has question indices {sorted(questions)[:5]}..., "
                          "expected 0, 1, 2, ...")
    built = []
    for qi in range(len(questions)):
        branches = sorted(questions[qi], key=lambda r: r["b_idx"])
        first = branches[0]
        built.append(Question(
            text=first["question"], gold=first["gold"], probe_freq=first["probe_freq"],
            branches=tuple(Branch(tuple(r["probes"]), r["tokens"], r["final"]) for r in branches),
        ))
    dataset = Dataset(name=name, questions=tuple(built), source=source)
    return dataclasses.replace(dataset, content_hash=content_hash(dataset))
