"""Live controller runs against a real local HTTP server whose content is scripted
(tests/generation/scripted_model.py): the same controller code, replay's token rules, the sandbox
for user code, and the live-vs-replay comparison."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import scripted_model as sm
from servers import scripted_server

from engine.dataset import Dataset, Question
from engine.evaluate import ControllerSpec, evaluate
from engine.generation import records
from engine.generation.backend import prompt_format
from engine.generation.branches import BranchEngine
from engine.generation.collect import collect
from engine.generation.live import LiveEpisode, LiveQuestion, compare, replay_check, run_live
from engine.generation.openai_backend import OpenAIBackend
from engine.paths import PROJECT_ROOT
from engine.replay import Episode, replay_questions
from engine.sandbox import Limits
from engine.store import Store

POOL = 4
BUILTINS = [
    ControllerSpec.builtin("sc", {"k": 3}),
    ControllerSpec.builtin("asc", {"max_samples": 4}),
    ControllerSpec.builtin("esc", {"max_samples": 4, "window_size": 2}),
    ControllerSpec.builtin("parallel_probe", {"num_chains": 3, "T": 2, "warm_up": 1, "prune_patience": 2,
                                              "max_steps": 20}),
    ControllerSpec.builtin("cmc", {"beta": 0.0}),
]
MAJORITY_OF_PROBES = '''
from collections import Counter

class Probing:
    """Opens three branches, advances each to its end, votes on the final answers."""

    def solve(self, q):
        finals = []
        for _ in range(3):
            answer, i, done = q.probe_new()
            while not done:
                answer, done = q.probe_more(i)
            finals.append(answer)
        return Counter(finals).most_common(1)[0][0]
'''
FLAKY = '''
import random

class Flaky:
    """Chooses its actions at random: not a function of the answers it sees."""

    def solve(self, q):
        answer = q.probe_new()[0]
        for _ in range(40):
            try:
                answer = q.probe_new()[0] if random.random() < 0.5 else q.probe_more(0)[0]
            except IndexError:
                pass
        return answer
'''


@pytest.fixture(scope="module")
def collected(tmp_path_factory, backend):
    """A store holding the scripted collection s/live (2 questions x POOL branches, seed 0)."""
    store = Store(tmp_path_factory.mktemp("live") / "live.duckdb")
    collect(store, "s/live", backend, questions=sm.QUESTIONS, settings=sm.settings(branches=POOL))
    return store


def _engine(backend, seed: int = 0) -> BranchEngine:
    growth = sm.settings(seed=seed).growth
    return BranchEngine(backend, prompt_format(growth.prompt_format), growth)


@pytest.mark.parametrize("spec", BUILTINS, ids=lambda s: s.name)
def test_live_with_the_collection_seeds_is_replay(spec: ControllerSpec, collected: Store, backend) -> None:
    """With the collection's seeds, the model writes the collected branches again, so a live episode must
    give exactly replay's answer, cost and action log (branches in collection order)."""
    dataset = collected.load_dataset("s/live")
    run = run_live(dataset, spec, _engine(backend), pool=POOL)
    for e, rq in zip(run.episodes, replay_questions(dataset), strict=True):
        ep = Episode(rq, tuple(range(POOL)))
        answer = spec.build().solve(ep)
        assert (e.answer, e.total_tokens, e.sequential_tokens, e.actions) == (
            answer, ep.total_tokens, ep.sequential_tokens, ep.actions)


def test_live_episode_counts_tokens_as_replay(backend) -> None:
    """A live episode's own running cost equals replay's cost of its action log on the generated data, and a
    full read costs what the server reported for the branch."""
    live_q = LiveQuestion(_engine(backend, seed=5), 0, "What is 6*7?", POOL)
    ep = LiveEpisode(live_q)
    answer, i, done = ep.probe_new()
    while not done:
        answer, done = ep.probe_more(i)
    ep.probe_more(i)  # compat quirk: a finished branch is charged its remainder again
    read = ep.get_new_branch_final_answer()
    assert ep.total_tokens == replay_check(live_q, ep.actions, "compat").total_tokens
    assert answer == live_q.finals[0] and read == live_q.finals[1]
    assert live_q.states[1].probes == [read]  # a read probes only at its end: the last probe is the final answer
    (probes, tokens), step = (live_q.probes[0], live_q.tokens[0]), live_q.probe_freq
    assert answer == probes[-1]
    remainder = max(0, tokens - step * len(probes))  # charged on the finishing advance, and again on the extra one
    assert ep.total_tokens == step * len(probes) + 2 * remainder + live_q.tokens[1]
    assert live_q.timing.tokens == live_q.tokens[0] + live_q.tokens[1]


def test_sandboxed_user_code_runs_live_like_trusted(collected: Store, backend) -> None:
    """User code run live in the sandbox gives the answers, tokens and action logs of the same code run
    in-process."""
    dataset = collected.load_dataset("s/live")
    spec = ControllerSpec.from_source(MAJORITY_OF_PROBES, "Probing")
    boxed = run_live(dataset, spec, _engine(backend, seed=3), pool=POOL)
    trusted = run_live(dataset, spec, _engine(backend, seed=3), pool=POOL, trusted=True)
    assert [(e.answer, e.total_tokens, e.actions) for e in boxed.episodes] == [
        (e.answer, e.total_tokens, e.actions) for e in trusted.episodes]


def test_sandboxed_user_code_drives_the_model_in_one_run(collected: Store, backend, monkeypatch) -> None:
    """User code in the sandbox drives the live episode directly: one sandboxed run per question however many
    generation calls it makes (even a controller that acts at random: nothing is re-executed), and the cost the
    parent's live episode charged during the run equals replay's cost of its action log on the generated data."""
    import engine.sandbox

    runs = []
    real = engine.sandbox.run_sandboxed

    def spy(*args, **kwargs):
        runs.append(real(*args, **kwargs))
        return runs[-1]

    monkeypatch.setattr(engine.sandbox, "run_sandboxed", spy)
    dataset = collected.load_dataset("s/live")
    run = run_live(dataset, ControllerSpec.from_source(FLAKY, "Flaky"), _engine(backend, seed=3), pool=POOL)
    assert len(runs) == len(run.episodes) == 2
    assert all(e.timing.generate_calls > 1 for e in run.episodes)
    assert [int(out.total_tokens[0, 0]) for out in runs] == [e.total_tokens for e in run.episodes]
    assert [out.actions[(0, 0)] for out in runs] == [e.actions for e in run.episodes]


ONE_PROBE = """
class OneProbe:
    def solve(self, q):
        return q.probe_new()[0]
"""


def _slow(endpoint: str, body: dict) -> str:
    time.sleep(1.6)
    return sm.reply(endpoint, body)


def test_the_models_time_is_not_the_sandboxed_controllers(monkeypatch) -> None:
    """A sandboxed controller waiting for the model is not charged that wait: one action whose interval and
    probe take 3.2 s runs under a 0.5 s episode limit (plus the parent's 2 s grace), which still bounds the
    controller's own time."""
    import engine.generation.live as live

    monkeypatch.setattr(live, "LIVE_LIMITS", Limits(episode_seconds=0.5, evaluation_seconds=3600))
    with scripted_server(_slow) as srv:
        slow = OpenAIBackend("scripted", srv.base_url, concurrency=2)
        try:
            dataset = Dataset("q", (Question(sm.QUESTIONS[0][0], sm.QUESTIONS[0][1], sm.INTERVAL, ()),))
            run = run_live(dataset, ControllerSpec.from_source(ONE_PROBE, "OneProbe"), _engine(slow), pool=POOL)
        finally:
            slow.close()
    (episode,) = run.episodes
    assert episode.actions == [-1] and episode.model_seconds > 3.0 and episode.answer == "No"


def test_compare_and_store(collected: Store, backend) -> None:
    """The gap compares live with replay on the same questions, and the live run is stored with its episodes."""
    dataset = collected.load_dataset("s/live")
    spec = BUILTINS[0]
    live = run_live(dataset, spec, _engine(backend, seed=9), questions=[1], pool=POOL, store=collected)
    replay = evaluate(dataset, spec, shuffles=10)
    gap = compare(replay, live)
    assert gap.questions == [1]
    assert gap.replay_accuracy == replay.per_question_accuracy[1]
    assert gap.replay_tokens == replay.per_question_tokens[1]
    assert gap.live_tokens == live.episodes[0].total_tokens
    assert gap.accuracy_gap == gap.live_accuracy - gap.replay_accuracy
    assert gap.token_gap == pytest.approx(gap.live_tokens / gap.replay_tokens - 1)
    stored = records.list_live_runs(collected, "s/live")
    assert stored[0]["id"] == live.id and stored[0]["questions"] == [1]
    episodes = records.live_episodes(collected, live.id)
    assert [(e["answer"], e["total_tokens"], e["actions"]) for e in episodes] == [
        (live.episodes[0].answer, live.episodes[0].total_tokens, live.episodes[0].actions)]
    assert episodes[0]["seconds"] >= episodes[0]["model_seconds"] > 0


def test_live_run_cli(collected: Store, server, tmp_path) -> None:
    """`python -m engine live-run --json` runs a controller live on k questions and prints the gap."""
    db = tmp_path / "cli.duckdb"
    Store(db).import_dataset(collected.load_dataset("s/live"))
    done = subprocess.run(
        [sys.executable, "-m", "engine", "--db", str(db), "live-run", "--dataset", "s/live", "--controller", "sc",
         "--set", "k=2", "--model", "scripted", "--api-base", server.base_url, "--format", "chatml",
         "--max-tokens", str(sm.MAX_TOKENS), "--pool", str(POOL), "-k", "1", "--shuffles", "5", "--json"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=240,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [e["q_idx"] for e in out["episodes"]] == [0]
    assert out["accuracy_gap"] == out["live_accuracy"] - out["replay_accuracy"]
    assert records.list_live_runs(Store(db))[0]["id"] == out["run"]
