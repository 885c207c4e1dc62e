"""engine.codediff: the one diff of controller code that saved controllers and discovery lineage show."""

from engine.codediff import code_diff
from engine.discovery import lineage


def test_a_last_line_without_newline_stays_on_its_own_line():
    """A source whose last line has no newline (the usual LLM answer) must not glue that line to the
    next line of the diff: the lineage view once showed '-min_complete: 2 -> 5+n_init: 7 -> 12'."""
    text = code_diff("a = 1\nb = 2", "a = 1\nb = 3\nc = 4", "parent", "child")
    assert text.splitlines()[-3:] == ["-b = 2", "+b = 3", "+c = 4"]
    assert all(line.endswith("\n") for line in text.splitlines(keepends=True))


def test_equal_sources_give_no_diff_and_lineage_uses_the_same_rule():
    """Identical code diffs to nothing; the lineage diff is this function with its labels."""
    assert code_diff("x = 1", "x = 1", "a", "b") == ""
    assert lineage.diff("a\nb", "a\nc", "round 0", "round 1") == code_diff("a\nb", "a\nc", "round 0", "round 1")
