"""Once against a real local LLM: SmolLM2-135M behind llama.cpp's OpenAI-compatible server
(``tests.servers.llama_server``). Its controllers are mostly invalid; the loop must survive them,
retry with the error, and report what happened."""

from __future__ import annotations

from engine.discovery import SessionConfig, sessions, start_session
from engine.store import Store
from tests.discovery.conftest import HELDOUT, HELDOUT_MARK, SEARCH
from tests.servers import llama_server


def test_session_with_a_real_small_llm_survives_and_reports(store: Store) -> None:
    """A round with SmolLM2 as proposer ends with every request answered and stored, each candidate
    validated (an error recorded when invalid, retried while attempts remain), the round recorded,
    spend 0 for a local model, and no held-out data in any prompt."""
    with llama_server(n_ctx=8192) as base_url:
        config = SessionConfig(name="smollm2", proposer="openai/smollm2", api_base=base_url, search=(SEARCH,),
                               heldout=(HELDOUT,), betas=(0.0, 1.0), shuffles=2, rounds=1, retries=1,
                               prompt_budget=3000, max_tokens=200, temperature=0.2)
        final = start_session(store, config)
    assert final.status == "done", final.message
    calls = sessions.list_calls(store, "smollm2")
    assert calls and all(c.response is not None and c.completion_tokens > 0 and c.usd == 0 for c in calls)
    assert all(HELDOUT_MARK not in c.prompt and HELDOUT not in c.prompt for c in calls)
    cands = [c for c in sessions.list_candidates(store, "smollm2") if c.round == 1]
    proposals = [c for c in cands if c.origin == "propose"]
    assert proposals and all(c.valid or c.error for c in cands)
    if not proposals[0].valid:  # an invalid first answer is retried, shown its error
        retry = next(c for c in calls if c.purpose == "propose" and c.attempt == 1)
        assert "failed validation" in retry.prompt
    record = next(r for r in sessions.list_rounds(store, "smollm2") if r.round == 1)
    assert record.summary and record.prompt_tokens > 0
