"""Resume after SIGKILL at every step: a real `python -m engine discover` subprocess is killed as each step
starts, then resumed with --resume; the finished session must equal an uninterrupted one. The LLM is a real
local HTTP server answering with SCRIPTED CONTENT (``tests.servers.scripted_server``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from engine.discovery import SessionConfig, sessions, start_session
from engine.discovery.sessions import HELDOUT as HELDOUT_SPLIT
from engine.discovery.sessions import SCREEN
from engine.discovery.sessions import SEARCH as SEARCH_SPLIT
from engine.paths import PROJECT_ROOT
from engine.store import Store
from tests.discovery import scripted
from tests.discovery.conftest import HELDOUT, SEARCH
from tests.discovery.test_screening import SCREEN_SHUFFLES, SHUFFLES, screening_config, screening_reply
from tests.servers import scripted_server

LLM_KILLS = ["round 0: evaluate", "round 1: prompt", "round 1: ask", "round 1: validate", "round 1: critic",
             "round 1: critic: ask", "round 1: evaluate", "round 1: heldout", "round 1: record"]
SCREEN_KILLS = ["round 1: screen", "round 1: evaluate", "round 1: record", "round 2: screen", "round 2: record"]
OFFLINE_KILLS = ["round 1: ask", "round 2: evaluate", "round 3: record"]
STEP_TIMEOUT = 180


def reply(endpoint: str, body: dict) -> str:
    """Scripted answers that depend only on the prompt, so a resumed process gets the same ones."""
    text = body["messages"][0]["content"]
    if "Candidate under review" in text:
        return "APPROVE"
    if "failed validation" in text:
        return scripted.fenced(scripted.good(2 + text.count("### Round")))
    return scripted.fenced(scripted.BROKEN)


def discover(db: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.Popen([sys.executable, "-m", "engine", "--db", str(db), "discover", "--verbose", *args],
                            cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_at(proc: subprocess.Popen, line: str) -> list[str]:
    """Read the process's step lines until ``line``, then SIGKILL it; returns what it printed."""
    seen = []
    for out in proc.stdout:
        seen.append(out.rstrip("\n"))
        if seen[-1] == line:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            return seen
    proc.wait(30)
    raise AssertionError(f"never reached {line!r}; printed {seen[-5:]}, stderr {proc.stderr.read()[-1500:]}")


def run_with_kills(db: Path, first_args: list[str], name: str, kills: list[str]) -> list[list[str]]:
    outputs = [kill_at(discover(db, *first_args), kills[0])]
    for line in kills[1:]:
        outputs.append(kill_at(discover(db, "--resume", name), line))
    last = discover(db, "--resume", name)
    out, err = last.communicate(timeout=STEP_TIMEOUT * 3)
    assert last.returncode == 0, err[-2000:]
    outputs.append(out.splitlines())
    return outputs


def snapshot(store: Store, name: str) -> dict:
    """Everything a session decided and measured, minus timings and cache flags."""
    return {
        "rounds": [(r.round, r.attempt, r.parent, r.seen, r.summary, r.accuracy, r.tokens, r.heldout_accuracy,
                    r.heldout_tokens, r.trace, r.prompt_tokens) for r in sessions.list_rounds(store, name)],
        "candidates": [(c.round, c.attempt, c.origin, c.code, c.params, c.valid, c.error)
                       for c in sessions.list_candidates(store, name)],
        "calls": [(c.round, c.purpose, c.attempt, c.prompt, c.response) for c in sessions.list_calls(store, name)],
        "evaluations": [(e.round, e.attempt, e.split, e.dataset, e.beta, e.result_key, e.accuracy, e.tokens)
                        for split in (SEARCH_SPLIT, SCREEN, HELDOUT_SPLIT)
                        for e in sessions.list_evaluations(store, name, split)],
    }


def test_llm_session_killed_at_every_step_resumes_to_the_same_result(store_path: Path) -> None:
    """Killed with SIGKILL as each step starts (seed evaluation, prompt, request, validation, critic,
    evaluation, held-out, record) and resumed each time, a session ends exactly like an uninterrupted
    one: same prompts, replies, candidates and figures; no stored answer was requested again and no
    recorded evaluation was redone."""
    with scripted_server(reply) as server:
        args = ["--proposer", "openai/scripted", "--api-base", server.base_url, "--search", SEARCH,
                "--heldout", HELDOUT, "--betas", "0,1", "--shuffles", "2", "--rounds", "2", "--retries", "1",
                "--session", "killed", "--prompt-budget", "4000"]
        run_with_kills(store_path, args, "killed", LLM_KILLS)
        killed_requests = list(server.requests)
        store = Store(store_path)
        reference = SessionConfig(name="reference", proposer="openai/scripted", api_base=server.base_url,
                                  search=(SEARCH,), heldout=(HELDOUT,), betas=(0.0, 1.0), shuffles=2, rounds=2,
                                  retries=1, prompt_budget=4000)
        assert start_session(store, reference).status == "done"
    killed, ref = snapshot(store, "killed"), snapshot(store, "reference")
    assert killed == ref
    assert sessions.get_session(store, "killed").status == "done"
    assert len(killed["calls"]) == 6 and all(c[4] is not None for c in killed["calls"])
    # A prompt is sent twice only if the process died while waiting for its answer (two 'ask' kills).
    sent = Counter(body["messages"][0]["content"] for _, body in killed_requests)
    assert set(sent) == {c[3] for c in killed["calls"]}
    assert sum(n - 1 for n in sent.values()) <= 2 and max(sent.values()) <= 2


def test_offline_session_killed_mid_round_resumes_with_the_same_trials(store_path: Path) -> None:
    """The Optuna proposer rebuilt from the stored trials asks the same next member after a SIGKILL,
    so a killed and resumed offline session equals an uninterrupted one trial for trial."""
    args = ["--proposer", "offline", "--search", SEARCH, "--betas", "0,0.5,1", "--shuffles", "4", "--rounds", "4",
            "--session", "offline-killed"]
    run_with_kills(store_path, args, "offline-killed", OFFLINE_KILLS)
    store = Store(store_path)
    reference = SessionConfig(name="offline-reference", proposer="offline", search=(SEARCH,), betas=(0.0, 0.5, 1.0),
                              shuffles=4, rounds=4)
    assert start_session(store, reference).status == "done"
    killed, ref = snapshot(store, "offline-killed"), snapshot(store, "offline-reference")
    assert killed == ref and len(killed["rounds"]) == 5


def test_screening_session_killed_across_the_screen_and_full_boundary_resumes_to_the_same_result(
        store_path: Path) -> None:
    """Killed as the screen starts, between the screen and the full evaluation, before a promoted and before
    a screened-out round is recorded, a screening session resumes to exactly the uninterrupted one: same
    screen, search and held-out rows (nothing evaluated twice: one row per candidate, split, dataset and
    beta, equal to the reference's), same decisions, and every prompt sent once."""
    with scripted_server(screening_reply) as server:
        args = ["--proposer", "openai/scripted", "--api-base", server.base_url, "--search", SEARCH,
                "--heldout", HELDOUT, "--betas", "0,1", "--shuffles", str(SHUFFLES), "--screen-shuffles",
                str(SCREEN_SHUFFLES), "--rounds", "2", "--retries", "0", "--no-critic", "--session", "killed"]
        run_with_kills(store_path, args, "killed", SCREEN_KILLS)
        killed_requests = list(server.requests)
        store = Store(store_path)
        assert start_session(store, screening_config("reference", server.base_url, rounds=2)).status == "done"
    killed, ref = snapshot(store, "killed"), snapshot(store, "reference")
    assert killed == ref
    assert sessions.get_session(store, "killed").config.screen_shuffles == SCREEN_SHUFFLES
    assert [r[4].startswith("screened out") for r in killed["rounds"]] == [False, False, True]
    # seed and round 1: screen, search and held-out rows at 2 betas; round 2 (screened out): screen rows only
    assert len(killed["evaluations"]) == len(set(e[:5] for e in killed["evaluations"])) == 2 * 3 * 2 + 2
    sent = Counter(body["messages"][0]["content"] for _, body in killed_requests)
    assert sorted(sent.values()) == [1, 1] and set(sent) == {c[3] for c in killed["calls"]}
