"""The curve objective: it rewards the whole beta curve against CMC's budget range, not a mean point."""

from __future__ import annotations

import math

import pytest

from engine.controllers import BETAS
from engine.discovery import SessionConfig, family, objective, ranked, run_session, sessions, start_session
from engine.discovery.sessions import SEARCH as SEARCH_SPLIT
from engine.evaluate import sweep
from engine.store import Store
from tests.discovery.conftest import SEARCH


def test_curve_score_by_hand() -> None:
    """The score is the beta chain's attainable-accuracy staircase averaged over log10 tokens in the span:
    computed here by hand on a span of two decades; a point cheaper than a lower beta's does not count."""
    span = objective.Span(100.0, 10_000.0)
    rising = [(0.0, 40.0, 100.0), (0.5, 60.0, 1000.0), (1.0, 70.0, 10_000.0)]
    assert objective.dataset_score(rising, span) == pytest.approx((40 * 1 + 60 * 1) / 2)
    inverted = [(0.0, 70.0, 1000.0), (0.5, 60.0, 500.0), (1.0, 40.0, 100.0)]  # dearer at beta 0
    assert objective.beta_chain(inverted) == [(0.0, 70.0, 1000.0)]
    assert objective.dataset_score(inverted, span) == pytest.approx(70 * 1 / 2)
    flat = [(b, 65.0, 1000.0) for b in (0.0, 0.5, 1.0)]  # beta ignored: one operating point
    assert objective.dataset_score(flat, span) == pytest.approx(65 / 2) and not objective.rises(flat)
    assert objective.rises(rising)
    sweeps = {"a": rising, "b": flat}
    assert objective.curve_score(sweeps, {"a": span, "b": span}) == pytest.approx((50 + 32.5) / 2)
    with pytest.raises(ValueError, match="no sweep on c"):
        objective.curve_score(sweeps, {"c": span})


def test_flat_member_beats_cmc_on_the_mean_point_but_not_on_the_curve(store: Store) -> None:
    """On real data (Qwen3-8B AIME24, 11 betas), a family member frozen at CMC's beta-0.5 knobs dominates
    CMC's mean point (more accurate, fewer tokens: the old objectives prefer it) yet its curve score is far
    below CMC's, because it ignores beta: the failure the curve objective exists to refuse."""
    ds = store.load_dataset(SEARCH)
    frozen = dict(family.preset("cmc"))
    for knob, value in family.knobs_at(frozen, 0.5).items():
        frozen[f"{knob}.v0"] = frozen[f"{knob}.v1"] = value
    flat = [(b, r.accuracy, r.avg_total_tokens)
            for b, r in zip(BETAS, sweep([ds], [family.spec(frozen, b) for b in BETAS], shuffles=8, store=store),
                            strict=True)]
    cmc = objective.baseline_sweep(store, ds, BETAS, 8)

    def mean(s: list) -> tuple[float, float]:
        return sum(p[1] for p in s) / len(s), sum(p[2] for p in s) / len(s)

    (flat_acc, flat_tok), (cmc_acc, cmc_tok) = mean(flat), mean(cmc)
    assert flat_acc > cmc_acc and flat_tok < cmc_tok
    assert objective.point_score("accuracy", 0.0, flat_acc, flat_tok) > objective.point_score(
        "accuracy", 0.0, cmc_acc, cmc_tok)
    spans = objective.spans(store, [ds], BETAS, 8)
    assert spans[SEARCH].lo == cmc[0][2] and spans[SEARCH].hi == pytest.approx(objective.ceiling_tokens(ds))
    flat_score = objective.curve_score({SEARCH: flat}, spans)
    cmc_score = objective.curve_score({SEARCH: cmc}, spans)
    assert flat_score < cmc_score - 20 and not objective.rises(flat) and objective.rises(cmc)


def test_offline_curve_session_improves_on_cmc_with_a_rising_curve(store: Store) -> None:
    """A session with the (default) curve objective records each round's curve score computed from its
    stored search evaluations; the seed (CMC) scores exactly CMC's curve; every offline member moves the
    thorough way with beta (beta 0 cheapest knob values, beta 1 the most thorough, as in CMC); and within
    12 rounds the Optuna proposer finds a member whose measured curve score beats CMC's and that rises."""
    config = SessionConfig(name="curve", proposer="offline", search=(SEARCH,), betas=(0.0, 0.5, 1.0), shuffles=8,
                           rounds=12)
    assert config.objective == objective.CURVE
    assert start_session(store, config).status == "done"
    spans = objective.spans(store, [store.load_dataset(SEARCH)], config.betas, config.shuffles)
    for r in sessions.list_rounds(store, "curve"):
        evals = sessions.list_evaluations(store, "curve", SEARCH_SPLIT, r.round, r.attempt)
        assert r.score == pytest.approx(objective.curve_score(
            {SEARCH: [(e.beta, e.accuracy, e.tokens) for e in evals]}, spans))
        params = sessions.get_candidate(store, "curve", r.round, r.attempt).params
        for knob, sign in family.THOROUGH.items():
            assert (params[f"{knob}.v1"] - params[f"{knob}.v0"]) * sign >= 0, (r.round, knob)
    seed = next(r for r in sessions.list_rounds(store, "curve") if r.round == 0)
    cmc = objective.baseline_sweep(store, store.load_dataset(SEARCH), config.betas, config.shuffles)
    assert seed.score == pytest.approx(objective.curve_score({SEARCH: cmc}, spans))
    best = ranked(sessions.list_rounds(store, "curve"))[0]
    assert best.round > 0 and best.score > seed.score, (seed, best)
    best_sweep = [(e.beta, e.accuracy, e.tokens)
                  for e in sessions.list_evaluations(store, "curve", SEARCH_SPLIT, best.round, best.attempt)]
    assert objective.rises(best_sweep) and best_sweep[-1][1] > best_sweep[0][1]


def test_sessions_that_store_a_point_objective_resume_on_it(store: Store) -> None:
    """A session stored with the earlier ``accuracy`` objective keeps it: resumed with more rounds it ends
    exactly like an uninterrupted one (same trials from the two-objective sampler), scored by mean accuracy."""
    common = {"proposer": "offline", "search": (SEARCH,), "betas": (0.0, 1.0), "shuffles": 2,
              "objective": "accuracy"}
    start_session(store, SessionConfig(name="old", rounds=2, **common))
    run_session(store, "old", rounds=4)
    start_session(store, SessionConfig(name="straight", rounds=4, **common))
    old, straight = sessions.list_rounds(store, "old"), sessions.list_rounds(store, "straight")
    assert sessions.get_session(store, "old").config.objective == "accuracy"
    assert [(r.round, r.accuracy, r.tokens) for r in old] == [(r.round, r.accuracy, r.tokens) for r in straight]
    assert len(old) == 5 and all(math.isclose(r.score, r.accuracy) for r in old)
    params = [sessions.get_candidate(store, n, 3, 0).params for n in ("old", "straight")]
    assert params[0] == params[1]
