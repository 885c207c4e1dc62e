"""End to end against a real local OpenAI-compatible HTTP server whose answers are SCRIPTED CONTENT
(``tests.servers.scripted_server``): valid code, broken code, an infinite loop, code hunting for gold
answers, code ignoring beta, a critic revision, and the held-out isolation of every prompt."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.discovery import SessionConfig, lineage, sessions, start_session
from engine.discovery.prompts import CURVE_TASK, curve_table
from engine.discovery.sessions import HELDOUT as HELDOUT_SPLIT
from engine.discovery.sessions import SEARCH as SEARCH_SPLIT
from engine.paths import data_dir
from tests.discovery import scripted
from tests.discovery.conftest import HELDOUT, HELDOUT_MARK, SEARCH, store_with_heldout
from tests.servers import scripted_server

SECRET = "sk-test-DO-NOT-STORE-8f3a"
NAME = "scripted"


@pytest.fixture(scope="module")
def run(real_store_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """One scripted session of 4 rounds (retries 2, critic on); returns (store, server requests, session)."""
    store = store_with_heldout(real_store_path, tmp_path_factory.mktemp("scripted") / "d.duckdb")
    script = [
        scripted.fenced(scripted.BROKEN), scripted.fenced(scripted.good(3)), "APPROVE",  # round 1
        scripted.fenced(scripted.LOOPS), scripted.fenced(scripted.IGNORES_BETA),  # round 2
        scripted.fenced(scripted.reads_gold(str(data_dir()), str(store.path))), "APPROVE",
        *[scripted.fenced(scripted.BROKEN)] * 3,  # round 3: never valid
        scripted.fenced(scripted.good(1)), "Better: " + scripted.fenced(scripted.good(5)),  # round 4: critic revises
    ]
    replies = iter(script)
    config = SessionConfig(name=NAME, proposer="openai/scripted", search=(SEARCH,), heldout=(HELDOUT,),
                           betas=(0.0, 1.0), shuffles=2, rounds=4, retries=2, prompt_budget=4000)
    with scripted_server(lambda endpoint, body: next(replies)) as server:
        config = SessionConfig(**{**config.__dict__, "api_base": server.base_url})
        final = start_session(store, config, api_key=SECRET)
        requests = list(server.requests)
    return store, requests, final


def prompts_of(requests: list) -> list[str]:
    return [m["content"] for _, body in requests for m in body["messages"]]


def test_session_survives_every_kind_of_bad_candidate(run) -> None:
    """Broken, looping and beta-ignoring code is rejected with its error and retried; a round whose
    every attempt fails is recorded as invalid and the session carries on to its last round."""
    store, requests, final = run
    assert final.status == "done", final.message
    cands = {(c.round, c.attempt): c for c in sessions.list_candidates(store, NAME)}
    assert "SyntaxError" in cands[(1, 0)].error and cands[(1, 1)].valid
    assert not cands[(2, 0)].valid and "time" in cands[(2, 0)].error.lower()
    assert "behave identically" in cands[(2, 1)].error
    assert all(not cands[(3, a)].valid for a in range(3))
    rounds = {r.round: r for r in sessions.list_rounds(store, NAME)}
    assert rounds[3].attempt == sessions.NO_CANDIDATE and rounds[3].summary.startswith("invalid")
    assert rounds[1].attempt == 1 and rounds[1].score is not None and rounds[1].accuracy > 0
    # Each retry's request showed the previous error.
    texts = prompts_of(requests)
    assert "SyntaxError" in texts[1] and "behave identically" in texts[5]
    assert len(requests) == len(sessions.list_calls(store, NAME)) == 12


def test_gold_answers_are_unreachable(run) -> None:
    """Code that searches the question object, the interpreter's memory, the data files and the store for
    gold answers finds none: every one of its episodes is graded wrong."""
    store, _, _ = run
    chosen = next(r for r in sessions.list_rounds(store, NAME) if r.round == 2)
    assert chosen.attempt == 2
    evals = sessions.list_evaluations(store, NAME, SEARCH_SPLIT, 2) + sessions.list_evaluations(
        store, NAME, HELDOUT_SPLIT, 2)
    assert len(evals) == 4 and all(e.accuracy == 0.0 for e in evals)


def test_critic_revision_replaces_the_candidate(run) -> None:
    """A critic reply with code is validated and, being valid, is the round's evaluated candidate."""
    store, requests, _ = run
    r4 = next(r for r in sessions.list_rounds(store, NAME) if r.round == 4)
    cand = sessions.get_candidate(store, NAME, 4, r4.attempt)
    assert cand.origin == "critic" and "5 + round(10 * beta)" in cand.code
    assert "Candidate under review" in prompts_of(requests)[-1]


def test_no_heldout_question_answer_or_figure_reaches_the_proposer(run) -> None:
    """Every stored prompt and every request the server received is free of the held-out dataset's name,
    questions, answers and figures, although held-out figures were computed and stored."""
    store, requests, _ = run
    held = sessions.list_evaluations(store, NAME, HELDOUT_SPLIT)
    assert held, "held-out evaluations should exist (for display)"
    search_cells = {curve_table([(e.beta, {"x": (e.accuracy, e.tokens)})]).splitlines()[1].split("| ")[1]
                    for e in sessions.list_evaluations(store, NAME, SEARCH_SPLIT)}
    held_cells = {curve_table([(e.beta, {"x": (e.accuracy, e.tokens)})]).splitlines()[1].split("| ")[1]
                  for e in held} - search_cells
    texts = [c.prompt for c in sessions.list_calls(store, NAME)] + prompts_of(requests)
    assert len(texts) == 24
    for text in texts:
        assert HELDOUT_MARK not in text and HELDOUT not in text and "Secret" not in text
        assert not any(re.search(rf"(?<![\d.]){re.escape(cell)}(?![\d.])", text) for cell in held_cells)


def test_api_key_is_never_stored(run) -> None:
    """The key handed to the session in memory is in no table and nowhere in the database file."""
    store, _, final = run
    assert SECRET not in final.config.to_json()
    with store.connect() as con:
        tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        for table in tables:
            assert con.execute(f"SELECT count(*) FROM {table} t WHERE contains(t::VARCHAR, ?)",
                               [SECRET]).fetchone()[0] == 0, table
    assert SECRET.encode() not in Path(store.path).read_bytes()


def test_costs_and_timings_are_recorded(run) -> None:
    """Each call stores its prompt size, reply size, dollars (0 for a model litellm does not price) and time."""
    store, _, final = run
    calls = sessions.list_calls(store, NAME)
    assert all(c.prompt_tokens > 0 and c.completion_tokens > 0 and c.usd == 0 and c.seconds >= 0 for c in calls)
    assert final.spent_usd == 0 and final.elapsed_seconds > 0
    assert all(r.seconds > 0 for r in sessions.list_rounds(store, NAME))


def test_session_stats_count_what_the_proposer_and_critic_did(run) -> None:
    """The comparison figures (valid answers, retries, critic requests and revisions, valid rounds) count
    the scripted session's events exactly: 9 answers of which 3 valid, 5 retries, 3 critic requests,
    1 revision that became the round's candidate, 3 of 4 rounds with a candidate."""
    store, _, final = run
    s = lineage.stats(store, NAME)
    assert (s.proposals, s.valid_proposals, s.retries) == (9, 3, 5)
    assert (s.critic, s.critic_calls, s.critic_revisions) == (True, 3, 1)
    assert (s.rounds, s.valid_rounds) == (4, 3) and s.valid_rate == 3 / 9
    best = sessions.list_rounds(store, NAME)
    assert s.best_score == max(r.score for r in best if r.score is not None)
    assert s.best_new_score == max(r.score for r in best if r.score is not None and r.round > 0)
    assert s.spent_usd == final.spent_usd and s.seconds == final.elapsed_seconds


def test_curve_session_prompts_say_how_candidates_are_ranked(run) -> None:
    """A session on the (default) curve objective tells the proposer how it ranks (the curve task) and shows
    each past candidate's curve score: the seed's score in the first prompt is the one stored for it."""
    store, requests, final = run
    assert final.config.objective == "curve"
    first = prompts_of(requests)[0]
    seed = next(r for r in sessions.list_rounds(store, NAME) if r.round == 0)
    assert CURVE_TASK in first and f"### Round 0 (curve score {seed.score:.2f})" in first
