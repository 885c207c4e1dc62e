"""Reading a session back: lineage with code diffs, curves per candidate, and promotion to saved controllers.

Plain data for the page and the CLI (the figures live in ``engine.plots.discovery``). Held-out
curves come from their own function and are drawn apart; nothing here feeds the loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine import saved
from engine.codediff import code_diff
from engine.discovery import family, objective, sessions
from engine.discovery.loop import ranked
from engine.discovery.sessions import HELDOUT, NO_CANDIDATE, SCREEN, SCREENED_OUT, SEARCH, RoundRecord, round_status
from engine.store import Store


@dataclass(frozen=True)
class Node:
    """One evaluated candidate in the lineage: its round, parent, what it saw, its code."""

    round: int
    attempt: int
    parent: int | None
    seen: list[int]
    summary: str
    code: str
    record: RoundRecord


@dataclass(frozen=True)
class Point:
    """One (candidate or baseline, dataset, beta) figure."""

    label: str
    dataset: str
    beta: float
    accuracy: float
    tokens: float


def nodes(store: Store, name: str) -> list[Node]:
    """Every finished round's chosen candidate (invalid rounds included, with empty code)."""
    out = []
    for r in sessions.list_rounds(store, name):
        cand = sessions.get_candidate(store, name, r.round, r.attempt) if r.attempt != NO_CANDIDATE else None
        out.append(Node(r.round, r.attempt, r.parent, r.seen, r.summary, (cand.code or "") if cand else "", r))
    return out


def code_of(store: Store, name: str, rnd: int) -> str:
    """The code of a round's chosen candidate (the best seed for round 0)."""
    options = [n for n in nodes(store, name) if n.round == rnd]
    if not options:
        raise sessions.UnknownSession(f"session {name!r} has no finished round {rnd}")
    best = ranked([n.record for n in options])
    chosen = next((n for n in options if best and n.attempt == best[0].attempt), options[0])
    return chosen.code


def diff(parent: str, child: str, parent_label: str = "parent", child_label: str = "child") -> str:
    """Unified diff of two candidates' code."""
    return code_diff(parent, child, parent_label, child_label)


def curves(store: Store, name: str, split: str = SEARCH) -> list[Point]:
    """Each evaluated candidate's (dataset, beta) figures on one split, labelled ``r<round>``."""
    session = sessions.get_session(store, name)
    labels = {(r.round, r.attempt): _label(r, session.config.seeds) for r in sessions.list_rounds(store, name)}
    return [Point(labels.get((e.round, e.attempt), f"r{e.round}"), e.dataset, e.beta, e.accuracy, e.tokens)
            for e in sessions.list_evaluations(store, name, split)]


def best_curve(store: Store, name: str) -> list[Point]:
    """The search figures of the session's best candidate (for comparing sessions)."""
    best = ranked(sessions.list_rounds(store, name))
    if not best:
        return []
    return [Point(name, e.dataset, e.beta, e.accuracy, e.tokens)
            for e in sessions.list_evaluations(store, name, SEARCH, best[0].round, best[0].attempt)]


@dataclass(frozen=True)
class Stats:
    """What a session's proposer did: how often its code was valid, retried, revised by the critic; its best
    search score, spend and time. Compared between sessions (e.g. critic on against critic off)."""

    name: str
    proposer: str
    critic: bool | None  # None: an offline session (no model, nothing to review)
    objective: str
    rounds: int  # finished rounds after the seeds
    valid_rounds: int  # rounds with a valid candidate (evaluated in full or screened out)
    proposals: int  # proposer answers (first tries and retries)
    valid_proposals: int
    retries: int  # proposer requests after an invalid answer
    critic_calls: int
    critic_revisions: int  # valid critic rewrites that replaced the candidate
    best_score: float | None
    best_accuracy: float | None
    best_tokens: float | None
    best_new_score: float | None  # the best proposed candidate's (rounds after the seeds)
    spent_usd: float
    seconds: float
    screened_out: int = 0  # valid rounds whose candidate the screen did not promote to the full evaluation

    @property
    def promoted_rate(self) -> float | None:
        """Share of valid rounds evaluated in full (1.0 when the session does not screen)."""
        return (self.valid_rounds - self.screened_out) / self.valid_rounds if self.valid_rounds else None

    @property
    def valid_rate(self) -> float | None:
        """Share of proposer answers that passed validation."""
        return self.valid_proposals / self.proposals if self.proposals else None


def stats(store: Store, name: str) -> Stats:
    """The proposer's record in session ``name`` (search figures only)."""
    session = sessions.get_session(store, name)
    records = [r for r in sessions.list_rounds(store, name) if r.round > 0]
    cands = [c for c in sessions.list_candidates(store, name) if c.round > 0]
    calls = [c for c in sessions.list_calls(store, name) if c.round > 0]
    chosen = {(r.round, r.attempt) for r in records}
    proposals = [c for c in cands if c.origin == "propose"]
    best = ranked(sessions.list_rounds(store, name))
    top = best[0] if best else None
    return Stats(
        name, session.config.proposer, None if session.config.offline else session.config.critic,
        session.config.objective, len(records),
        sum(r.attempt != NO_CANDIDATE for r in records), len(proposals), sum(c.valid for c in proposals),
        sum(c.purpose == "propose" and c.attempt > 0 for c in calls), sum(c.purpose == "critic" for c in calls),
        sum(c.origin == "critic" and (c.round, c.attempt) in chosen for c in cands),
        top.score if top else None, top.accuracy if top else None, top.tokens if top else None,
        max((r.score for r in records if r.score is not None), default=None),
        session.spent_usd, session.elapsed_seconds, sum(round_status(r) == SCREENED_OUT for r in records))


def statuses(store: Store, name: str) -> dict[tuple[int, int], str]:
    """Each finished round's status by (round, attempt): ``seed``, ``promoted`` (screened, then evaluated in
    full), ``screened out``, ``evaluated`` (no screening: offline, or a session that does not screen), ``invalid``."""
    screened = {(e.round, e.attempt) for e in sessions.list_evaluations(store, name, SCREEN)}
    out = {}
    for r in sessions.list_rounds(store, name):
        status = round_status(r)
        if r.round == 0 and status == "evaluated":
            status = "seed"
        elif status == "evaluated" and (r.round, r.attempt) in screened:
            status = "promoted"
        out[(r.round, r.attempt)] = status
    return out


def screen_points(store: Store, name: str, rnd: int, attempt: int) -> list[Point]:
    """A candidate's screen figures (search datasets at the session's screen shuffle count, never compared with
    the full-count figures)."""
    return [Point(f"r{e.round}", e.dataset, e.beta, e.accuracy, e.tokens)
            for e in sessions.list_evaluations(store, name, SCREEN, rnd, attempt)]


def heldout_curves(store: Store, name: str) -> list[Point]:
    """The held-out figures (display only)."""
    return curves(store, name, HELDOUT)


def _label(r: RoundRecord, seeds: tuple[str, ...]) -> str:
    if r.round == 0 and r.attempt < len(seeds):
        return f"seed {seeds[r.attempt]}"
    return f"r{r.round}"


def baselines(store: Store, datasets: list[str], betas: tuple[float, ...], shuffles: int) -> list[Point]:
    """CMC's beta sweep on ``datasets`` (compiled, cached in the store): the curve to beat."""
    return [Point("CMC (baseline)", name, beta, accuracy, tokens) for name in datasets
            for beta, accuracy, tokens in objective.baseline_sweep(store, store.load_dataset(name), betas, shuffles)]


def promote(store: Store, session: str, rnd: int, *, attempt: int | None = None,
            name: str | None = None) -> saved.SavedController:
    """Save a candidate as a saved controller; its origin records the session and round."""
    label = name or f"{session}-r{rnd}"
    records = [r for r in sessions.list_rounds(store, session) if r.round == rnd and r.attempt != NO_CANDIDATE]
    if attempt is None and records:
        attempt = ranked(records)[0].attempt if ranked(records) else records[0].attempt
    cand = sessions.get_candidate(store, session, rnd, attempt) if attempt is not None else None
    if cand is None or not cand.valid or cand.kind == "builtin":
        raise sessions.UnknownSession(f"session {session!r} round {rnd} has no new valid candidate to promote")
    origin = {"session": session, "round": rnd, "attempt": attempt}
    if cand.kind == "family":
        source, class_name = family_source(cand.params, label), "DiscoveredFamilyMember"
    else:
        source, class_name = cand.code, cand.class_name
    return saved.save_controller(store, source, class_name, label, origin=origin)


def family_source(params: family.Params, name: str) -> str:
    """A reference-format file for a family member: CMC with the member's beta-map schedule."""
    ranges = {k: (kind.__name__, lo, hi) for k, (kind, lo, hi) in family.KNOBS.items()}
    return f'''"""{name}: CMC with knobs found by offline (Optuna) discovery; knob = v0 + (v1 - v0) * beta**p."""

from engine.controllers.cmc import CMC

PARAMS = {dict(sorted(params.items()))!r}
RANGES = {ranges!r}


class DiscoveredFamilyMember(CMC):
    NAME = {name!r}

    @classmethod
    def schedule(cls, beta):
        b = min(1.0, max(0.0, float(beta)))
        knobs = {{}}
        for knob, (kind, low, high) in RANGES.items():
            v0, v1, p = PARAMS[knob + ".v0"], PARAMS[knob + ".v1"], PARAMS[knob + ".p"]
            raw = v0 + (v1 - v0) * b ** p
            value = round(raw) if kind == "int" else round(raw, 4)
            knobs[knob] = min(high, max(low, value))
        return knobs
'''
