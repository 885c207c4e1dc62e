"""The discovery tables' queries (schema: migration 3 in ``engine.store``): sessions and their steps.

Every write is one small transaction, so a process killed at any point leaves the rows of the
steps it finished and nothing half-written.
"""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import Any

from engine.discovery.config import ConfigError, SessionConfig
from engine.store import Store, StoreError

SEARCH, HELDOUT = "search", "heldout"
SCREEN = "screen"  # search datasets at the session's screen_shuffles: compared only with other screen figures
NO_CANDIDATE = -1  # discovery_rounds.attempt of a round whose candidates were all invalid
SCREENED_OUT = "screened out"  # the summary prefix of a round whose candidate the screen did not promote


class UnknownSession(StoreError, LookupError):
    """No discovery session has that name."""


@dataclass(frozen=True)
class Session:
    """One row of ``discovery_sessions``."""

    name: str
    config: SessionConfig
    status: str
    step: str
    round: int
    spent_usd: float
    elapsed_seconds: float
    pid: int | None
    stop_requested: bool
    message: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Call:
    """One proposer request (``response`` None: asked, answer not stored)."""

    round: int
    purpose: str
    attempt: int
    prompt: str
    prompt_tokens: int
    response: str | None
    completion_tokens: int | None
    usd: float | None
    seconds: float | None
    error: str | None


@dataclass(frozen=True)
class Candidate:
    """One extracted candidate and its validation."""

    round: int
    attempt: int
    origin: str  # propose, critic, seed
    kind: str  # source, family, builtin
    class_name: str | None
    code: str | None
    params: dict[str, Any] | None
    valid: bool
    error: str | None
    seconds: float


@dataclass(frozen=True)
class RoundRecord:
    """A finished round (or one seed of round 0): its chosen candidate and figures."""

    round: int
    attempt: int
    parent: int | None
    seen: list[int]
    summary: str
    score: float | None
    accuracy: float | None
    tokens: float | None
    heldout_accuracy: float | None
    heldout_tokens: float | None
    trace: str
    prompt_tokens: int
    usd: float
    seconds: float
    completed_at: datetime


def round_status(r: RoundRecord) -> str:
    """``invalid`` (no valid candidate), ``screened out`` (screen figures only, no search score) or ``evaluated``."""
    if r.attempt == NO_CANDIDATE:
        return "invalid"
    return SCREENED_OUT if r.score is None else "evaluated"


@dataclass(frozen=True)
class Evaluation:
    """One (dataset, beta) evaluation of a candidate."""

    round: int
    attempt: int
    split: str
    dataset: str
    beta: float
    result_key: str
    accuracy: float
    tokens: float
    seconds: float
    cached: bool


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# -- sessions ---------------------------------------------------------------------------------
_SESSION_COLS = ("name, config, status, step, round, spent_usd, elapsed_seconds, pid, stop_requested, message, "
                 "created_at, updated_at")


def create_session(store: Store, config: SessionConfig) -> Session:
    """A new session row; refuses a name in use."""
    with store.writing() as con:
        if con.execute("SELECT 1 FROM discovery_sessions WHERE name = ?", [config.name]).fetchone():
            raise ConfigError(f"a session named {config.name!r} exists; resume it with --resume {config.name}")
        con.execute(f"INSERT INTO discovery_sessions ({_SESSION_COLS}) VALUES (?, ?, 'new', 'new', 0, 0, 0, NULL, "
                    "false, '', ?, ?)", [config.name, config.to_json(), _now(), _now()])
    return get_session(store, config.name)


def get_session(store: Store, name: str) -> Session:
    with store.connect() as con:
        row = con.execute(f"SELECT {_SESSION_COLS} FROM discovery_sessions WHERE name = ?", [name]).fetchone()
    if row is None:
        raise UnknownSession(f"no discovery session {name!r} (list them with `python -m engine sessions`)")
    return _session(row)


def list_sessions(store: Store) -> list[Session]:
    """Every session, newest first."""
    with store.connect() as con:
        rows = con.execute(f"SELECT {_SESSION_COLS} FROM discovery_sessions ORDER BY created_at DESC").fetchall()
    return [_session(r) for r in rows]


def _session(row: tuple) -> Session:
    values = list(row)
    values[1] = SessionConfig.from_json(values[1])
    return Session(*values)


def update_session(store: Store, name: str, **changes: Any) -> None:
    """Set columns of a session (``config`` may be a ``SessionConfig``)."""
    if "config" in changes and isinstance(changes["config"], SessionConfig):
        changes["config"] = changes["config"].to_json()
    sets = ", ".join(f"{k} = ?" for k in changes)
    with store.writing() as con:
        con.execute(f"UPDATE discovery_sessions SET {sets}, updated_at = ? WHERE name = ?",
                    [*changes.values(), _now(), name])


def begin_step(store: Store, name: str, step: str, rnd: int, elapsed: float) -> Session:
    """Record the step a session starts and return its row (one connection: steps are frequent)."""
    with store.writing() as con:
        con.execute("UPDATE discovery_sessions SET step = ?, round = ?, elapsed_seconds = ?, updated_at = ? "
                    "WHERE name = ?", [step, rnd, elapsed, _now(), name])
        row = con.execute(f"SELECT {_SESSION_COLS} FROM discovery_sessions WHERE name = ?", [name]).fetchone()
    return _session(row)


def request_stop(store: Store, name: str) -> None:
    """Ask the session's process to stop at its next step boundary."""
    get_session(store, name)
    update_session(store, name, stop_requested=True)


def delete_session(store: Store, name: str) -> None:
    """Remove a session and every row of its steps (its cached results stay)."""
    with store.writing() as con:
        for table in ("discovery_calls", "discovery_candidates", "discovery_evaluations", "discovery_rounds"):
            con.execute(f"DELETE FROM {table} WHERE session = ?", [name])
        con.execute("DELETE FROM discovery_sessions WHERE name = ?", [name])


# -- proposer calls -----------------------------------------------------------------------------
_CALL_COLS = "round, purpose, attempt, prompt, prompt_tokens, response, completion_tokens, usd, seconds, error"


def get_call(store: Store, session: str, rnd: int, purpose: str, attempt: int) -> Call | None:
    with store.connect() as con:
        row = con.execute(f"SELECT {_CALL_COLS} FROM discovery_calls WHERE session = ? AND round = ? AND purpose = ? "
                          "AND attempt = ?", [session, rnd, purpose, attempt]).fetchone()
    return Call(*row) if row else None


def list_calls(store: Store, session: str) -> list[Call]:
    with store.connect() as con:
        rows = con.execute(f"SELECT {_CALL_COLS} FROM discovery_calls WHERE session = ? "
                           "ORDER BY round, purpose DESC, attempt", [session]).fetchall()
    return [Call(*r) for r in rows]


def put_prompt(store: Store, session: str, rnd: int, purpose: str, attempt: int, prompt: str, tokens: int) -> None:
    """Record a prompt before it is sent (kept if already there: the same prompt is re-sent)."""
    with store.writing() as con:
        con.execute("INSERT OR IGNORE INTO discovery_calls (session, round, purpose, attempt, prompt, prompt_tokens, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [session, rnd, purpose, attempt, prompt, tokens, _now()])


def put_response(store: Store, session: str, rnd: int, purpose: str, attempt: int, *, response: str | None,
                 completion_tokens: int, usd: float, seconds: float, error: str | None = None) -> None:
    """Record the answer (or the error) of a request, and add its cost to the session's spend."""
    with store.writing() as con:
        con.execute("UPDATE discovery_calls SET response = ?, completion_tokens = ?, usd = ?, seconds = ?, error = ? "
                    "WHERE session = ? AND round = ? AND purpose = ? AND attempt = ?",
                    [response, completion_tokens, usd, seconds, error, session, rnd, purpose, attempt])
        con.execute("UPDATE discovery_sessions SET spent_usd = spent_usd + ? WHERE name = ?", [usd, session])


def put_answered(store: Store, session: str, call: Call, candidate: Candidate) -> None:
    """Record a request already answered (the offline sampler's) with its candidate, in one transaction."""
    with store.writing() as con:
        con.execute(f"INSERT OR REPLACE INTO discovery_calls (session, {_CALL_COLS}, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [session, *astuple(call), _now()])
        _insert_candidate(con, session, candidate)


# -- candidates -----------------------------------------------------------------------------------
_CAND_COLS = "round, attempt, origin, kind, class_name, code, params, valid, error, seconds"


def get_candidate(store: Store, session: str, rnd: int, attempt: int) -> Candidate | None:
    with store.connect() as con:
        row = con.execute(f"SELECT {_CAND_COLS} FROM discovery_candidates WHERE session = ? AND round = ? "
                          "AND attempt = ?", [session, rnd, attempt]).fetchone()
    return _candidate(row) if row else None


def list_candidates(store: Store, session: str) -> list[Candidate]:
    with store.connect() as con:
        rows = con.execute(f"SELECT {_CAND_COLS} FROM discovery_candidates WHERE session = ? ORDER BY round, attempt",
                           [session]).fetchall()
    return [_candidate(r) for r in rows]


def _candidate(row: tuple) -> Candidate:
    values = list(row)
    values[6] = json.loads(values[6]) if values[6] is not None else None
    return Candidate(*values)


def put_candidate(store: Store, session: str, c: Candidate) -> None:
    with store.writing() as con:
        _insert_candidate(con, session, c)


def _insert_candidate(con: Any, session: str, c: Candidate) -> None:
    con.execute(f"INSERT OR REPLACE INTO discovery_candidates (session, {_CAND_COLS}, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [session, c.round, c.attempt, c.origin, c.kind, c.class_name, c.code,
                 json.dumps(c.params) if c.params is not None else None, c.valid, c.error, c.seconds, _now()])


# -- evaluations ----------------------------------------------------------------------------------
_EVAL_COLS = "round, attempt, split, dataset, beta, result_key, accuracy, tokens, seconds, cached"


def list_evaluations(store: Store, session: str, split: str, rnd: int | None = None,
                     attempt: int | None = None) -> list[Evaluation]:
    """One split's evaluations (a caller names the split it may see: selection only ever asks for search)."""
    with store.connect() as con:
        rows = con.execute(
            f"SELECT {_EVAL_COLS} FROM discovery_evaluations WHERE session = $s AND split = $split "
            "AND ($r IS NULL OR round = $r) AND ($a IS NULL OR attempt = $a) ORDER BY round, attempt, dataset, beta",
            {"s": session, "split": split, "r": rnd, "a": attempt}).fetchall()
    return [Evaluation(*r) for r in rows]


def put_evaluations(store: Store, session: str, evals: list[Evaluation]) -> None:
    """Record evaluations in one transaction."""
    with store.writing() as con:
        con.executemany(f"INSERT OR REPLACE INTO discovery_evaluations (session, {_EVAL_COLS}, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [[session, e.round, e.attempt, e.split, e.dataset, e.beta, e.result_key, e.accuracy, e.tokens,
                          e.seconds, e.cached, _now()] for e in evals])


# -- rounds ---------------------------------------------------------------------------------------
_ROUND_COLS = ("round, attempt, parent, seen, summary, score, accuracy, tokens, heldout_accuracy, heldout_tokens, "
               "trace, prompt_tokens, usd, seconds, completed_at")


def list_rounds(store: Store, session: str) -> list[RoundRecord]:
    """Finished rounds in order (round 0: the seeds)."""
    with store.connect() as con:
        rows = con.execute(f"SELECT {_ROUND_COLS} FROM discovery_rounds WHERE session = ? ORDER BY round, attempt",
                           [session]).fetchall()
    return [_round(r) for r in rows]


def _round(row: tuple) -> RoundRecord:
    values = list(row)
    values[3] = json.loads(values[3])
    return RoundRecord(*values)


def put_round(store: Store, session: str, r: RoundRecord, *, current_round: int) -> None:
    """Record a finished round and advance the session's round counter, in one transaction."""
    with store.writing() as con:
        con.execute(f"INSERT OR REPLACE INTO discovery_rounds (session, {_ROUND_COLS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [session, r.round, r.attempt, r.parent, json.dumps(r.seen), r.summary, r.score, r.accuracy,
                     r.tokens, r.heldout_accuracy, r.heldout_tokens, r.trace, r.prompt_tokens, r.usd, r.seconds,
                     r.completed_at])
        con.execute("UPDATE discovery_sessions SET round = ?, updated_at = ? WHERE name = ?",
                    [current_round, _now(), session])
