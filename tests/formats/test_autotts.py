"""The AutoTTS JSON format: parsing, strict validation messages, hashing and exact write-back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.dataset import Branch
from engine.formats.autotts import (
    FormatError,
    content_hash,
    dump_autotts,
    load_autotts_file,
    parse_autotts,
    write_autotts,
)


def _parse(doc: Any) -> Any:
    return parse_autotts(json.dumps(doc), name="m/bad", source="bad.json")


def test_round_trip_equals_every_real_file(data_dir: Path, tmp_path: Path) -> None:
    """Writing back any real file gives the same JSON values as the original."""
    for path in sorted(data_dir.glob("*/*.json")):
        out = tmp_path / "out.json"
        write_autotts(load_autotts_file(path), out)
        assert json.loads(out.read_bytes()) == json.loads(path.read_bytes()), path


def test_real_file_name_source_and_shape(data_dir: Path) -> None:
    """A file is named <model>/<bench>, keeps its path as source and has 30 x 128 branches."""
    path = data_dir / "Qwen3-8B" / "aime24.json"
    dataset = load_autotts_file(path)
    assert (dataset.name, dataset.source) == ("Qwen3-8B/aime24", str(path))
    assert [len(q.branches) for q in dataset.questions] == [128] * 30
    assert dataset.content_hash == content_hash(dataset)


def test_parse_maps_fields(tiny_doc: list) -> None:
    """Each JSON field lands in the matching Dataset attribute; an absent trace stays None."""
    first, second = _parse(tiny_doc).questions
    assert (first.text, first.gold, first.probe_freq) == ("What is 3 + 4?", "7", 500)
    assert first.branches[0] == Branch(probes=("No", "7"), tokens=1200, final="7")
    assert first.branches[2].probes == ()
    assert first.final_answers_trace == ("7", "8", "7")
    assert second.final_answers_trace is None


def test_dump_keeps_key_order_and_optional_trace(tiny_doc: list) -> None:
    """Export writes keys in the reference order and a trace only where the file had one."""
    dumped = dump_autotts(_parse(tiny_doc))
    assert list(dumped[0]) == ["question", "final_answers_trace", "each_branch", "gold_answer", "probe_freq"]
    assert list(dumped[1]) == ["question", "each_branch", "gold_answer", "probe_freq"]
    assert dumped == tiny_doc


def test_content_hash_ignores_layout_but_not_content(tiny_doc: list) -> None:
    """Reformatting a file keeps its hash; the name does not count; changing an answer changes it."""
    compact = parse_autotts(json.dumps(tiny_doc), name="a/b")
    indented = parse_autotts(json.dumps(tiny_doc, indent=4).encode(), name="c/d")
    assert compact.content_hash == indented.content_hash
    tiny_doc[1]["each_branch"][1][2] = "11"
    assert parse_autotts(json.dumps(tiny_doc), name="a/b").content_hash != compact.content_hash


def _set(path: tuple, value: Any) -> Callable[[list], Any]:
    """A mutation that replaces doc[path] by value."""

    def mutate(doc: list) -> list:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return doc

    return mutate


def _drop(q: int, key: str) -> Callable[[list], Any]:
    def mutate(doc: list) -> list:
        del doc[q][key]
        return doc

    return mutate


# case -> (mutation of TINY_DOC, error message after "bad.json: ")
INVALID = {
    "top level not a list": (lambda doc: {"questions": doc}, "top level must be a list of questions, got object"),
    "empty question list": (lambda doc: [], "the list of questions is empty"),
    "question not an object": (_set((1,), 5), "question 1: must be an object, got int 5"),
    "missing question": (_drop(1, "question"), "question 1: missing field 'question'"),
    "missing gold_answer": (_drop(0, "gold_answer"), "question 0: missing field 'gold_answer'"),
    "missing probe_freq": (_drop(0, "probe_freq"), "question 0: missing field 'probe_freq'"),
    "missing each_branch": (_drop(1, "each_branch"), "question 1: missing field 'each_branch'"),
    "unknown field": (_set((0, "answer"), "7"), "question 0: unknown field 'answer' (expected question, "
                      "gold_answer, probe_freq, each_branch, final_answers_trace)"),
    "question not a string": (_set((0, "question"), None),
                              "question 0: field 'question' must be a string, got null"),
    "gold not a string": (_set((1, "gold_answer"), 10),
                          "question 1: field 'gold_answer' must be a string, got int 10"),
    "probe_freq zero": (_set((0, "probe_freq"), 0),
                        "question 0: field 'probe_freq' must be a positive integer, got int 0"),
    "probe_freq bool": (_set((0, "probe_freq"), True),
                        "question 0: field 'probe_freq' must be a positive integer, got bool true"),
    "probe_freq float": (_set((0, "probe_freq"), 500.0),
                         "question 0: field 'probe_freq' must be a positive integer, got float 500.0"),
    "each_branch empty": (_set((1, "each_branch"), []),
                          "question 1: field 'each_branch' must be a non-empty list of branches, got list of 0"),
    "each_branch object": (_set((1, "each_branch"), {}),
                           "question 1: field 'each_branch' must be a non-empty list of branches, got object"),
    "branch a 2-list": (_set((0, "each_branch", 1), [["8"], 900]),
                        "question 0, branch 1: field 'each_branch[1]' must be a 3-list "
                        "[probe_list, branch_tokens, final_answer], got list of 2"),
    "branch a string": (_set((0, "each_branch", 2), "7"),
                        "question 0, branch 2: field 'each_branch[2]' must be a 3-list "
                        "[probe_list, branch_tokens, final_answer], got string"),
    "probe_list a string": (_set((1, "each_branch", 0, 0), "10"),
                            "question 1, branch 0: field 'each_branch[0][0]' must be a list of strings "
                            "(probe_list), got string"),
    "probe not a string": (_set((1, "each_branch", 0, 0, 1), 10),
                           "question 1, branch 0, probe 1: field 'each_branch[0][0][1]' must be a string, "
                           "got int 10"),
    "negative tokens": (_set((0, "each_branch", 1, 1), -1),
                        "question 0, branch 1: field 'each_branch[1][1]' must be a non-negative integer "
                        "(branch_tokens), got int -1"),
    "bool tokens": (_set((0, "each_branch", 1, 1), False),
                    "question 0, branch 1: field 'each_branch[1][1]' must be a non-negative integer "
                    "(branch_tokens), got bool false"),
    "float tokens": (_set((0, "each_branch", 1, 1), 900.5),
                     "question 0, branch 1: field 'each_branch[1][1]' must be a non-negative integer "
                     "(branch_tokens), got float 900.5"),
    "final not a string": (_set((1, "each_branch", 1, 2), None),
                           "question 1, branch 1: field 'each_branch[1][2]' must be a string, got null"),
    "trace not a list": (_set((0, "final_answers_trace"), "7"),
                         "question 0: field 'final_answers_trace' must be a list of 3 strings "
                         "(one per branch), got string"),
    "trace too short": (_set((0, "final_answers_trace"), ["7", "8"]),
                        "question 0: field 'final_answers_trace' must be a list of 3 strings "
                        "(one per branch), got list of 2"),
    "trace item not a string": (_set((0, "final_answers_trace", 2), 7),
                                "question 0, branch 2: field 'final_answers_trace[2]' must be a string, "
                                "got int 7"),
    "trace disagrees with finals": (_set((0, "final_answers_trace", 1), "9"),
                                    "question 0, branch 1: field 'final_answers_trace[1]' must equal "
                                    "each_branch[1]'s final_answer '8', got '9'"),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_document_gives_one_precise_error(case: str, tiny_doc: list) -> None:
    """Each kind of malformed file is refused with one line naming file, question, branch/probe and field."""
    mutate, message = INVALID[case]
    with pytest.raises(FormatError) as info:
        _parse(mutate(tiny_doc))
    assert str(info.value) == f"bad.json: {message}"


def test_invalid_json_reports_line_and_column() -> None:
    """Broken JSON syntax is reported with its line and column, not as a bare decoder traceback."""
    with pytest.raises(FormatError, match=r"^bad\.json: invalid JSON at line 3, column 1: Expecting value$"):
        parse_autotts('[\n  {"question": "x"},\n]', name="m/bad", source="bad.json")


def test_non_utf8_bytes_are_a_format_error() -> None:
    """Bytes that are not UTF-8 raise FormatError (so the CLI reports them), not UnicodeDecodeError."""
    with pytest.raises(FormatError, match=r"^bad\.json: not UTF-8 text"):
        parse_autotts(b'["\xff"]', name="m/bad", source="bad.json")


def test_error_names_the_dataset_when_no_source(tiny_doc: list) -> None:
    """Parsing text without a source path labels errors with the dataset name."""
    with pytest.raises(FormatError, match=r"^m/x: question 0: missing field 'question'$"):
        parse_autotts(json.dumps(_drop(0, "question")(tiny_doc)), name="m/x")
