"""The compiled batch kernels give exactly what the straightforward Python controllers give."""

import itertools

import numpy as np
import pytest

from engine.controllers import kernels
from engine.evaluate import ControllerSpec, run_python

MODELS = ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")
BENCHES = ("aime24", "aime25", "hmmt25")
CONFIGS = [
    ("sc", {"k": 64}),
    ("sc", {"k": 130}),  # more than the pool holds
    ("asc", {"max_samples": 64}),
    ("asc", {"max_samples": 128, "threshold": 0.8}),
    ("esc", {"max_samples": 64}),
    ("esc", {"max_samples": 40, "window_size": 5}),
    ("parallel_probe", {"num_chains": 64}),
    ("parallel_probe", {"num_chains": 16, "probe_burst": 3, "warm_up": 3, "prune_patience": 2, "T": 5}),
    ("cmc", {"beta": 0.0}),
    ("cmc", {"beta": 0.5}),
    ("cmc", {"beta": 1.0}),
    ("cmc", {"beta": 0.3, "burst_aligned": 4, "widen_burst": 7}),
]
SHUFFLES = 4


@pytest.mark.parametrize(("model", "bench"), list(itertools.product(MODELS, BENCHES)))
def test_kernels_equal_python_episode_by_episode(model, bench, real_dataset):
    """Answers, total and sequential tokens and action counts agree for every episode."""
    ds = real_dataset(f"{model}/{bench}")
    for name, config in CONFIGS:
        controller = ControllerSpec.builtin(name, config).build()
        fast = kernels.run(ds, name, controller.knobs, SHUFFLES)
        slow = run_python(ds, controller, shuffles=SHUFFLES)
        assert fast.answers == slow.answers, (name, config)
        for field in ("total_tokens", "sequential_tokens", "n_actions"):
            np.testing.assert_array_equal(getattr(fast, field), getattr(slow, field), err_msg=f"{name} {config}")


def test_log_grader_equals_episode_replay_on_real_and_broken_logs(real_dataset):
    """The sandbox's compiled grader (sampled judge: it grades the fast workers' action logs) gives Episode's
    costs for real logs and refuses what Episode refuses, so a forged log is never charged differently."""
    import random

    from engine.replay import Episode, replay_actions, replay_questions, shuffled_order

    ds = real_dataset("Qwen3-1.7B/aime25")
    questions = replay_questions(ds)
    rng = random.Random(7)
    for mode in ("compat", "strict"):
        grader = kernels.LogGrader(ds, 6, mode)
        for name, config in CONFIGS:
            controller = ControllerSpec.builtin(name, config).build()
            for seed, qi in ((0, 0), (3, 17), (5, 29)):
                rq, order = questions[qi], shuffled_order(seed, 128)
                ep = Episode(rq, order)
                controller.solve(ep)
                logs = [ep.actions, [*ep.actions, rng.randrange(-3, 130)], [*ep.actions, 0, 0]]
                for log in logs:
                    try:
                        want = replay_actions(rq, order, log, mode)
                        expected = (want.total_tokens, want.sequential_tokens)
                    except Exception:
                        expected = None
                    assert grader.costs_many([(qi, seed, log)]) == [expected], (mode, name, config, log[-3:])


def test_concurrent_evaluations_from_threads_agree_with_serial_ones(real_dataset):
    """Two app users at once (Streamlit runs sessions in threads) get the same figures as one at a time."""
    import threading

    ds = real_dataset("Qwen3-4B/hmmt25")
    jobs = [("cmc", {"beta": 0.5}), ("parallel_probe", {"num_chains": 32}), ("cmc", {"beta": 1.0}), ("sc", {"k": 8})]
    knobs = [ControllerSpec.builtin(n, c).build().knobs for n, c in jobs]
    serial = [kernels.run(ds, n, k, 20).total_tokens.tolist() for (n, _), k in zip(jobs, knobs, strict=True)]
    seen: dict[int, list] = {}

    def work(i: int) -> None:
        seen[i] = kernels.run(ds, jobs[i % 4][0], knobs[i % 4], 20).total_tokens.tolist()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [seen[i] for i in range(8)] == serial * 2


def _small_dataset(seed: int):
    """Random questions with 2-6 branches (some without probes) and a 3-answer vocabulary."""
    import random

    from engine.dataset import Branch, Dataset, Question

    rng = random.Random(seed)
    questions = []
    for qi in range(8):
        branches = []
        for _ in range(rng.randint(2, 6)):
            probes = tuple(rng.choice("abc") for _ in range(rng.randint(0, 12)))
            branches.append(Branch(probes, rng.randint(100, 7000), rng.choice("abc")))
        questions.append(Question(f"q{qi}", rng.choice("abc"), 500, tuple(branches)))
    return Dataset(f"small/{seed}", tuple(questions), content_hash=f"small{seed}")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kernels_equal_python_on_small_pools_where_controllers_run_out_of_branches(seed):
    """With fewer branches than a controller wants (opening and widening past the pool), the twins agree,
    and strict mode falls back to Python, which names the action."""
    from engine.controllers.loader import ControllerError
    from engine.evaluate import evaluate

    ds = _small_dataset(seed)
    configs = [*CONFIGS, ("cmc", {"beta": 0.0, "max_branch_use": 9, "widen_burst": 3}),
               ("parallel_probe", {"num_chains": 8, "warm_up": 0, "prune_patience": 1, "T": 3})]
    for name, config in configs:
        controller = ControllerSpec.builtin(name, config).build()
        fast = kernels.run(ds, name, controller.knobs, 5)
        slow = run_python(ds, controller, shuffles=5)
        assert fast.answers == slow.answers, (name, config)
        for field in ("total_tokens", "sequential_tokens", "n_actions"):
            np.testing.assert_array_equal(getattr(fast, field), getattr(slow, field), err_msg=f"{name} {config}")
    with pytest.raises(ControllerError, match="opens past the pool"):
        evaluate(ds, ControllerSpec.builtin("cmc", {"beta": 1.0}), shuffles=2, mode="strict")
