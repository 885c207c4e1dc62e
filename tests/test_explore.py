"""The data explorer's numbers: answer clusters, the probe grid, final answers and vote convergence."""

import pytest

from engine import explore
from engine.dataset import Branch, Question

# Gold "7". Branch 0 settles on 7 early, branch 1 says 8 then ends on 7, branch 2 ends on 8,
# branch 3 never answers ("No") and ends on 5, branch 4 is empty and ends on 7.
Q = Question("What is 3 + 4?", "7", 500, (
    Branch(("No", "7", "7"), 1500, "7"),
    Branch(("8", "8", "8", "7"), 2000, "7"),
    Branch(("No", "8"), 1000, "8"),
    Branch(("No",), 600, "5"),
    Branch((), 300, "7"),
))


def test_clusters_put_gold_first_then_frequent_finals_then_other_and_placeholders():
    """Gold leads; wrong finals by frequency; the last two clusters are 'other' and No/ERR."""
    assert explore.clusters_of(Q) == ("7", "8", "5", explore.OTHER, explore.PLACEHOLDER)
    assert explore.clusters_of(Q, top=2) == ("7", "8", explore.OTHER, explore.PLACEHOLDER)
    clusters = explore.clusters_of(Q, top=2)
    assert [explore.cluster_code(a, clusters) for a in ("7", "8", "5", "No", "ERR")] == [0, 1, 2, 3, 3]


def test_probe_grid_codes_answers_and_pads_ended_branches():
    """Rows follow the final-answer clusters (gold first, shorter first); cells past a branch's end are -1."""
    grid = explore.probe_grid(Q)
    assert grid.branches == (4, 0, 1, 2, 3)
    assert grid.tokens == (300, 1500, 2000, 1000, 600)
    assert grid.codes[1] == (4, 0, 0, -1)  # No, 7, 7, ended
    assert grid.codes[2] == (1, 1, 1, 0)
    assert grid.codes[0] == (-1, -1, -1, -1)
    assert grid.answers[3] == ("No", "8", "", "")
    assert explore.probe_grid(Q, "file order").branches == (0, 1, 2, 3, 4)
    assert explore.probe_grid(Q, "length").branches == (4, 3, 2, 0, 1)
    with pytest.raises(ValueError):
        explore.probe_grid(Q, "colour")


def test_final_distribution_counts_and_marks_gold():
    """Most frequent first, gold flagged."""
    assert explore.final_distribution(Q) == [("7", 3, True), ("8", 1, False), ("5", 1, False)]


def test_convergence_counts_every_branch_at_every_step():
    """At step t a running branch votes its probe, an ended one its final; shares are over all 5."""
    conv = explore.convergence(Q)
    # step 1: No, 8, No, No, 7 -> majority No (3/5), 1/5 gold
    # step 2: 7, 8, 8, 5, 7 -> 7 (first seen of the 2-2 tie), 2/5 gold
    # step 3: 7, 8, 8, 5, 7 -> 7; step 4: 7, 7, 8, 5, 7 -> 7 (3/5)
    assert conv.steps == (1, 2, 3, 4)
    assert conv.majority == ("No", "7", "7", "7")
    assert conv.majority_share == (0.6, 0.4, 0.4, 0.6)
    assert conv.gold_share == (0.2, 0.4, 0.4, 0.6)
    assert conv.settled_at == 2
