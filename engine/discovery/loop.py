"""The discovery loop: propose, validate (retrying with the error), critique, screen, evaluate, record.

Every step's outcome is a row of the session's tables before the next step starts, and each
step first looks for its row: a session killed anywhere (kill -9 included) resumes from the
last finished step, re-sends no request whose answer was stored and re-runs no evaluation
already recorded. Held-out datasets are evaluated after selection and written to their own
rows; nothing that builds a prompt, picks a parent or feeds the sampler reads them. LLM-written
candidates are screened at fewer shuffles first (multi-fidelity search): screen figures have their
own split and are compared only with the best candidate's screen figures at the same count.
"""

from __future__ import annotations

import inspect
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from engine import controllers, saved
from engine.controllers.loader import ControllerError
from engine.discovery import family, objective, sessions
from engine.discovery.config import ConfigError, SessionConfig
from engine.discovery.prompts import CURVE_TASK, Entry, Prompt, build_prompt, extract_code, summary
from engine.discovery.proposers import LLMProposer, OfflineProposer, ProposerError
from engine.discovery.sessions import (
    HELDOUT,
    NO_CANDIDATE,
    SCREEN,
    SCREENED_OUT,
    SEARCH,
    Candidate,
    Evaluation,
    RoundRecord,
    Session,
)
from engine.discovery.validate import smoke_dataset, validate
from engine.evaluate import ControllerSpec, SandboxOptions, evaluate_pairs, run_episodes, sweep
from engine.sandbox import SandboxError
from engine.store import Store

TRACE_EVENTS = (12, 4)  # events shown from the start and the end of a failing episode
_ACTIONS = {"branch": "open", "probe": "advance", "read": "read whole"}
SMOKE_LIMITS = {"episode_seconds": 2.0, "evaluation_seconds": 60.0, "startup_seconds": 30.0}


@dataclass(frozen=True)
class Event:
    """What a running session reports: a step starting, a round finished, the session ending."""

    kind: str  # step, round, end
    round: int
    step: str
    text: str


Listener = Callable[[Event], None]


class _Stop(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def start_session(store: Store, config: SessionConfig, *, api_key: str | None = None,
                  on_event: Listener | None = None, cancel: threading.Event | None = None) -> Session:
    """Create a session and run it until its rounds or budgets are used up (or it is stopped)."""
    for name in (*config.search, *config.heldout):
        store.load_dataset(name)  # fail before anything is stored
    sessions.create_session(store, config)
    return run_session(store, config.name, api_key=api_key, on_event=on_event, cancel=cancel)


def run_session(store: Store, name: str, *, api_key: str | None = None, on_event: Listener | None = None,
                cancel: threading.Event | None = None, rounds: int | None = None, budget_usd: float | None = None,
                budget_seconds: float | None = None) -> Session:
    """Run (or resume) session ``name``; new limits extend a stopped one. Returns its final row."""
    session = sessions.get_session(store, name)
    config = session.config.extended(rounds, budget_usd, budget_seconds)
    if config != session.config:
        sessions.update_session(store, name, config=config)
    sessions.update_session(store, name, status="running", pid=os.getpid(), stop_requested=False, message="")
    runner = _Runner(store, replace(session, config=config), api_key, on_event, cancel)
    try:
        runner.run()
    except _Stop as stop:
        runner.finish(stop.status, stop.message)
    except KeyboardInterrupt:
        runner.finish("stopped", "interrupted")
        raise
    except BaseException as exc:
        runner.finish("failed", f"{type(exc).__name__}: {exc}")
        raise
    return sessions.get_session(store, name)


def describe_best(config: SessionConfig, r: RoundRecord) -> str:
    """``best 64.20% at 312.5k tokens (round 3)``, with the score unless the objective is plain accuracy."""
    name = "curve score" if config.objective == objective.CURVE else "score"
    score = f"{name} {r.score:.2f}: " if config.objective != objective.ACCURACY else ""
    return f"best {score}{r.accuracy:.2f}% at {r.tokens / 1000:.1f}k tokens (round {r.round})"


def ranked(records: list[RoundRecord]) -> list[RoundRecord]:
    """Evaluated candidates, best first: higher score, then fewer tokens, then earlier."""
    valid = [r for r in records if r.score is not None]
    return sorted(valid, key=lambda r: (-r.score, r.tokens, r.round, r.attempt))


class _Runner:
    def __init__(self, store: Store, session: Session, api_key: str | None, on_event: Listener | None,
                 cancel: threading.Event | None) -> None:
        from engine.sandbox import Limits  # imports the sandbox machinery only when a session runs

        self.store, self.name, self.cfg = store, session.name, session.config
        self.on_event, self.cancel = on_event, cancel
        self.search = [store.load_dataset(n) for n in self.cfg.search]
        self.heldout = [store.load_dataset(n) for n in self.cfg.heldout]
        self.smoke = smoke_dataset(self.search[0])
        self.limits = Limits()
        self.smoke_limits = Limits(**SMOKE_LIMITS)
        self.hide = (store.path,)
        self.elapsed0, self.t0 = session.elapsed_seconds, time.monotonic()
        self._spans: dict[int, dict[str, objective.Span]] = {}  # the curve score's ranges per shuffle count
        if self.cfg.offline:
            # the curve objective: one score, members drawn as rising curves
            self.offline: OfflineProposer | None = OfflineProposer(self.cfg.seed, ["maximize"], family.curve_ranges()) \
                if self.curve else OfflineProposer(self.cfg.seed)
            self.llm: LLMProposer | None = None
        else:
            self.offline = None
            self.llm = LLMProposer(self.cfg.proposer, api_base=self.cfg.api_base, api_key=api_key,
                                   temperature=self.cfg.temperature, max_tokens=self.cfg.max_tokens,
                                   timeout=self.cfg.request_timeout)

    # -- driving -------------------------------------------------------------------------------
    def run(self) -> None:
        self._seeds()
        while True:
            records = sessions.list_rounds(self.store, self.name)
            rnd = max((r.round for r in records), default=0) + 1
            if rnd > self.cfg.rounds:
                raise _Stop("done", f"{self.cfg.rounds} rounds done")
            start = time.monotonic()
            if self.cfg.offline:
                self._offline_round(rnd, records)
            else:
                self._llm_round(rnd)
            self._emit("round", rnd, "done", self._round_line(rnd, time.monotonic() - start))

    def finish(self, status: str, message: str) -> None:
        sessions.update_session(self.store, self.name, status=status, step="idle", pid=None,
                                elapsed_seconds=self._elapsed(), message=message)
        self._emit("end", -1, status, message)

    def _elapsed(self) -> float:
        return self.elapsed0 + time.monotonic() - self.t0

    def _step(self, rnd: int, step: str) -> None:
        """Start a step: record where we are, then stop here if asked to or out of budget."""
        session = sessions.begin_step(self.store, self.name, step, rnd, self._elapsed())
        self._check_stop(session)
        self._emit("step", rnd, step, f"round {rnd}: {step}")

    def _check_stop(self, session: Session | None = None) -> None:
        session = session or sessions.get_session(self.store, self.name)
        if session.stop_requested or (self.cancel is not None and self.cancel.is_set()):
            raise _Stop("stopped", "stopped on request")
        if self.cfg.budget_seconds is not None and self._elapsed() >= self.cfg.budget_seconds:
            raise _Stop("budget", f"wall-clock budget of {self.cfg.budget_seconds:g} s reached")
        if self.cfg.budget_usd is not None and session.spent_usd >= self.cfg.budget_usd:
            raise _Stop("budget", f"spend budget of ${self.cfg.budget_usd:g} reached (${session.spent_usd:.4f})")

    def _emit(self, kind: str, rnd: int, step: str, text: str) -> None:
        if self.on_event:
            self.on_event(Event(kind, rnd, step, text))

    def _round_line(self, rnd: int, seconds: float) -> str:
        best = ranked(sessions.list_rounds(self.store, self.name))
        session = sessions.get_session(self.store, self.name)
        figure = describe_best(self.cfg, best[0]) if best else "no valid candidate yet"
        return (f"round {rnd}/{self.cfg.rounds}: {figure} | spend ${session.spent_usd:.4f} | "
                f"{seconds:.1f} s (session {self._elapsed():.0f} s)")

    # -- seeds (round 0) --------------------------------------------------------------------------
    def _seeds(self) -> None:
        done = {r.attempt for r in sessions.list_rounds(self.store, self.name) if r.round == 0}
        for i, seed in enumerate(self.cfg.seeds):
            if i in done:
                continue
            self._step(0, f"seed {seed}")
            start = time.monotonic()
            cand = sessions.get_candidate(self.store, self.name, 0, i) or self._seed_candidate(i, seed)
            self._record(0, cand, parent=None, seen=[], start=start)

    def _seed_candidate(self, i: int, seed: str) -> Candidate:
        if self.cfg.offline:
            cand = Candidate(0, i, "seed", "family", None, None, family.preset(seed), True, None, 0.0)
            cand = replace(cand, code=family.describe(cand.params))
        elif seed.startswith(saved.PREFIX):
            stored = saved.get_controller(self.store, seed)
            cand = self._validated(0, i, "seed", stored.source)
        else:
            base, _ = controllers.resolve(seed)
            if base in controllers.BUDGET_KNOB:
                raise ConfigError(f"seed {seed!r} has no beta; seeds are beta controllers (cmc) or saved:<id>")
            code = inspect.getsource(inspect.getmodule(controllers.BUILTINS[base]))
            cand = Candidate(0, i, "seed", "builtin", base, code, None, True, None, 0.0)
        sessions.put_candidate(self.store, self.name, cand)
        return cand

    # -- an LLM round ----------------------------------------------------------------------------------
    def _llm_round(self, rnd: int) -> None:
        start = time.monotonic()
        entries = self._history()
        seen = [e.round for e in entries]
        chosen, last = None, None
        for attempt in range(self.cfg.retries + 1):
            cand = sessions.get_candidate(self.store, self.name, rnd, attempt)
            if cand is None:
                retry = None if last is None else (last.code or "(no code block found)", last.error or "")
                reply = self._ask(rnd, "propose", attempt, lambda r=retry: build_prompt(
                    entries, self.cfg.prompt_budget, self.llm.count_tokens, retry=r, task=self._task()))
                self._step(rnd, "validate")
                cand = self._validated(rnd, attempt, "propose", extract_code(reply))
            if cand.valid:
                chosen = cand
                break
            last = cand
        if chosen is not None and self.cfg.critic:
            chosen = self._critique(rnd, entries, chosen)
        if chosen is None:
            self._record_failure(rnd, last, seen, start)
            return
        self._record(rnd, chosen, parent=seen[0] if seen else None, seen=seen, start=start)

    @property
    def curve(self) -> bool:
        """Whether the session ranks candidates by their whole beta curve (``objective.CURVE``)."""
        return self.cfg.objective == objective.CURVE

    def _task(self) -> str | None:
        return CURVE_TASK if self.curve else None

    def _critique(self, rnd: int, entries: list[Entry], chosen: Candidate) -> Candidate:
        attempt = self.cfg.retries + 1
        revised = sessions.get_candidate(self.store, self.name, rnd, attempt)
        if revised is None:
            reply = self._ask(rnd, "critic", 0, lambda: build_prompt(
                entries, self.cfg.prompt_budget, self.llm.count_tokens, critic_code=chosen.code))
            code = extract_code(reply)
            if code is None or code.strip() == (chosen.code or "").strip():
                return chosen
            self._step(rnd, "validate")
            revised = self._validated(rnd, attempt, "critic", code)
        return revised if revised.valid else chosen

    def _ask(self, rnd: int, purpose: str, attempt: int, build: Callable[[], Prompt]) -> str:
        """The reply to a request: the stored one, else ask (storing the prompt first, then the answer)."""
        call = sessions.get_call(self.store, self.name, rnd, purpose, attempt)
        if call is not None and call.response is not None:
            return call.response
        self._step(rnd, "prompt" if purpose == "propose" else "critic")
        if call is None:
            prompt = build()
            sessions.put_prompt(self.store, self.name, rnd, purpose, attempt, prompt.text, prompt.tokens)
            text = prompt.text
        else:
            text = call.prompt
        self._step(rnd, "ask" if purpose == "propose" else "critic: ask")
        try:
            reply = self.llm.ask(text)
        except ProposerError as exc:
            sessions.put_response(self.store, self.name, rnd, purpose, attempt, response=None, completion_tokens=0,
                                  usd=0.0, seconds=0.0, error=str(exc))
            raise _Stop("failed", f"round {rnd}: the proposer failed: {exc}") from None
        sessions.put_response(self.store, self.name, rnd, purpose, attempt, response=reply.text,
                              completion_tokens=reply.completion_tokens, usd=reply.usd, seconds=reply.seconds)
        return reply.text

    def _validated(self, rnd: int, attempt: int, origin: str, code: str | None) -> Candidate:
        start = time.monotonic()
        if code is None:
            cand = Candidate(rnd, attempt, origin, "source", None, None, None, False,
                             "no ```python code block with a controller class found in the reply", 0.0)
        else:
            verdict = validate(code, self.smoke, limits=self.smoke_limits, cancel=self.cancel, hide=self.hide)
            cand = Candidate(rnd, attempt, origin, "source", verdict.class_name, code, None, verdict.valid,
                             verdict.error, time.monotonic() - start)
        sessions.put_candidate(self.store, self.name, cand)
        return cand

    def _history(self) -> list[Entry]:
        """The best ``top_k`` candidates as prompt entries (search figures only), then the latest ``top_k``
        screened-out ones with their screen figures, labelled with their shuffle count."""
        records = sessions.list_rounds(self.store, self.name)
        best = ranked(records)[: self.cfg.top_k]
        cands = {(c.round, c.attempt): c for c in sessions.list_candidates(self.store, self.name)}
        entries = [self._entry(r, cands.get((r.round, r.attempt)), SEARCH) for r in best]
        screened = [r for r in records if sessions.round_status(r) == SCREENED_OUT][-self.cfg.top_k:]
        return entries + [self._entry(r, cands.get((r.round, r.attempt)), SCREEN) for r in reversed(screened)]

    def _entry(self, r: RoundRecord, cand: Candidate | None, split: str) -> Entry:
        curve: dict[float, dict[str, tuple[float, float]]] = {}
        for e in sessions.list_evaluations(self.store, self.name, split, r.round, r.attempt):
            curve.setdefault(e.beta, {})[e.dataset] = (e.accuracy, e.tokens)
        if split == SCREEN:
            idea = summary(cand.code) if cand else ""
            note = (f"{r.summary}; figures below at {self.cfg.screen_shuffles} shuffles, not comparable with the "
                    f"{self.cfg.shuffles}-shuffle tables above")
            return Entry(r.round, idea, None, sorted(curve.items()), "", None, note)
        score = r.score if self.curve else None
        return Entry(r.round, r.summary, cand.code if cand else None, sorted(curve.items()), r.trace, score)

    # -- an offline round ---------------------------------------------------------------------------------
    def _offline_round(self, rnd: int, records: list[RoundRecord]) -> None:
        start = time.monotonic()
        best = ranked(records)
        cand = sessions.get_candidate(self.store, self.name, rnd, 0)
        if cand is None:
            self._step(rnd, "ask")
            params = self.offline.ask(self._trials(records))
            cand = Candidate(rnd, 0, "propose", "family", None, family.describe(params), params, True, None,
                             time.monotonic() - start)
            call = sessions.Call(rnd, "propose", 0, "", 0, json.dumps(params), 0, 0.0, cand.seconds, None)
            sessions.put_answered(self.store, self.name, call, cand)
        self._record(rnd, cand, parent=best[0].round if best else None, seen=[best[0].round] if best else [],
                     start=start)

    def _trials(self, records: list[RoundRecord]) -> list[tuple[family.Params, list[float]]]:
        """Every evaluated family member with its search figures (held-out never enters): its curve score,
        or (accuracy, tokens) for the point objectives, the sampler's objectives."""
        cands = {(c.round, c.attempt): c for c in sessions.list_candidates(self.store, self.name)}
        return [(cands[(r.round, r.attempt)].params, [r.score] if self.curve else [r.accuracy, r.tokens])
                for r in records if r.score is not None]

    # -- evaluation and the round record ------------------------------------------------------------
    def _spec(self, cand: Candidate, beta: float) -> ControllerSpec:
        if cand.kind == "family":
            return family.spec(cand.params, beta)
        if cand.kind == "builtin":
            return ControllerSpec.builtin(cand.class_name, {"beta": beta})
        return ControllerSpec.from_source(cand.code, cand.class_name, {"beta": beta}, filename="candidate.py")

    def _evaluate(self, rnd: int, cand: Candidate, split: str, datasets: list, shuffles: int) -> list[Evaluation]:
        """The candidate's beta sweep on ``datasets`` at ``shuffles``: its rows of ``split``, stored ones reused.

        User code runs as one sandbox batch (one pool loads it once, one audit covers every pair) and is
        recorded pair by pair as results reach the cache, so a resumed round redoes only missing pairs;
        a compiled candidate's pairs (milliseconds each) run as one cached sweep and are recorded together.
        """
        have = {(e.dataset, e.beta): e for e in sessions.list_evaluations(self.store, self.name, split, rnd,
                                                                            cand.attempt)}
        pending = [(ds, beta) for ds in datasets for beta in self.cfg.betas if (ds.name, beta) not in have]
        if cand.kind == "source" and pending:
            self._check_stop()
            with self._watching_stop() as cancel:
                try:
                    evaluate_pairs([(ds, self._spec(cand, beta)) for ds, beta in pending],
                                   shuffles=shuffles, store=self.store, limits=self.limits, cancel=cancel,
                                   on_result=lambda i, res: self._put_evaluations(rnd, cand, split,
                                                                                  [(*pending[i], res)], have))
                except SandboxError as exc:
                    if exc.kind == "cancelled":
                        self._check_stop()  # a stop or a budget cancelled the batch: end the session, not the candidate
                    raise
        else:
            for ds in datasets:
                betas = [b for d, b in pending if d is ds]
                results = sweep([ds], [self._spec(cand, b) for b in betas], shuffles=shuffles,
                                store=self.store) if betas else []
                self._put_evaluations(rnd, cand, split, [(ds, b, r) for b, r in zip(betas, results, strict=True)],
                                      have)
        return [have[k] for k in sorted(have)]

    @contextmanager
    def _watching_stop(self, every: float = 0.5) -> Iterator[threading.Event]:
        """A cancel event for a long sandbox batch (minutes), set as soon as a stop is requested (the page's
        Stop, ``self.cancel``) or a budget runs out, so a batch does not outlive them."""
        cancel, done = threading.Event(), threading.Event()

        def watch() -> None:
            while not done.wait(every):
                try:
                    self._check_stop()
                except _Stop:
                    cancel.set()
                    return

        watcher = threading.Thread(target=watch, daemon=True, name="discovery-stop-watch")
        watcher.start()
        try:
            yield cancel
        finally:
            done.set()
            watcher.join()

    def _put_evaluations(self, rnd: int, cand: Candidate, split: str, done: list, have: dict) -> None:
        evals = [Evaluation(rnd, cand.attempt, split, ds.name, beta, res.key, res.accuracy, res.avg_total_tokens,
                            res.seconds, res.cached) for ds, beta, res in done]
        if evals:
            sessions.put_evaluations(self.store, self.name, evals)
        have.update({(e.dataset, e.beta): e for e in evals})

    def _record(self, rnd: int, cand: Candidate, *, parent: int | None, seen: list[int], start: float) -> None:
        try:
            if self._screens(rnd, cand):
                self._step(rnd, "screen")
                reason = self._screen(rnd, cand)
                if reason is not None:
                    self._put_round(RoundRecord(rnd, cand.attempt, parent, seen, reason, None, None, None, None, None,
                                                "", *self._round_costs(rnd), time.monotonic() - start, _now()))
                    return
            self._step(rnd, "evaluate")
            evals = self._evaluate(rnd, cand, SEARCH, self.search, self.cfg.shuffles)
        except ControllerError as exc:
            cand = replace(cand, valid=False, error=f"evaluation failed: {exc}")
            sessions.put_candidate(self.store, self.name, cand)
            self._record_failure(rnd, cand, seen, start)
            return
        accuracy, tokens = _means(evals)
        trace = "" if self.cfg.offline else self._trace(cand)
        heldout = (None, None)
        if self.heldout:
            self._step(rnd, "heldout")
            try:
                heldout = _means(self._evaluate(rnd, cand, HELDOUT, self.heldout, self.cfg.shuffles))
            except ControllerError:
                pass  # display only: a held-out failure changes nothing in the search
        self._put_round(RoundRecord(
            rnd, cand.attempt, parent, seen, self._summary(cand), self._score(evals, self.cfg.shuffles), accuracy,
            tokens, heldout[0], heldout[1], trace, *self._round_costs(rnd), time.monotonic() - start, _now()))

    def _screens(self, rnd: int, cand: Candidate) -> bool:
        """Whether this candidate is screened first: LLM-written code after the seeds, in a screening session."""
        return self.cfg.screens and rnd > 0 and cand.kind == "source"

    def _screen(self, rnd: int, cand: Candidate) -> str | None:
        """Evaluate the candidate at ``screen_shuffles`` and compare it with the best candidate's figures at the
        same count (evaluated now if missing, then stored and cached). None: promote it to the full evaluation;
        else why it was screened out (the round's summary)."""
        n, margin = self.cfg.screen_shuffles, self.cfg.screen_margin
        score = self._score(self._evaluate(rnd, cand, SCREEN, self.search, n), n)
        best = ranked(sessions.list_rounds(self.store, self.name))
        if not best:
            return None
        top = best[0]
        champion = sessions.get_candidate(self.store, self.name, top.round, top.attempt)
        try:
            bar = self._score(self._evaluate(top.round, champion, SCREEN, self.search, n), n)
        except ControllerError:
            return None  # the best cannot be screened (e.g. a limit under load): no bar, so evaluate in full
        if score >= bar - margin:
            return None
        return (f"{SCREENED_OUT} at {n} shuffles: score {score:.2f} < {bar:.2f} (best, round {top.round}, "
                f"same shuffles) - {margin:g}")

    def _score(self, evals: list[Evaluation], shuffles: int) -> float:
        """The session objective of a candidate from its search (or screen) rows at ``shuffles``, never held-out
        ones; scores at different shuffle counts are never compared (the curve's ranges depend on the count)."""
        if not self.curve:
            return objective.point_score(self.cfg.objective, self.cfg.gamma, *_means(evals))
        if shuffles not in self._spans:
            self._spans[shuffles] = objective.spans(self.store, self.search, self.cfg.betas, shuffles)
        sweeps: dict[str, list[tuple[float, float, float]]] = {}
        for e in evals:
            sweeps.setdefault(e.dataset, []).append((e.beta, e.accuracy, e.tokens))
        return objective.curve_score(sweeps, self._spans[shuffles])

    def _record_failure(self, rnd: int, last: Candidate | None, seen: list[int], start: float) -> None:
        error = (last.error or "").strip().splitlines()[0] if last is not None and last.error else "no candidate"
        self._put_round(RoundRecord(rnd, NO_CANDIDATE, seen[0] if seen else None, seen, f"invalid: {error}"[:300],
                                    None, None, None, None, None, "", *self._round_costs(rnd),
                                    time.monotonic() - start, _now()))

    def _put_round(self, record: RoundRecord) -> None:
        self._step(record.round, "record")
        sessions.put_round(self.store, self.name, record, current_round=record.round)

    def _round_costs(self, rnd: int) -> tuple[int, float]:
        if self.cfg.offline:
            return 0, 0.0
        calls = [c for c in sessions.list_calls(self.store, self.name) if c.round == rnd]
        prompt_tokens = next((c.prompt_tokens for c in calls if c.purpose == "propose"), 0)
        return prompt_tokens, sum(c.usd or 0.0 for c in calls)

    def _summary(self, cand: Candidate) -> str:
        if cand.kind == "family":
            return "beta-map family member" if cand.origin != "seed" else f"seed: {self.cfg.seeds[cand.attempt]}"
        if cand.kind == "builtin":
            return f"seed: built-in {cand.class_name}"
        return summary(cand.code) or "(no summary)"

    def _trace(self, cand: Candidate) -> str:
        """A short execution trace of the candidate's worst search question at the top beta."""
        ds, beta = self.search[0], max(self.cfg.betas)
        e = next(e for e in sessions.list_evaluations(self.store, self.name, SEARCH, cand.round, cand.attempt)
                 if e.dataset == ds.name and e.beta == beta)
        row = self.store.get_result(e.result_key)
        per_q = row["metrics"]["per_question_accuracy"] if row else [0.0]
        q = min(range(len(per_q)), key=per_q.__getitem__)
        one = replace(ds, name=f"{ds.name}[q{q}]", questions=(ds.questions[q],))
        try:
            out = run_episodes(one, self._spec(cand, beta), shuffles=1, traces=True,
                               sandbox=SandboxOptions(self.limits, self.cancel, self.hide))
        except ControllerError:
            return ""
        return format_trace(out.traces.get((0, 0), []), out.answers[0][0], ds.questions[q].gold, q, beta)


def _means(evals: list[Evaluation]) -> tuple[float, float]:
    """Mean accuracy and tokens over a sweep's rows."""
    return sum(e.accuracy for e in evals) / len(evals), sum(e.tokens for e in evals) / len(evals)


def format_trace(events: list[dict[str, Any]], answer: str | None, gold: str, q: int, beta: float) -> str:
    """A few lines: the first and last events of one episode, what it answered and what was right."""
    head, tail = TRACE_EVENTS
    shown = events if len(events) <= head + tail else [*events[:head], None, *events[-tail:]]
    lines = [f"question {q}, beta {beta:g}: answered {answer!r}, correct {gold!r}, {len(events)} events"]
    for ev in shown:
        lines.append("  ..." if ev is None else "  " + _event_line(ev))
    return "\n".join(lines)


def _event_line(ev: dict[str, Any]) -> str:
    out = ev.get("output", {}) if isinstance(ev, dict) else {}
    if isinstance(ev, dict) and "event" in ev and isinstance(out, dict):
        done = " (finished)" if out.get("finished") else ""
        tokens = ev.get("state", {}).get("total_tokens", "?") if isinstance(ev.get("state"), dict) else "?"
        action = _ACTIONS.get(ev["event"], ev["event"])
        return f"{action} branch {out.get('branch')} -> {out.get('answer')!r}{done}, {tokens} tokens so far"
    return json.dumps(ev, default=str)[:160]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
