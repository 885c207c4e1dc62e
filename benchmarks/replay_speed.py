"""Replay speed, measured side by side in one run: `make bench` (or python benchmarks/replay_speed.py).

Prints, for one (model, bench) with 100 shuffles:
  1. each built-in's compiled kernel vs its straightforward per-episode Python twin, and vs the
     reference evaluator's documented time on the same 2-core machine class (replay-semantics.md);
  2. a full CMC beta-sweep (11 beta x 12 datasets) cold and from the result cache;
  3. controller files in the reference format (examples/controllers/): the environment alone, single-core
     end-to-end against the reference evaluator, and sandboxed over all cores against in-process;
  4. the sandboxed CMC file before the judge and with each judge (issue 10: strict, where the parent owns every
     episode, and sampled, a fast run then an audit of Limits.audit_episodes episodes), each run in a fresh
     process, alternating, the "before" sandbox taken from git (commit BEFORE); and the audit phase alone;
  5. one discovery-style evaluation of the CMC file (4 datasets x 11 betas), as one sandbox batch
     (``evaluate_pairs``) and pair by pair (``evaluate``), in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import store as store_module
from engine.controllers import BETAS, kernels
from engine.evaluate import ControllerSpec, evaluate, evaluate_pairs, run_python, sweep
from engine.paths import PROJECT_ROOT, data_dir
from engine.replay import Episode, replay_actions, replay_questions, shuffled_order
from engine.sandbox import SAMPLED, STRICT, Limits
from engine.store import Store

SHUFFLES = 100
# Seconds of the reference evaluator for one evaluation (replay-semantics.md, median of 3).
REFERENCE_SECONDS = {"sc64": 0.42, "esc64": 1.0, "asc64": 2.8, "cmc_beta0.5": 7.8, "cmc_beta1.0": 9.4,
                     "parallel_probe64": 18.8}
TARGET_SECONDS = {"sc64": 0.05, "esc64": 0.05, "asc64": 0.05, "cmc_beta0.5": 0.25, "cmc_beta1.0": 0.25,
                  "parallel_probe64": 0.25}
PAUSE = 0.5  # seconds between timed runs of controller files
EXAMPLES = PROJECT_ROOT / "examples" / "controllers"
DISCOVERY_DATASETS = ("Qwen3-0.6B/aime24", "Qwen3-1.7B/aime24", "Qwen3-4B/aime24", "Qwen3-8B/aime24")
DISCOVERY_TARGET = 60.0  # seconds for one candidate's evaluation (issue 8)
BEFORE = "9953ee7"  # the last sandbox that ran episodes inside the worker (where a controller could read them)
# One timed sandboxed evaluation of the CMC file, after a warm-up with the same judge (it starts the spare
# workers and loads the grader's compiled code, as a server's first evaluation does); prints its seconds and
# those from the audit's start (its progress label) to the end, and the CPU seconds of this process and of
# every worker reaped meanwhile.
SANDBOXED_CMC = """
import json, resource, sys, time
from engine.evaluate import ControllerSpec
from engine.formats.autotts import load_autotts_file
from engine.sandbox import Limits, run_sandboxed
path, name, file, shuffles, *judge = sys.argv[1:]
limits = Limits(judge=judge[0]) if judge else None
ds = load_autotts_file(path, name)
spec = ControllerSpec.from_source(open(file).read(), None, {"beta": 0.5}, file)
run_sandboxed(ds, spec, shuffles=2, limits=Limits(judge=judge[0], audit_episodes=8) if judge else None)
time.sleep(0.5)
audit = []
def cpu():
    return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF,
                                                                         resource.RUSAGE_CHILDREN)))
start, used = time.perf_counter(), cpu()
run_sandboxed(ds, spec, shuffles=int(shuffles), limits=limits,
              progress=lambda done, total, label: "audit" in label and audit.append(time.perf_counter()))
end = time.perf_counter()
print(json.dumps([end - start, end - audit[0] if audit else 0.0, cpu() - used]))
"""


def timed(fn, repeat: int = 3, pause: float = 0.0) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeat`` runs, ``pause`` seconds apart."""
    times = []
    for _ in range(repeat):
        time.sleep(pause)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def builtins_section(ds) -> None:
    print(f"\n== Built-in controllers on {ds.name}, {SHUFFLES} shuffles (3,000 episodes) ==")
    print(f"{'controller':18}{'kernel s':>10}{'python s':>10}{'kernel/py':>11}{'reference s':>12}"
          f"{'speedup':>9}{'target s':>10}  ok")
    for preset, ref in REFERENCE_SECONDS.items():
        spec = ControllerSpec.builtin(preset)
        knobs = spec.build().knobs
        kernels.run(ds, spec.name, knobs, SHUFFLES)  # compile / warm caches
        fast = timed(lambda: kernels.run(ds, spec.name, knobs, SHUFFLES))  # noqa: B023
        slow = timed(lambda: run_python(ds, spec.build(), shuffles=SHUFFLES), repeat=1)  # noqa: B023
        ok = "yes" if fast <= TARGET_SECONDS[preset] else "NO"
        print(f"{preset:18}{fast:10.4f}{slow:10.3f}{slow / fast:10.0f}x{ref:12.2f}{ref / fast:8.0f}x"
              f"{TARGET_SECONDS[preset]:10.2f}  {ok}")


def sweep_section(store: Store, names: list[str]) -> None:
    datasets = [store.load_dataset(n) for n in names]
    specs = [ControllerSpec.builtin("cmc", {"beta": beta}) for beta in BETAS]
    cold = timed(lambda: sweep(datasets, specs, shuffles=SHUFFLES, store=store), repeat=1)
    warm = timed(lambda: sweep(datasets, specs, shuffles=SHUFFLES, store=store), repeat=1)
    print(f"\n== Full CMC beta-sweep: {len(BETAS)} beta x {len(datasets)} datasets x {SHUFFLES} shuffles ==")
    print(f"cold (no cached results): {cold:.2f} s  (target <= 30 s; reference ~1,200 s: {1200 / cold:.0f}x)")
    print(f"from the result cache:    {warm:.3f} s  (target <= 1 s)")


def file_controller_section(ds) -> None:
    print(f"\n== Controller files in the reference format on {ds.name}, {SHUFFLES} shuffles ==")
    print(f"{'file':28}{'env-only s':>11}{'1 core s':>10}{'reference s':>12}{'speedup':>9}"
          f"{f'sandboxed ({os.cpu_count()} cores) s':>28}{'sandbox/1 core':>16}")
    for file, config, ref in ((EXAMPLES / "sc_reference_style.py", {"k": 64}, REFERENCE_SECONDS["sc64"]),
                              (EXAMPLES / "cmc_reference_style.py", {"beta": 0.5}, REFERENCE_SECONDS["cmc_beta0.5"])):
        spec = ControllerSpec.from_source(file.read_text(), None, config, str(file))
        env = timed(lambda: replay_logs(ds, spec))  # noqa: B023
        single = timed(lambda: run_python(ds, spec.build(), shuffles=SHUFFLES), pause=PAUSE)  # noqa: B023
        sandboxed = timed(lambda: evaluate(ds, spec, shuffles=SHUFFLES), repeat=4, pause=PAUSE)  # noqa: B023
        print(f"{file.name:28}{env:11.3f}{single:10.3f}{ref:12.2f}{ref / single:8.1f}x{sandboxed:28.3f}"
              f"{sandboxed / single:15.2f}x")
    print("env-only: the episode environment alone, re-applying the controller's recorded actions.")
    print(f"Runs are {PAUSE} s apart, as interactive evaluations are: the sandbox's spare workers (started after "
          "each evaluation) are then ready; its first run in a process starts them.")


def judge_section(name: str, rounds: int) -> None:
    """The sandboxed CMC file before the judge (commit BEFORE), with the strict judge and with the sampled
    judge, alternating, each run in a fresh process; and the audit phase of each judge alone."""
    print(f"\n== Sandboxed CMC file (cmc_reference_style.py, beta 0.5) on {name}, {SHUFFLES} shuffles: before the "
          f"judge (sandbox of {BEFORE}) vs the strict and the sampled judge (audit of {Limits().audit_episodes} "
          "episodes included) ==")
    archive = subprocess.run(["git", "-C", str(PROJECT_ROOT), "archive", BEFORE, "engine"], capture_output=True)
    if archive.returncode != 0:
        print(f"skipped: git archive {BEFORE} failed ({archive.stderr.decode().strip()[:200]})")
        return
    (PROJECT_ROOT / "cache").mkdir(exist_ok=True)
    # Not under /tmp: the worker's private /tmp would hide the old engine package from its own worker.
    with tempfile.TemporaryDirectory(dir=PROJECT_ROOT / "cache") as old:
        subprocess.run(["tar", "-x", "-C", old], input=archive.stdout, check=True)
        runs: dict[str, list[tuple[float, float, float]]] = {"before": [], STRICT: [], SAMPLED: []}
        for _ in range(rounds):
            for label in runs:
                root, judge = (old, None) if label == "before" else (str(PROJECT_ROOT), label)
                runs[label].append(_sandboxed_cmc_seconds(root, name, judge))
    before = [statistics.median(run[i] for run in runs["before"]) for i in (0, 2)]
    print(f"{'':10}{'median s':>10}{'vs before':>11}{'audit s':>9}{'CPU s':>8}{'vs before':>11}   "
          "runs (total/audit s)")
    for label, times in runs.items():
        total, audit, cpu = (statistics.median(run[i] for run in times) for i in range(3))
        print(f"{label:10}{total:10.2f}{total / before[0]:10.2f}x{audit:9.2f}{cpu:8.2f}{cpu / before[1]:10.2f}x   "
              f"{' '.join(f'{t:.1f}/{a:.1f}' for t, a, _ in times)}")


def discovery_section(store: Store, shuffles: int) -> None:
    """One candidate's evaluation as discovery runs it: the CMC file on 4 datasets x 11 betas, batched
    (one pool, one audit) and pair by pair (a pool and an audit each), nothing cached."""
    pairs = [(store.load_dataset(name), ControllerSpec.from_source(
        (EXAMPLES / "cmc_reference_style.py").read_text(), None, {"beta": beta}, "cmc_reference_style.py"))
        for name in DISCOVERY_DATASETS for beta in BETAS]
    print(f"\n== One discovery evaluation: cmc_reference_style.py on {len(DISCOVERY_DATASETS)} datasets (aime24) x "
          f"{len(BETAS)} betas = {len(pairs)} pairs, {shuffles} shuffles, sandboxed with the audit ==")
    evaluate(pairs[0][0], pairs[0][1], shuffles=2)  # starts the spare workers
    time.sleep(PAUSE)
    start = time.perf_counter()
    batched = evaluate_pairs(pairs, shuffles=shuffles)
    batch_s = time.perf_counter() - start
    time.sleep(PAUSE)
    start = time.perf_counter()
    alone = [evaluate(ds, spec, shuffles=shuffles) for ds, spec in pairs]
    pair_s = time.perf_counter() - start
    same = all(a.accuracy == b.accuracy and a.avg_total_tokens == b.avg_total_tokens
               for a, b in zip(batched, alone, strict=True))
    print(f"{'batched s':>10}{'pair by pair s':>16}{'ratio':>8}{'target s':>10}  ok  identical figures")
    print(f"{batch_s:10.1f}{pair_s:16.1f}{pair_s / batch_s:7.2f}x{DISCOVERY_TARGET:10.0f}  "
          f"{'yes' if batch_s <= DISCOVERY_TARGET else 'NO '} {'yes' if same else 'NO'}")


def _sandboxed_cmc_seconds(root: str, name: str, judge: str | None = None) -> tuple[float, float, float]:
    """(seconds, audit seconds, CPU seconds) of one sandboxed CMC run with the engine at ``root`` (``judge``:
    Limits.judge)."""
    file = EXAMPLES / "cmc_reference_style.py"
    env = {**os.environ, "PYTHONPATH": root}
    extra = [] if judge is None else [judge]
    done = subprocess.run([sys.executable, "-c", SANDBOXED_CMC, str(data_dir() / f"{name}.json"), name, str(file),
                           str(SHUFFLES), *extra], cwd=root, env=env, capture_output=True, text=True)
    if done.returncode != 0:  # say why (e.g. a sandbox limit on an overloaded machine), not only that it failed
        raise RuntimeError(f"the timed run failed: {done.stderr.strip()[-2000:]}")
    seconds, audit, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds, audit, cpu


def replay_logs(ds, spec: ControllerSpec) -> None:
    """Record every episode's action log once, then time re-applying them (cached per spec)."""
    logs = _LOGS.get(id(spec))
    if logs is None:
        controller, logs = spec.build(), []
        for s in range(SHUFFLES):
            for rq in replay_questions(ds):
                ep = Episode(rq, shuffled_order(s, rq.n_branches))
                controller.solve(ep)
                logs.append((rq, shuffled_order(s, rq.n_branches), ep.actions))
        _LOGS[id(spec)] = logs
    for rq, order, actions in logs:
        replay_actions(rq, order, actions)


_LOGS: dict[int, list] = {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="Qwen3-8B/aime24")
    parser.add_argument("--skip-file", action="store_true", help="skip the file-controller section")
    parser.add_argument("--judge-only", action="store_true", help="only the sandbox before/strict/sampled section")
    parser.add_argument("--judge-rounds", type=int, default=3, help="before/strict/sampled rounds to time (median)")
    parser.add_argument("--discovery-only", action="store_true", help="only the discovery batch section")
    parser.add_argument("--discovery-shuffles", type=int, default=SHUFFLES, help="shuffles of the discovery section")
    args = parser.parse_args(argv)
    if args.judge_only:
        judge_section(args.dataset, args.judge_rounds)
        return 0
    if args.discovery_only:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "bench.duckdb")
            store.import_path(data_dir())
            discovery_section(store, args.discovery_shuffles)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        imported = timed(lambda: store.import_path(data_dir()), repeat=1)
        names = [info.name for info in store.list_datasets()]
        store_module._CACHE.clear()  # time a real load, not the in-process cache
        loaded = timed(lambda: Store(Path(tmp) / "bench.duckdb").load_dataset(args.dataset), repeat=1)
        print(f"== Store: import of all {len(names)} files {imported:.2f} s; first load of one dataset "
              f"{loaded:.3f} s ==")
        ds = store.load_dataset(args.dataset)
        builtins_section(ds)
        sweep_section(store, names)
        if not args.skip_file:
            file_controller_section(ds)
            judge_section(args.dataset, args.judge_rounds)
            discovery_section(store, args.discovery_shuffles)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
