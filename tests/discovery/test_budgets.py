"""Dollar and wall-clock budgets stop a session cleanly (between steps, every finished round whole) and
a stopped session resumes with a larger budget. The LLM is a real local HTTP server answering with
SCRIPTED CONTENT (``tests.servers.scripted_server``), priced by litellm as gpt-4o-mini."""

from __future__ import annotations

import threading
import time

import pytest

from engine.discovery import SessionConfig, run_session, sessions, start_session
from engine.discovery.sessions import SEARCH as SEARCH_SPLIT
from engine.store import Store
from tests.discovery import scripted
from tests.discovery.conftest import SEARCH
from tests.servers import scripted_server

BETAS = (0.0, 1.0)


def reply(endpoint: str, body: dict) -> str:
    text = body["messages"][0]["content"]
    return scripted.fenced(scripted.good(1 + text.count("### Round")))


def assert_rounds_whole(store: Store, name: str) -> list[int]:
    """Every recorded round has all its search evaluations; returns the round numbers."""
    rounds = [r for r in sessions.list_rounds(store, name) if r.round > 0]
    for r in rounds:
        assert len(sessions.list_evaluations(store, name, SEARCH_SPLIT, r.round, r.attempt)) == len(BETAS)
    return [r.round for r in rounds]


def test_dollar_budget_stops_before_the_next_request(store: Store) -> None:
    """Once litellm's priced spend reaches the budget no further request is sent; raising the budget
    resumes the same session from where it stopped."""
    with scripted_server(reply) as server:
        config = SessionConfig(name="dollars", proposer="openai/gpt-4o-mini", api_base=server.base_url,
                               search=(SEARCH,), betas=BETAS, shuffles=2, rounds=4, critic=False,
                               budget_usd=0.0004)
        final = start_session(store, config)
        calls = sessions.list_calls(store, "dollars")
        assert final.status == "budget" and "spend budget" in final.message
        assert all(c.usd > 0 for c in calls) and len(server.requests) == len(calls)
        assert config.budget_usd <= final.spent_usd < config.budget_usd + max(c.usd for c in calls)
        done = assert_rounds_whole(store, "dollars")
        assert 0 < len(done) < 4
        resumed = run_session(store, "dollars", budget_usd=1.0)
    assert resumed.status == "done" and assert_rounds_whole(store, "dollars") == [1, 2, 3, 4]


def test_wall_clock_budget_stops_at_a_step_boundary(store: Store) -> None:
    """A wall-clock budget ends the session at the first step boundary past it, with whole rounds
    recorded; resuming with more time continues the round count without redoing any round."""
    config = SessionConfig(name="clock", proposer="offline", search=(SEARCH,), betas=BETAS, shuffles=2, rounds=500,
                           budget_seconds=8.0)
    final = start_session(store, config)
    assert final.status == "budget" and "wall-clock" in final.message
    assert 8.0 <= final.elapsed_seconds < 8.0 + 10
    first = assert_rounds_whole(store, "clock")
    assert 0 < len(first) < 500 and first == list(range(1, len(first) + 1))
    resumed = run_session(store, "clock", budget_seconds=final.elapsed_seconds + 6.0)
    more = assert_rounds_whole(store, "clock")
    assert resumed.status == "budget" and more[: len(first)] == first and len(more) > len(first)
    assert more == list(range(1, len(more) + 1))


SLOW = scripted.GOOD.format(base=1).replace("    def solve(self, question):\n",
                                            "    def solve(self, question):\n        time.sleep(0.05)\n", 1)
SLOW = "import time\n" + SLOW


@pytest.mark.parametrize(("step", "screen"), [("evaluate", None), ("screen", 10)])
def test_a_stop_request_cancels_a_candidates_evaluation_batch(store: Store, step: str, screen: int | None) -> None:
    """A candidate's sandbox batch takes minutes on real sizes: a stop requested while it runs (the page's
    Stop button sets the store's flag), the full-count batch or the screen batch, ends the session within
    seconds as 'stopped', without recording a partial round or blaming the candidate, instead of after the
    whole batch."""
    with scripted_server(lambda endpoint, body: scripted.fenced(SLOW)) as server:
        config = SessionConfig(name="halt", proposer="openai/gpt-4o-mini", api_base=server.base_url,
                               search=(SEARCH,), betas=BETAS, shuffles=20, rounds=1, critic=False,
                               screen_shuffles=screen)
        outcome: list = []
        runner = threading.Thread(target=lambda: outcome.append(start_session(store, config)))
        runner.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            session = next((s for s in sessions.list_sessions(store) if s.name == "halt"), None)
            if session is not None and session.round == 1 and session.step == step:
                break
            time.sleep(0.1)
        time.sleep(1.0)  # the batch is running: 1,200 (screen: 600) episodes of 50 ms on two workers take ~30 s
        asked = time.monotonic()
        sessions.request_stop(store, "halt")
        runner.join(timeout=60)
        stopped_after = time.monotonic() - asked
    assert outcome and outcome[0].status == "stopped", outcome
    assert stopped_after < 15, f"the batch ran on for {stopped_after:.1f} s after the stop request"
    assert [r.round for r in sessions.list_rounds(store, "halt")] == [0]
    assert not any("evaluation failed" in (c.error or "") for c in sessions.list_candidates(store, "halt"))
