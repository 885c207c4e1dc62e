"""The offline proposer: Optuna over the CMC beta-map family, evaluated in the compiled kernel."""

from __future__ import annotations

from engine.controllers import BETAS
from engine.controllers.cmc import CMC
from engine.discovery import SessionConfig, family, lineage, ranked, sessions, start_session
from engine.evaluate import ControllerSpec, run_episodes, run_python
from engine.saved import get_controller
from engine.store import Store
from tests.cli_runner import cli
from tests.discovery.conftest import SEARCH


def test_family_preset_is_cmc_exactly() -> None:
    """The family's ``cmc`` member sets every knob to CMC's own schedule value at each of the 11 betas, and
    every member's knobs are monotonic in beta (the one-beta requirement holds by construction)."""
    params = family.preset("cmc")
    for beta in BETAS:
        assert family.knobs_at(params, beta) == CMC.schedule(beta)
    odd = {**params, "n_init.v0": 12, "n_init.v1": 3, "n_init.p": 2.0, "ema_alpha.p": 0.5}
    series = [family.knobs_at(odd, b) for b in BETAS]
    for knob in family.KNOBS:
        values = [s[knob] for s in series]
        assert values == sorted(values) or values == sorted(values, reverse=True), knob


def test_offline_search_improves_on_its_seed(store: Store) -> None:
    """Within a few rounds the Optuna proposer finds a member whose measured search score (accuracy minus
    a token penalty) beats the seed's (CMC) measured score."""
    config = SessionConfig(name="improve", proposer="offline", search=(SEARCH,), betas=(0.0, 0.5, 1.0), shuffles=8,
                           rounds=12, objective="penalised", gamma=0.02)
    assert start_session(store, config).status == "done"
    records = sessions.list_rounds(store, "improve")
    seed = next(r for r in records if r.round == 0)
    best = ranked(records)[0]
    assert best.round > 0 and best.score > seed.score, (seed, best)


def test_promoted_family_member_runs_as_a_file_with_the_same_figures(store: Store) -> None:
    """`promote` saves a family member as a reference-format file, with its session and round as lineage;
    that file, run as plain Python, replays exactly as the compiled kernel evaluated the member."""
    config = SessionConfig(name="promo", proposer="offline", search=(SEARCH,), betas=(0.0, 1.0), shuffles=2, rounds=2)
    start_session(store, config)
    done = cli("promote", "promo", "2", "--name", "found", db=store.path)
    assert done.returncode == 0, done.stderr
    saved = get_controller(store, "found")
    assert saved.origin == {"session": "promo", "round": 2, "attempt": 0}
    params = sessions.get_candidate(store, "promo", 2, 0).params
    ds = store.load_dataset(SEARCH)
    for beta in (0.0, 0.7, 1.0):
        kernel = run_episodes(ds, family.spec(params, beta), shuffles=3)
        python = run_python(ds, ControllerSpec.from_source(saved.source, saved.class_name, {"beta": beta}).build(),
                            shuffles=3)
        assert kernel.answers == python.answers and (kernel.total_tokens == python.total_tokens).all()
    listed = cli("sessions", db=store.path)
    assert listed.returncode == 0 and "promo" in listed.stdout and "offline" in listed.stdout
    assert lineage.diff("a\n", "b\n").startswith("--- parent")
