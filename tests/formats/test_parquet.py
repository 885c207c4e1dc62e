"""Reading uploads: the Parquet export round-trips, JSON gets a prefixed name, bad files get one clear line."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.formats.autotts import FormatError, parse_autotts
from engine.formats.files import read_dataset_file
from engine.formats.parquet import parse_parquet
from engine.store import Store


def _export(tmp_path: Path, doc, name="M/bench") -> tuple[bytes, object]:
    store = Store(tmp_path / "s.duckdb")
    dataset = parse_autotts(json.dumps(doc), name=name)
    store.import_dataset(dataset)
    out = tmp_path / "x.parquet"
    store.export_dataset(name, out, "parquet")
    return out.read_bytes(), dataset


def test_parquet_export_reads_back_to_the_same_questions(tmp_path, tiny_doc):
    """Every text, gold, interval, branch, probe and final comes back (only final_answers_trace is not kept)."""
    raw, original = _export(tmp_path, tiny_doc)
    (back,) = parse_parquet(raw, "x.parquet")
    assert back.name == "M/bench"
    for q, o in zip(back.questions, original.questions, strict=True):
        assert (q.text, q.gold, q.probe_freq, q.branches) == (o.text, o.gold, o.probe_freq, o.branches)
        assert q.final_answers_trace is None


def test_upload_names_json_by_prefix_and_keeps_parquet_names(tmp_path, tiny_doc):
    """A JSON upload becomes <prefix>/<stem>; a Parquet export keeps the dataset name it carries."""
    (ds,) = read_dataset_file("aime24.json", json.dumps(tiny_doc).encode(), "class")
    assert ds.name == "class/aime24" and ds.source == "aime24.json"
    raw, _ = _export(tmp_path, tiny_doc, "Other/name")
    assert [d.name for d in read_dataset_file("export.parquet", raw)] == ["Other/name"]


@pytest.mark.parametrize("filename, raw, message", [
    ("notes.txt", b"hello", "expected an AutoTTS .json file or a .parquet export, got .txt"),
    ("x.parquet", b"not parquet", "x.parquet: not a readable Parquet file"),
    ("bad.json", b'{"a": 1}', "bad.json: top level must be a list of questions"),
])
def test_bad_uploads_give_one_line_naming_the_file(filename, raw, message):
    """Wrong suffix, unreadable Parquet, invalid JSON: a FormatError naming the file and the problem."""
    with pytest.raises(FormatError, match=message.replace(".", r"\.")):
        read_dataset_file(filename, raw)


def test_parquet_without_the_export_columns_is_refused(tmp_path):
    """A Parquet file that is not a TTS Lab export names the first missing column."""
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"dataset": ["a"], "q_idx": [0]}), path)
    with pytest.raises(FormatError, match="missing column 'question'"):
        parse_parquet(path.read_bytes(), "other.parquet")


def test_json_prefix_must_be_one_part(tiny_doc):
    """The prefix becomes the model part of the name, so it cannot be empty or contain '/'."""
    with pytest.raises(FormatError, match="name prefix"):
        read_dataset_file("a.json", json.dumps(tiny_doc).encode(), "a/b")
