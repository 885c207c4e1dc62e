"""Beta schedules: one scalar sets every knob deterministically; explicit knobs win."""

import numpy as np
import pytest

from engine.controllers import BUILTINS, PRESETS, resolve, sweep_configs
from engine.controllers.cmc import CMC
from engine.controllers.sc import SC


def test_cmc_schedule_matches_the_published_table():
    """CMC knobs at beta 0, 0.5 and 1 as in controllers.md (round-half-even, r4)."""
    assert CMC.schedule(0.5) == {
        "n_init": 5, "max_branch_use": 34, "warm_up": 6, "abandon_patience": 8, "T_ema": 5,
        "ema_alpha": 0.5, "conf_thresh": 0.91, "delta_slack": 0.025, "burst_aligned": 2,
        "widen_burst": 2, "trend_thresh": 0.025, "min_complete": 4,
    }
    assert CMC.schedule(0.0)["max_branch_use"] == 4
    assert CMC.schedule(1.0)["max_branch_use"] == 64
    assert CMC.schedule(1.0)["conf_thresh"] == 0.97


def test_beta_is_clipped_to_the_unit_interval():
    """Out-of-range beta behaves like the nearest end."""
    assert CMC.schedule(-3) == CMC.schedule(0.0)
    assert CMC.schedule(7) == CMC.schedule(1.0)


def test_baseline_budget_is_log_spaced_in_beta():
    """beta = log2(k)/6 gives the budget sweep 1, 4, 8, 16, 32, 64."""
    assert [SC.schedule(b)["k"] for b in (0, 2 / 6, 0.5, 4 / 6, 5 / 6, 1)] == [1, 4, 8, 16, 32, 64]


def test_explicit_knob_overrides_the_schedule_and_unknown_knob_is_refused():
    """config knobs win over beta; a misspelt knob is an error naming the valid ones."""
    assert CMC({"beta": 0.5, "n_init": 9}).knobs["n_init"] == 9
    with pytest.raises(ValueError, match="unknown knob"):
        CMC({"n_int": 9})


def test_presets_resolve_to_reference_configs():
    """Reference sweep configs are available by name, with overrides applied on top."""
    assert resolve("asc64") == ("asc", {"max_samples": 64, "threshold": 0.95})
    assert resolve("sc64", {"k": 8}) == ("sc", {"k": 8})
    assert set(BUILTINS) == {"sc", "asc", "esc", "parallel_probe", "cmc"}
    assert all(resolve(p)[0] in BUILTINS for p in PRESETS)
    with pytest.raises(KeyError, match="unknown controller"):
        resolve("nope")


def test_sweeps_cover_budgets_for_baselines_and_betas_for_cmc():
    """Budget sweep k in {1..64} for handcrafted baselines, 11 betas for CMC."""
    assert [c["num_chains"] for c in sweep_configs("parallel_probe")] == [1, 4, 8, 16, 32, 64]
    assert [c["beta"] for c in sweep_configs("cmc")] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def test_esc_budget_below_the_window_reads_one_window_of_that_size():
    """ESC's schedule never yields zero windows: budget 4 means one window of 4, 64 means 8 windows of 8."""
    from engine.controllers.esc import ESC

    assert ESC.schedule(2 / 6) == {"max_samples": 4, "window_size": 4}
    assert ESC.schedule(1.0) == {"max_samples": 64, "window_size": 8}


def test_esc_explicit_budget_keeps_a_window_unless_one_is_given():
    """max_samples=4 alone reads one window of 4; an explicit window_size=8 keeps the reference's zero windows."""
    from engine.controllers.esc import ESC

    assert ESC({"max_samples": 4}).knobs["window_size"] == 4
    assert ESC({"max_samples": 4, "window_size": 8}).knobs["window_size"] == 8


@pytest.mark.parametrize("beta", [7, -1, 1.0001, "0.5", None, True])
def test_controller_refuses_beta_outside_the_unit_interval(beta):
    """A built-in given beta outside [0, 1] (or not a number) raises, instead of clipping silently."""
    with pytest.raises(ValueError, match=r"cmc: beta must be a number in \[0, 1\]"):
        CMC({"beta": beta})


def test_knob_of_the_wrong_type_names_knob_controller_and_type():
    """'abc' for an int knob is refused by name; 8.0 stands for 8 and an int may stand for a float."""
    with pytest.raises(ValueError, match="sc: knob 'k' expects int, got 'abc'"):
        SC({"k": "abc"})
    with pytest.raises(ValueError, match="cmc: knob 'conf_thresh' expects float, got True"):
        CMC({"conf_thresh": True})
    assert SC({"k": 8.0}).knobs["k"] == 8
    assert CMC({"conf_thresh": 1}).knobs["conf_thresh"] == 1
    assert SC({"k": np.int64(8)}).knobs["k"] == 8 and CMC({"beta": np.float32(0.5)}).knobs["n_init"] == 5
    with pytest.raises(ValueError, match=r"sc: knob 'k' expects int, got 8\.5"):
        SC({"k": 8.5})
