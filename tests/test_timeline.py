"""The episode viewer's data: steps from the engine's trace events, and episodes equal to evaluate's."""

from pathlib import Path

import pytest

from engine.dataset import Branch, Dataset, Question
from engine.evaluate import ControllerSpec, action_events, evaluate
from engine.formats.autotts import load_autotts_file
from engine.paths import PROJECT_ROOT
from engine.replay import OPEN, READ, replay_questions, shuffled_order
from engine.timeline import run_episode, steps

Q = Question("q", "7", 500, (
    Branch(("7", "7"), 1200, "7"),
    Branch(("8",), 700, "8"),
    Branch((), 300, "7"),
    Branch(("5", "5", "5"), 2000, "5"),
))
TOY = Dataset("toy/bench", (Q,), content_hash="toy")
SC_FILE = PROJECT_ROOT / "examples" / "controllers" / "sc_reference_style.py"


def test_steps_follow_the_action_log():
    """Open, advance and read become steps with the interval revealed, tokens charged and running votes."""
    rq = replay_questions(TOY)[0]
    order = shuffled_order(1, 4)
    assert order == (3, 0, 2, 1)  # position 0 is branch 3 (5, 5, 5), 1 is branch 0 (7, 7), 2 is branch 2 (empty)
    rows = steps(action_events(rq, [OPEN, OPEN, 0, 0, READ], 1), order, rq.probes)
    assert [(s.kind, s.position, s.branch, s.interval, s.answer, s.finished, s.tokens) for s in rows] == [
        ("open", 0, 3, 0, "5", False, 500), ("open", 1, 0, 0, "7", False, 500),
        ("advance", 0, 3, 1, "5", False, 500), ("advance", 0, 3, 2, "5", False, 500),
        ("read", 2, 2, 0, "7", True, 300)]
    assert [s.total_tokens for s in rows] == [500, 1000, 1500, 2000, 2300]
    assert [s.vote for s in rows] == ["5", "5", "5", "5", "7"]
    assert [s.finished_vote for s in rows] == [None, None, None, None, "7"]


@pytest.mark.parametrize("name, config", [("cmc", {"beta": 0.5}), ("parallel_probe", {"num_chains": 16}),
                                          ("asc", {"max_samples": 64})])
def test_episode_equals_the_evaluations_episode(data_dir, name, config):
    """The viewer's episode (Python path) has the answer and tokens of evaluate's compiled-kernel episode."""
    ds = load_autotts_file(data_dir / "Qwen3-8B" / "aime24.json", "Qwen3-8B/aime24")
    spec = ControllerSpec.builtin(name, config)
    records = evaluate(ds, spec, shuffles=6, episodes=True).episodes
    for seed, question in [(0, 0), (5, 7), (3, 29)]:
        run = run_episode(ds, spec, question, seed)
        record = next(r for r in records if (r["seed"], r["question"]) == (seed, question))
        assert (run.answer, run.total_tokens, run.sequential_tokens, len(run.steps)) == (
            record["answer"], record["total_tokens"], record["sequential_tokens"], record["actions"])
        assert run.correct == record["correct"]
        assert run.steps[-1].total_tokens == run.total_tokens


def test_sandboxed_user_controller_gives_the_same_episode_as_in_process():
    """A controller file run sandboxed (the viewer's path for saved code) replays like the trusted run."""
    spec = ControllerSpec.from_source(Path(SC_FILE).read_text(), None, {"k": 3}, str(SC_FILE))
    sandboxed = run_episode(TOY, spec, 0, 2)
    trusted = run_episode(TOY, spec, 0, 2, trusted=True)
    assert sandboxed == trusted
    assert [s.kind for s in sandboxed.steps] == ["read"] * 3


def test_out_of_range_question_or_seed_is_a_clear_error():
    """Bad inputs name the valid range instead of failing deep in the replay."""
    spec = ControllerSpec.builtin("sc", {"k": 1})
    with pytest.raises(ValueError, match="question must be 0 to 0"):
        run_episode(TOY, spec, 1, 0)
    with pytest.raises(ValueError, match="seed must be 0 to 999"):
        run_episode(TOY, spec, 0, 1000)
