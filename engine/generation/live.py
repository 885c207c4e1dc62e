"""Run a controller live: the same controller code, a model instead of stored branches.

``LiveEpisode`` *is* replay's ``Episode`` (same class hierarchy, same accounting code): only the
branch data behind it grows on demand. Opening a branch starts a new sample, advancing it generates
its next interval and probes it (``BranchEngine.advance``), reading a branch generates it to the end.
Once the data an action needs exists, ``Episode`` charges it exactly as replay charges stored data,
so tokens are counted by one rule in one place; ``replay_check`` re-applies a live action log to
the materialised branches and must give the same cost.

User code (not built-in, not ``trusted``) never runs in this process. It runs in the sandbox as in
replay: the worker forwards each action to the parent, which applies it to its own episode and
replies with only what the action reveals. For a live run the parent's episode is a ``LiveEpisode``,
so the model generates the interval (or branch) an action needs while the worker waits (its clock
is stopped meanwhile), and the controller drives the model directly: one sandboxed episode per
question, whatever the number of generation calls. The evaluation's wall-clock limit is lifted
(``LIVE_LIMITS``) since a live episode lasts as long as the model needs; the per-episode limit still
bounds the controller's own running time.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.dataset import Branch, Dataset, Question
from engine.evaluate import ControllerSpec, EvalResult, _solve_one
from engine.generation import answers, records
from engine.generation.branches import BranchEngine, Timing
from engine.replay import COMPAT, Episode, ReplayQuestion, replay_actions
from engine.sandbox import Limits
from engine.store import Store

Progress = Callable[[int, int, str], None]
DEFAULT_POOL = 128


class LiveQuestion:
    """One question's branches, generated on demand; shaped like ``ReplayQuestion`` for ``Episode``."""

    def __init__(self, engine: BranchEngine, q_idx: int, text: str, pool: int) -> None:
        self.engine, self.text = engine, text
        self.probe_freq = engine.settings.interval
        self.states = [engine.new_branch(q_idx, b, text) for b in range(pool)]
        self.probes: list[list[str]] = [s.probes for s in self.states]  # the same lists, growing
        self.tokens = [0] * pool
        self.finals = [""] * pool
        self.timing = Timing()

    @property
    def n_branches(self) -> int:
        return len(self.states)

    def has(self, b: int, k: int) -> bool:
        """Whether advancing branch ``b`` past ``k`` probes needs no generation."""
        s = self.states[b]
        return s.done or len(s.probes) > k

    def ensure(self, b: int, k: int) -> None:
        """Generate branch ``b`` until it has probe ``k`` or has ended."""
        while not self.has(b, k):
            self._grow(b, to_end=False)

    def ensure_complete(self, b: int) -> None:
        if not self.states[b].done:
            self._grow(b, to_end=True)

    def _grow(self, b: int, *, to_end: bool) -> None:
        s = self.states[b]
        self.timing.add(self.engine.advance([s], to_end=to_end))
        if s.done:
            self.tokens[b], self.finals[b] = s.tokens, s.final

    def materialise(self) -> ReplayQuestion:
        """The branches generated so far as replay data (unfinished ones end where the data ends)."""
        return ReplayQuestion(self.text, self.probe_freq, tuple(tuple(p) for p in self.probes),
                              tuple(self.tokens), tuple(self.finals))


class LiveEpisode(Episode):
    """Replay's episode over a ``LiveQuestion``: data is generated just before it is read."""

    __slots__ = ()

    def __init__(self, question: LiveQuestion, mode: str = COMPAT) -> None:
        super().__init__(question, tuple(range(question.n_branches)), mode)  # type: ignore[arg-type]

    def get_new_branch_final_answer(self) -> str:
        if self.n_opened < len(self._order):
            self._q.ensure_complete(self._order[self.n_opened])
        return super().get_new_branch_final_answer()

    def _advance(self, i: int) -> tuple[str, bool]:
        self._q.ensure(self._order[i], self._k[i])
        return super()._advance(i)


@dataclass
class LiveEpisodeResult:
    """One question solved live."""

    q_idx: int
    answer: str | None
    correct: bool
    total_tokens: int
    sequential_tokens: int
    actions: list[int]
    seconds: float
    model_seconds: float
    timing: Timing = field(default_factory=Timing)


@dataclass
class LiveRun:
    """A controller run live on some questions of a dataset."""

    id: str
    dataset: str
    controller: str
    config: dict[str, Any]
    episodes: list[LiveEpisodeResult]
    backend: dict[str, Any]
    settings: dict[str, Any]

    @property
    def questions(self) -> list[int]:
        return [e.q_idx for e in self.episodes]

    @property
    def accuracy(self) -> float:
        return 100.0 * sum(e.correct for e in self.episodes) / len(self.episodes) if self.episodes else 0.0

    @property
    def avg_tokens(self) -> float:
        return sum(e.total_tokens for e in self.episodes) / len(self.episodes) if self.episodes else 0.0

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.episodes)


def run_live(
    dataset: Dataset, spec: ControllerSpec, engine: BranchEngine, *, questions: list[int] | None = None,
    pool: int = DEFAULT_POOL, mode: str = COMPAT, trusted: bool = False, math: bool = False,
    store: Store | None = None, progress: Progress | None = None,
) -> LiveRun:
    """Solve ``questions`` (default: all) of ``dataset`` live with ``spec``; saved to ``store`` if given.

    ``pool`` bounds the branches a controller may open per question (replay's 128). Built-ins and
    ``trusted`` code run in this process; other user code runs sandboxed (module docstring).
    ``math`` grades with the math-aware equivalence instead of exact strings.
    """
    chosen = list(range(dataset.n_questions)) if questions is None else list(questions)
    sandboxed = not spec.is_builtin and not trusted
    controller = None if sandboxed else spec.build()
    episodes = []
    for n, qi in enumerate(chosen, 1):
        q = dataset.questions[qi]
        live_q = LiveQuestion(engine, qi, q.text, pool)
        start = time.perf_counter()
        if sandboxed:
            answer, actions = _solve_sandboxed(spec, live_q, mode, store)
        else:
            answer, actions = _solve_here(controller, live_q, mode, qi, spec.filename)
        seconds = time.perf_counter() - start
        ep = replay_check(live_q, actions, mode)
        timing = live_q.timing
        episodes.append(LiveEpisodeResult(qi, answer, answers.is_correct(answer, q.gold, math=math), ep.total_tokens,
                                          ep.sequential_tokens, actions, seconds,
                                          timing.generate_seconds + timing.probe_seconds, timing))
        if progress is not None:
            progress(n, len(chosen), f"question {qi}: {episodes[-1].total_tokens:,} tokens, {seconds:.1f} s")
    run = LiveRun(_run_id(dataset.name, spec, chosen), dataset.name, spec.name, dict(spec.config), episodes,
                  engine.backend.describe(), {"pool": pool, "mode": mode, "math": math,
                                              **_growth_dict(engine)})
    if store is not None:
        save(store, run)
    return run


def _growth_dict(engine: BranchEngine) -> dict[str, Any]:
    return asdict(engine.settings)


def _run_id(dataset: str, spec: ControllerSpec, questions: list[int]) -> str:
    payload = json.dumps([dataset, spec.code_hash(), dict(spec.config), questions, time.time_ns()], default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _solve_here(controller: Any, live_q: LiveQuestion, mode: str, qi: int,
                filename: str) -> tuple[str | None, list[int]]:
    ep = LiveEpisode(live_q, mode)
    answer = _solve_one(controller.solve, ep, qi, 0, filename)
    return answer, list(ep.actions)


def replay_check(live_q: LiveQuestion, actions: list[int], mode: str) -> Episode:
    """Re-apply ``actions`` to the materialised live data with replay's own code: the live cost."""
    return replay_actions(live_q.materialise(), tuple(range(live_q.n_branches)), actions, mode)


# -- user code: in the sandbox, driving the live episode from there ---------------------------------
LIVE_LIMITS = Limits(evaluation_seconds=7 * 24 * 3600.0)  # the model's time is not the controller's


def _solve_sandboxed(spec: ControllerSpec, live_q: LiveQuestion, mode: str,
                     store: Store | None) -> tuple[str | None, list[int]]:
    from engine.evaluate import SandboxOptions
    from engine.sandbox import run_sandboxed

    hide = SandboxOptions.hiding_store(None, None, store).hide
    out = run_sandboxed(_facts(live_q), spec, shuffles=1, mode=mode, actions=True, hide=hide, limits=LIVE_LIMITS,
                        episodes=lambda seed, qi: LiveEpisode(live_q, mode))
    return out.answers[0][0], out.actions[(0, 0)]


def _facts(live_q: LiveQuestion) -> Dataset:
    """The question as a one-question dataset of public facts (text, interval, pool size) for the worker;
    the branch data lives in the parent's ``LiveEpisode``."""
    empty = Branch((), 0, "")
    question = Question(live_q.text, "", live_q.probe_freq, (empty,) * live_q.n_branches)
    return Dataset(name="live", questions=(question,))


def save(store: Store, run: LiveRun) -> None:
    records.save_live_run(store, {
        "id": run.id, "dataset": run.dataset, "controller": run.controller, "config": run.config,
        "backend": run.backend, "settings": run.settings, "questions": run.questions,
        "accuracy": run.accuracy, "avg_tokens": run.avg_tokens, "seconds": run.seconds,
    }, [{"q_idx": e.q_idx, "answer": e.answer, "correct": e.correct, "total_tokens": e.total_tokens,
         "sequential_tokens": e.sequential_tokens, "actions": e.actions, "seconds": e.seconds,
         "model_seconds": e.model_seconds} for e in run.episodes])


# -- live vs replay ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gap:
    """Replay's prediction against the live run on the same questions (accuracy in %, tokens per question)."""

    questions: list[int]
    replay_accuracy: float
    live_accuracy: float
    replay_tokens: float
    live_tokens: float
    per_question: list[dict[str, Any]]

    @property
    def accuracy_gap(self) -> float:
        """Live minus replay, in percentage points."""
        return self.live_accuracy - self.replay_accuracy

    @property
    def token_gap(self) -> float:
        """Live over replay tokens, minus 1 (0.1 = live spent 10% more)."""
        return self.live_tokens / self.replay_tokens - 1 if self.replay_tokens else 0.0


def compare(replay: EvalResult, live: LiveRun) -> Gap:
    """The replay-vs-live gap on the questions the live run solved (replay: mean over its shuffles)."""
    qs = live.questions
    if not qs:
        raise ValueError("the live run has no episodes to compare")
    rows = [{"q_idx": e.q_idx, "replay_accuracy": replay.per_question_accuracy[e.q_idx],
             "live_correct": e.correct, "replay_tokens": replay.per_question_tokens[e.q_idx],
             "live_tokens": e.total_tokens} for e in live.episodes]
    return Gap(qs, _mean(rows, "replay_accuracy"), live.accuracy, _mean(rows, "replay_tokens"), live.avg_tokens, rows)


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return sum(float(r[key]) for r in rows) / len(rows)

