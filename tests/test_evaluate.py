"""Evaluation metrics, per-episode records, traces and the bootstrap interval."""

import subprocess
import sys

import numpy as np

from engine.dataset import Branch, Dataset, Question
from engine.evaluate import ControllerSpec, bootstrap_ci, evaluate
from engine.paths import PROJECT_ROOT

# Two questions, four branches each; "7" is gold for q0 (3 of 4 branches), "1" for q1 (1 of 4).
DATASET = Dataset(
    "toy/bench",
    (
        Question("q0", "7", 500, (Branch(("7",), 900, "7"), Branch(("3",), 800, "7"),
                                  Branch(("7", "7"), 1200, "7"), Branch((), 400, "5"))),
        Question("q1", "1", 500, (Branch(("2",), 700, "2"), Branch(("1",), 600, "1"),
                                  Branch(("2",), 500, "2"), Branch(("9",), 1000, "9"))),
    ),
    content_hash="toy",
)


def test_sc_metrics_are_means_over_shuffles_and_questions():
    """SC@4 reads everything: the majority is fixed, so accuracy and tokens are exact numbers."""
    res = evaluate(DATASET, ControllerSpec.builtin("sc", {"k": 4}), shuffles=5)
    assert res.accuracy == 50.0  # q0 correct ("7" x3), q1 wrong ("2" x2)
    assert res.avg_total_tokens == (3300 + 2800) / 2
    assert res.avg_sequential_tokens == (1200 + 1000) / 2
    assert res.per_question_accuracy == [100.0, 0.0]
    assert res.avg_actions == 4


def test_episode_records_say_what_each_episode_did():
    """episodes=True gives one record per (seed, question) with answer, correctness and costs."""
    res = evaluate(DATASET, ControllerSpec.builtin("sc", {"k": 1}), shuffles=3, episodes=True)
    assert len(res.episodes) == 6
    first = res.episodes[0]
    assert set(first) == {"seed", "question", "answer", "correct", "total_tokens", "sequential_tokens", "actions"}
    assert first["total_tokens"] == first["sequential_tokens"]
    assert res.accuracy == round(100 * np.mean([e["correct"] for e in res.episodes]), 2)


def test_traces_use_the_controllers_own_trace_or_the_action_log():
    """Built-ins without get_last_trace get events derived from their actions, in the reference shape."""
    from engine.evaluate import run_python

    out = run_python(DATASET, ControllerSpec.builtin("cmc", {"beta": 0.0}).build(), shuffles=1, traces=True)
    events = out.traces[(0, 0)]
    assert events and {"event", "input", "output", "state"} <= set(events[0])
    assert events[-1]["state"]["total_tokens"] == out.total_tokens[0, 0]


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    """The 95% CI is reproducible and contains the point estimate."""
    per_q = np.array([1.0, 0.0, 0.5, 1.0, 0.25])
    lo, hi = bootstrap_ci(per_q)
    assert (lo, hi) == bootstrap_ci(per_q)
    assert lo <= per_q.mean() * 100 <= hi
    assert bootstrap_ci(np.array([1.0, 1.0])) == (100.0, 100.0)


def test_layers_import_top_down_without_a_cycle():
    """Kernels and the sandbox use the shared types from engine.spec, never the evaluator above them."""
    code = ("import sys\n"
            "from engine import sandbox\n"
            "from engine.controllers import kernels\n"
            "from engine.store import Store\n"
            "assert 'engine.evaluate' not in sys.modules, 'imported engine.evaluate'\n"
            "from engine.spec import ControllerSpec, Outcomes\n"
            "import engine.evaluate as ev\n"
            "assert ev.ControllerSpec is ControllerSpec and ev.Outcomes is Outcomes\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_kernel_run_does_not_import_the_evaluator():
    """Running a compiled kernel (in a fresh process) leaves engine.evaluate unimported."""
    code = ("import sys\n"
            "from engine.controllers import kernels\n"
            "from engine.controllers.sc import SC\n"
            "out = kernels.run(kernels._WARM_UP_DATA, 'sc', SC({'k': 2}).knobs, 3)\n"
            "assert len(out.answers) == 3 and {a for (a,) in out.answers} <= {'a', 'b'}, out\n"
            "assert 'engine.evaluate' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
