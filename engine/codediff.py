"""Unified diffs of controller code, shared by saved controllers and discovery lineage."""

from __future__ import annotations

import difflib


def code_diff(old: str, new: str, old_label: str, new_label: str) -> str:
    """Unified diff of two sources ('' when equal); every line ends in a newline, so a last line
    without one does not run into the next line of the diff."""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile=old_label, tofile=new_label)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
