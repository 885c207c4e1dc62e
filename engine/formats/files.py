"""One entry point for a file a user hands over (an upload): AutoTTS JSON or a Parquet export."""

from __future__ import annotations

from pathlib import PurePath

from engine.dataset import Dataset
from engine.formats.autotts import FormatError, parse_autotts
from engine.formats.parquet import parse_parquet

SUFFIXES = ("json", "parquet")


def read_dataset_file(filename: str, raw: bytes, prefix: str = "uploaded") -> list[Dataset]:
    """The datasets in one file: a JSON file becomes ``<prefix>/<stem>``; a Parquet export keeps its names."""
    path = PurePath(filename)
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "json":
        prefix = prefix.strip().strip("/")
        if not prefix or "/" in prefix:
            raise FormatError(f"{filename}: the name prefix must be one non-empty part without '/', got {prefix!r}")
        return [parse_autotts(raw, name=f"{prefix}/{path.stem}", source=filename)]
    if suffix == "parquet":
        return parse_parquet(raw, filename)
    got = path.suffix or "no suffix"
    raise FormatError(f"{filename}: expected an AutoTTS .json file or a .parquet export, got {got}")
