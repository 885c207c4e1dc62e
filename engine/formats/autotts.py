"""Read and write the AutoTTS replay format: a JSON list of questions with pre-collected branches.

Validation is strict and stops at the first problem with ONE message naming the file, the
question (and branch / probe) and the field, so a broken file can be fixed in one look. What is
accepted is exactly what can be written back value for value: unknown fields are refused, and
``final_answers_trace`` must repeat the branches' final answers (the store keeps only whether
it was present).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from engine.dataset import Branch, Dataset, Question

REQUIRED = ("question", "gold_answer", "probe_freq", "each_branch")
OPTIONAL = ("final_answers_trace",)


class FormatError(ValueError):
    """A file is not valid AutoTTS JSON; the message says where and why."""


def parse_autotts(raw: bytes | str, *, name: str, source: str = "") -> Dataset:
    """Validate and convert the text of one AutoTTS file; errors name ``source`` (or ``name``)."""
    label = source or name
    data = _decode(raw, label)
    if not isinstance(data, list):
        raise FormatError(f"{label}: top level must be a list of questions, got {_kind(data)}")
    if not data:
        raise FormatError(f"{label}: the list of questions is empty")
    questions = tuple(_question(item, f"{label}: question {i}") for i, item in enumerate(data))
    dataset = Dataset(name=name, questions=questions, source=source)
    return dataclasses.replace(dataset, content_hash=content_hash(dataset))


def load_autotts_file(path: str | Path, name: str | None = None) -> Dataset:
    """Read one file; the name defaults to ``<parent dir>/<stem>``, e.g. ``Qwen3-8B/aime24``."""
    path = Path(path)
    if name is None:
        name = f"{path.resolve().parent.name}/{path.stem}"
    return parse_autotts(path.read_bytes(), name=name, source=str(path))


def content_hash(dataset: Dataset) -> str:
    """sha256 of the questions as canonical JSON: independent of the file's layout and of the name."""
    canonical = json.dumps(dump_autotts(dataset), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def dump_autotts(dataset: Dataset) -> list[dict[str, Any]]:
    """The JSON value of the file, keys in the reference's order."""
    return [_dump_question(q) for q in dataset.questions]


def write_autotts(dataset: Dataset, path: str | Path) -> None:
    """Write ``dataset`` as an AutoTTS file that loads back to equal JSON values."""
    text = json.dumps(dump_autotts(dataset), ensure_ascii=False, indent=2)
    Path(path).write_text(text, encoding="utf-8")


def _dump_question(q: Question) -> dict[str, Any]:
    out: dict[str, Any] = {"question": q.text}
    if q.final_answers_trace is not None:
        out["final_answers_trace"] = list(q.final_answers_trace)
    out["each_branch"] = [[list(b.probes), b.tokens, b.final] for b in q.branches]
    out["gold_answer"] = q.gold
    out["probe_freq"] = q.probe_freq
    return out


def _decode(raw: bytes | str, label: str) -> Any:
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise FormatError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{label}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def _question(item: Any, where: str) -> Question:
    if not isinstance(item, dict):
        raise FormatError(f"{where}: must be an object, got {_kind(item)}")
    unknown = sorted(item.keys() - {*REQUIRED, *OPTIONAL})
    if unknown:
        raise FormatError(f"{where}: unknown field {unknown[0]!r} (expected {', '.join(REQUIRED + OPTIONAL)})")
    missing = [key for key in REQUIRED if key not in item]
    if missing:
        raise FormatError(f"{where}: missing field {missing[0]!r}")
    text = _string(item["question"], where, "question")
    gold = _string(item["gold_answer"], where, "gold_answer")
    probe_freq = item["probe_freq"]
    if not _is_int(probe_freq) or probe_freq <= 0:
        raise _field_error(where, "probe_freq", "a positive integer", probe_freq)
    branches = _branches(item["each_branch"], where)
    trace = _trace(item["final_answers_trace"], branches, where) if "final_answers_trace" in item else None
    return Question(text=text, gold=gold, probe_freq=probe_freq, branches=branches, final_answers_trace=trace)


def _branches(value: Any, where: str) -> tuple[Branch, ...]:
    if not isinstance(value, list) or not value:
        raise _field_error(where, "each_branch", "a non-empty list of branches", value)
    return tuple(_branch(b, f"{where}, branch {j}", f"each_branch[{j}]") for j, b in enumerate(value))


def _branch(value: Any, where: str, field: str) -> Branch:
    if not isinstance(value, list) or len(value) != 3:
        raise _field_error(where, field, "a 3-list [probe_list, branch_tokens, final_answer]", value)
    probes, tokens, final = value
    if not isinstance(probes, list):
        raise _field_error(where, f"{field}[0]", "a list of strings (probe_list)", probes)
    if not all(isinstance(a, str) for a in probes):
        k = next(k for k, a in enumerate(probes) if not isinstance(a, str))
        raise _field_error(f"{where}, probe {k}", f"{field}[0][{k}]", "a string", probes[k])
    if not _is_int(tokens) or tokens < 0:
        raise _field_error(where, f"{field}[1]", "a non-negative integer (branch_tokens)", tokens)
    return Branch(probes=tuple(probes), tokens=tokens, final=_string(final, where, f"{field}[2]"))


def _trace(value: Any, branches: tuple[Branch, ...], where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) != len(branches):
        expected = f"a list of {len(branches)} strings (one per branch)"
        raise _field_error(where, "final_answers_trace", expected, value)
    for j, (answer, branch) in enumerate(zip(value, branches, strict=True)):
        field = f"final_answers_trace[{j}]"
        _string(answer, f"{where}, branch {j}", field)
        if answer != branch.final:
            raise FormatError(f"{where}, branch {j}: field {field!r} must equal each_branch[{j}]'s "
                              f"final_answer {branch.final!r}, got {answer!r}")
    return tuple(value)


def _string(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str):
        raise _field_error(where, field, "a string", value)
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field_error(where: str, field: str, expected: str, value: Any) -> FormatError:
    return FormatError(f"{where}: field {field!r} must be {expected}, got {_kind(value)}")


def _kind(value: Any) -> str:
    """A short description of a JSON value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"bool {str(value).lower()}"
    if isinstance(value, int | float):
        return f"{type(value).__name__} {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return f"list of {len(value)}"
    return "object"
