"""Episode rules of replay-semantics.md on small hand-made questions."""

import random

import pytest

from engine.dataset import Branch, Dataset, Question
from engine.replay import (
    OPEN,
    READ,
    STRICT,
    Episode,
    InvalidAction,
    ReplayQuestion,
    replay_actions,
    replay_questions,
    shuffled_order,
)

# Branch 0: two probes, 1,200 tokens; branch 1: no probes, 300 tokens; branch 2: three probes, 1,000 tokens.
QUESTION = ReplayQuestion(
    text="q",
    probe_freq=500,
    probes=(("a", "b"), (), ("x", "y", "z")),
    tokens=(1200, 300, 1000),
    finals=("b", "c", "z"),
)
IDENTITY = (0, 1, 2)


def test_probe_new_opens_in_order_and_charges_one_interval():
    """Opening reveals the first probe, returns the branch position and costs probe_freq."""
    ep = Episode(QUESTION, IDENTITY)
    assert ep.probe_new() == ("a", 0, False)
    assert ep.total_tokens == 500
    assert ep.n_opened == 1


def test_advancing_past_the_probes_charges_the_remainder_once_per_call():
    """The finish charges max(0, tokens - c), and in compat mode c is not updated (reference quirk)."""
    ep = Episode(QUESTION, IDENTITY)
    ep.probe_new()
    assert ep.probe_more(0) == ("b", False)
    assert ep.probe_more(0) == ("b", True)  # 1200 - 1000 = 200
    assert ep.total_tokens == 1200
    assert ep.probe_more(0) == ("b", True)  # charged again: the quirk
    assert ep.total_tokens == 1400
    assert ep.sequential_tokens == 1400


def test_probing_to_the_end_can_cost_more_than_the_branch():
    """max(500 * probes, tokens): three probes of 500 exceed a 1,000-token branch."""
    ep = Episode(QUESTION, (2, 0, 1))
    ep.probe_new()
    ep.probe_more(0)
    ep.probe_more(0)
    assert ep.probe_more(0) == ("z", True)
    assert ep.total_tokens == 1500


def test_branch_without_probes_finishes_on_first_advance_at_full_length():
    """An empty probe list finishes at once and is charged its whole length."""
    ep = Episode(QUESTION, (1, 0, 2))
    assert ep.probe_new() == ("c", 0, True)
    assert ep.total_tokens == 300


def test_full_read_costs_exactly_the_branch_length():
    """get_new_branch_final_answer reads a branch to the end: its final answer at its length."""
    ep = Episode(QUESTION, IDENTITY)
    assert ep.get_new_branch_final_answer() == "b"
    assert ep.get_seq_and_total_tokens() == (0, 1200)
    assert ep.actions == [READ]


def test_compat_accepts_advancing_the_next_unopened_branch():
    """probe_more(i) is accepted for i <= number opened (reference quirk), not beyond."""
    ep = Episode(QUESTION, IDENTITY)
    ep.probe_new()
    assert ep.probe_more(1) == ("c", True)
    assert ep.n_opened == 1
    with pytest.raises(IndexError):
        ep.probe_more(3)


def test_opening_past_the_pool_raises_an_error_the_helpers_catch():
    """After the last branch, probe_new raises IndexError (what the reference helpers swallow)."""
    ep = Episode(QUESTION, IDENTITY)
    for _ in range(3):
        ep.probe_new()
    with pytest.raises(IndexError):
        ep.probe_new()
    with pytest.raises(IndexError):
        ep.get_new_branch_final_answer()


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ([OPEN, OPEN, OPEN, OPEN], "opens past the pool"),
        ([OPEN, 1], "unopened branch"),
        ([READ, 0], "finished branch"),
    ],
)
def test_strict_mode_names_the_invalid_action(actions, message):
    """Strict mode raises InvalidAction (not swallowed by safe_* helpers) naming the action."""
    with pytest.raises(InvalidAction, match=message):
        replay_actions(QUESTION, IDENTITY, actions, STRICT)


def test_action_log_replays_to_the_same_costs():
    """Re-applying an episode's action log reproduces its tokens: the sandbox grades this way."""
    ep = Episode(QUESTION, (2, 0, 1))
    ep.probe_new()
    ep.probe_new()
    ep.probe_more(0)
    ep.get_new_branch_final_answer()
    ep.probe_more(1)
    again = replay_actions(QUESTION, (2, 0, 1), ep.actions)
    assert (again.total_tokens, again.sequential_tokens) == (ep.total_tokens, ep.sequential_tokens)


def test_shuffled_order_is_random_shuffle_of_the_branch_list():
    """Seed s orders branches exactly as random.Random(s).shuffle would the branch list."""
    branches = [f"branch{i}" for i in range(128)]
    for seed in (0, 1, 99):
        expected = list(branches)
        random.Random(seed).shuffle(expected)
        assert [branches[i] for i in shuffled_order(seed, 128)] == expected


def test_replay_questions_carry_no_gold_answer():
    """The view a controller gets holds branch data only: the gold answer is not in it."""
    ds = Dataset("t/t", (Question("q", "GOLD-42", 500, (Branch(("1",), 600, "2"),)),))
    (rq,) = replay_questions(ds)
    assert "GOLD-42" not in repr(rq)
    assert all("GOLD-42" not in str(getattr(rq, f)) for f in rq.__dataclass_fields__)


def test_numpy_indices_are_accepted_and_logged_as_ints():
    """probe_more accepts numpy integers (logged as plain ints); a float index is a TypeError."""
    import numpy as np

    ep = Episode(QUESTION, IDENTITY)
    ep.probe_new()
    ep.probe_more(np.int64(0))
    assert ep.actions == [OPEN, 0] and all(type(a) is int for a in ep.actions)
    with pytest.raises(TypeError):
        ep.probe_more(0.0)
