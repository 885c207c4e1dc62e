"""Multi-fidelity search: an LLM-written candidate is screened at ``screen_shuffles`` and only a promising
one gets the full evaluation. The proposer is a real local HTTP server answering with SCRIPTED CONTENT
(``tests.servers.scripted_server``): CMC's reference-format file (as good as the best, so promoted) and
a weak vote controller (screened out)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.discovery import SessionConfig, objective, ranked, sessions, start_session
from engine.discovery.sessions import HELDOUT as HELDOUT_SPLIT
from engine.discovery.sessions import SCREEN, SCREENED_OUT, round_status
from engine.discovery.sessions import SEARCH as SEARCH_SPLIT
from engine.paths import PROJECT_ROOT
from engine.store import Store
from tests.discovery import scripted
from tests.discovery.conftest import HELDOUT, SEARCH, store_with_heldout
from tests.servers import scripted_server

CMC_FILE = (PROJECT_ROOT / "examples" / "controllers" / "cmc_reference_style.py").read_text()
NAME = "screened"
SHUFFLES, SCREEN_SHUFFLES = 4, 2


def screening_reply(endpoint: str, body: dict) -> str:
    """SCRIPTED CONTENT that depends only on the prompt (so a resumed process gets the same answers): the
    first proposal (the prompt shows only the seed) is CMC's reference file, every later one a weak vote."""
    text = body["messages"][0]["content"]
    return scripted.fenced(CMC_FILE if text.count("### Round") == 1 else scripted.good(1))


def screening_config(name: str, base_url: str, **changes: object) -> SessionConfig:
    settings = {"search": (SEARCH,), "heldout": (HELDOUT,), "betas": (0.0, 1.0), "shuffles": SHUFFLES,
                "screen_shuffles": SCREEN_SHUFFLES, "rounds": 3, "retries": 0, "critic": False, **changes}
    return SessionConfig(name=name, proposer="openai/scripted", api_base=base_url, **settings)


@pytest.fixture(scope="module")
def run(real_store_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """One screening session of 3 rounds: round 1 promoted, rounds 2 and 3 screened out."""
    store = store_with_heldout(real_store_path, tmp_path_factory.mktemp("screening") / "d.duckdb")
    with scripted_server(screening_reply) as server:
        final = start_session(store, screening_config(NAME, server.base_url))
        requests = list(server.requests)
    return store, requests, final


def rows(store: Store, split: str, rnd: int) -> list[sessions.Evaluation]:
    return sessions.list_evaluations(store, NAME, split, rnd)


def test_a_promising_candidate_is_screened_then_evaluated_in_full(run) -> None:
    """Round 1 (CMC's own file, as good as the seed) is evaluated at the screen count, compared with the
    seed's figures at the same count (evaluated on demand) and promoted: it then has full search and
    held-out rows, and its score is computed from its full-count search rows only."""
    store, _, final = run
    assert final.status == "done", final.message
    r1 = next(r for r in sessions.list_rounds(store, NAME) if r.round == 1)
    assert round_status(r1) == "evaluated" and r1.score is not None
    screen, search = rows(store, SCREEN, 1), rows(store, SEARCH_SPLIT, 1)
    assert len(screen) == len(search) == 2 and len(rows(store, HELDOUT_SPLIT, 1)) == 2
    assert {e.result_key for e in screen}.isdisjoint(e.result_key for e in search)  # other shuffle count
    assert len(rows(store, SCREEN, 0)) == 2  # the seed's screen figures, once, for the comparison
    spans = objective.spans(store, [store.load_dataset(SEARCH)], (0.0, 1.0), SHUFFLES)
    full = objective.curve_score({SEARCH: [(e.beta, e.accuracy, e.tokens) for e in search]}, spans)
    assert r1.score == pytest.approx(full)


def test_a_weak_candidate_is_screened_out_with_its_reason(run) -> None:
    """Rounds 2 and 3 (a one-branch vote) score far below the best at the screen count: recorded with their
    screen figures and the reason, never evaluated in full or on held-out data, never ranked."""
    store, _, _ = run
    records = {r.round: r for r in sessions.list_rounds(store, NAME)}
    for rnd in (2, 3):
        r = records[rnd]
        assert round_status(r) == SCREENED_OUT and r.accuracy is None and r.attempt == 0
        assert r.summary.startswith(f"{SCREENED_OUT} at {SCREEN_SHUFFLES} shuffles: score ")
        assert len(rows(store, SCREEN, rnd)) == 2
        assert rows(store, SEARCH_SPLIT, rnd) == [] and rows(store, HELDOUT_SPLIT, rnd) == []
    assert {r.round for r in ranked(list(records.values()))} == {0, 1}


def test_rankings_never_mix_shuffle_counts(run) -> None:
    """Every ranked score equals the objective recomputed from that candidate's full-count search rows,
    and the screened-out reason compares two scores recomputed from screen rows at the same count."""
    store, _, _ = run
    ds = [store.load_dataset(SEARCH)]
    by_count = {n: objective.spans(store, ds, (0.0, 1.0), n) for n in (SHUFFLES, SCREEN_SHUFFLES)}

    def score(split: str, rnd: int, attempt: int, n: int) -> float:
        evals = sessions.list_evaluations(store, NAME, split, rnd, attempt)
        return objective.curve_score({SEARCH: [(e.beta, e.accuracy, e.tokens) for e in evals]}, by_count[n])

    records = sessions.list_rounds(store, NAME)
    for r in ranked(records):
        assert r.score == pytest.approx(score(SEARCH_SPLIT, r.round, r.attempt, SHUFFLES))
    best = ranked(records)[0]
    r2 = next(r for r in records if r.round == 2)
    expected = (f"score {score(SCREEN, 2, 0, SCREEN_SHUFFLES):.2f} < "
                f"{score(SCREEN, best.round, best.attempt, SCREEN_SHUFFLES):.2f} (best, round {best.round}")
    assert expected in r2.summary


def test_the_next_prompt_shows_a_screened_out_candidate_labelled_with_its_shuffle_count(run) -> None:
    """Round 3's prompt lists round 2 as screened out, with its screen table and the shuffle counts, after
    the fully evaluated candidates."""
    store, requests, _ = run
    prompt = next(c.prompt for c in sessions.list_calls(store, NAME) if c.round == 3)
    assert "### Round 2 (screened out)" in prompt
    assert f"figures below at {SCREEN_SHUFFLES} shuffles, not comparable with the {SHUFFLES}-shuffle" in prompt
    assert prompt.index("### Round 1") < prompt.index("### Round 2 (screened out)")
    assert len(requests) == 3


def test_stored_configs_without_screening_resume_as_before() -> None:
    """A config stored before screening existed has no screen_shuffles: it loads with screening off; a new
    config screens LLM candidates by default, never offline ones, nor when the screen count is not smaller."""
    new = SessionConfig(name="n", proposer="openai/x", search=(SEARCH,), shuffles=100)
    assert new.screens and new.screen_shuffles == 10
    stored = new.to_json().replace('"screen_shuffles": 10, ', "")
    assert "screen_shuffles" not in stored
    assert not SessionConfig.from_json(stored).screens and SessionConfig.from_json(stored).screen_shuffles is None
    assert not SessionConfig(name="o", proposer="offline", search=(SEARCH,)).screens
    assert not SessionConfig(name="s", proposer="openai/x", search=(SEARCH,), shuffles=10).screens
