"""One episode of a controller, action by action: the data of the episode viewer (/episode).

``run_episode`` replays one (question, shuffle seed) with any controller through the engine's own
paths (built-ins in process, user code in the sandbox unless trusted), keeping the action log and
the trace events (``engine.evaluate.action_events``). ``steps`` then turns the events into one row
per action: which branch, which interval, the answer seen, tokens charged, the running votes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from engine.controllers.base import majority
from engine.dataset import Dataset
from engine.evaluate import ControllerSpec, SandboxOptions, action_events, run_episodes
from engine.replay import COMPAT, replay_questions, shuffled_order

KINDS = {"branch": "open", "probe": "advance", "read": "read"}  # trace event -> what the viewer calls it
MAX_SEED = 999


@dataclass(frozen=True)
class Step:
    """One action of an episode and the state right after it."""

    index: int  # 0-based action number
    kind: str  # open (probe_new), advance (probe_more) or read (a full read)
    position: int  # the branch's position in this episode (opening order)
    branch: int  # the branch's index in the file (the shuffle maps positions to it)
    interval: int  # 0-based interval this action revealed (a read reveals the branch to its end)
    answer: str
    finished: bool  # the branch reached its end with this action
    tokens: int  # tokens this action charged
    total_tokens: int  # tokens spent so far
    vote: str | None  # majority of every opened branch's latest answer
    finished_vote: str | None  # majority of the final answers of the branches that have ended


@dataclass(frozen=True)
class EpisodeRun:
    """A replayed episode: its steps, the controller's answer against the gold one, and its costs."""

    dataset: str
    question: int
    seed: int
    controller: str
    config: dict[str, Any]
    gold: str
    answer: str | None
    total_tokens: int
    sequential_tokens: int
    steps: tuple[Step, ...]
    intervals: tuple[int, ...]  # per position: the branch's intervals to its end (probes + final)

    @property
    def correct(self) -> bool:
        return self.answer is not None and self.answer == self.gold


def run_episode(dataset: Dataset, spec: ControllerSpec, question: int, seed: int, *, mode: str = COMPAT,
                trusted: bool = False, sandbox: SandboxOptions | None = None) -> EpisodeRun:
    """Replay question ``question`` under shuffle ``seed`` with ``spec``; user code runs sandboxed."""
    if not 0 <= question < dataset.n_questions:
        raise ValueError(f"question must be 0 to {dataset.n_questions - 1}, got {question}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be 0 to {MAX_SEED}, got {seed}")
    one = replace(dataset, questions=(dataset.questions[question],))
    out = run_episodes(one, spec, shuffles=seed + 1, mode=mode, traces=True, trusted=trusted, sandbox=sandbox)
    rq = replay_questions(one)[0]
    order = shuffled_order(seed, rq.n_branches)
    events = action_events(rq, out.actions[(seed, 0)], seed)
    q = dataset.questions[question]
    return EpisodeRun(
        dataset=dataset.name, question=question, seed=seed, controller=spec.name, config=dict(spec.config),
        gold=q.gold, answer=out.answers[seed][0], total_tokens=int(out.total_tokens[seed, 0]),
        sequential_tokens=int(out.sequential_tokens[seed, 0]), steps=tuple(steps(events, order, rq.probes)),
        intervals=tuple(len(rq.probes[b]) + 1 for b in order),
    )


def steps(events: Sequence[dict], order: Sequence[int], probes: Sequence[Sequence[str]]) -> list[Step]:
    """One ``Step`` per trace event (``action_events`` shape), with running votes."""
    read = {}  # position -> intervals revealed so far
    latest: dict[int, str] = {}
    finals: dict[int, str] = {}
    out, spent = [], 0
    for i, ev in enumerate(events):
        o = ev["output"]
        pos, answer, finished = int(o["branch"]), o["answer"], bool(o["finished"])
        kind = KINDS[ev["event"]]
        if kind == "read":
            interval = len(probes[order[pos]])
        else:
            interval = min(read.get(pos, 0), len(probes[order[pos]]))
        read[pos] = interval + 1
        latest[pos] = answer
        if finished:
            finals.setdefault(pos, answer)
        total = int(ev["state"]["total_tokens"])
        out.append(Step(i, kind, pos, order[pos], interval, answer, finished, total - spent, total,
                        majority(list(latest.values())), majority(list(finals.values()))))
        spent = total
    return out
