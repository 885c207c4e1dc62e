"""Discovery figures, measured in one run: python benchmarks/discovery_offline.py [--trials 200]

Prints:
  1. seconds per round spent evaluating a candidate on 4 search datasets x 11 betas (100 shuffles):
     a Python controller file (sandboxed, all cores) against a member of the parameterised family
     (compiled kernel), side by side;
  2. prompt size in tokens for rounds 1..5 (history of 1..3 candidates, the default 6000-token budget);
  3. an offline (Optuna) session of --trials trials on the four Qwen3 models' AIME24 as search set,
     then its best candidate against CMC at the same betas on the held-out AIME25 + HMMT25 (100 shuffles),
     both curves' held-out curve scores, and whether the best's curve rises with beta (--objective: curve
     by default; accuracy or penalised for the earlier point objectives).
  4. (section ``screen``) multi-fidelity search, one session against the local scripted server (SCRIPTED
     CONTENT: a CMC-like Python file, then the same file with beta squeezed to [0, 0.1]) on 4 search
     datasets x 11 betas: seconds of the screen evaluation alone (--screen-shuffles, target <= 60 s), of a
     promoted round's screen + full (--eval-shuffles) evaluation, side by side, as the loop times them;
  5. (section ``promoted``) the fraction of rounds promoted in a short scripted session (``screen_policy``),
     and the same session without screening, its evaluation time beside.
  6. (section ``fidelity``) how far screening at --screen-shuffles agrees with the full count: family members
     (compiled; random rising members and small perturbations of CMC) scored against CMC at both counts on
     the 4 search datasets, and for several margins how many would be promoted and how many better-than-CMC
     members (at the full count) the screen would have rejected.
Results of part 3 are also written as JSON (--json) for the figures in docs/discovery.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.controllers import BETAS
from engine.discovery import SessionConfig, family, lineage, objective, ranked, run_session, sessions, start_session
from engine.discovery.prompts import Entry, build_prompt
from engine.discovery.sessions import SEARCH
from engine.evaluate import ControllerSpec, evaluate
from engine.paths import PROJECT_ROOT, data_dir
from engine.store import Store
from tests.discovery import scripted
from tests.servers import scripted_server

MODELS = ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")
SEARCH_SETS = tuple(f"{m}/aime24" for m in MODELS)
HELDOUT_SETS = tuple(f"{m}/{b}" for m in MODELS for b in ("aime25", "hmmt25"))
PY_FILE = PROJECT_ROOT / "examples" / "controllers" / "cmc_reference_style.py"
FULL_SHUFFLES = 100


def sweep_seconds(store: Store, spec_at, shuffles: int = FULL_SHUFFLES) -> float:
    """Wall-clock seconds to evaluate ``spec_at(beta)`` on the 4 search sets x 11 betas (no cache)."""
    start = time.perf_counter()
    for name in SEARCH_SETS:
        ds = store.load_dataset(name)
        for beta in BETAS:
            evaluate(ds, spec_at(beta), shuffles=shuffles)
    return time.perf_counter() - start


def evaluation_section(store: Store, shuffles: int) -> None:
    print(f"\n== Seconds per round evaluating 4 search datasets x 11 betas, {shuffles} shuffles "
          f"(load average {os.getloadavg()[0]:.1f}) ==")
    source = PY_FILE.read_text()
    member = family.preset("cmc")
    sweep_seconds(store, lambda b: family.spec(member, b), shuffles=2)  # compile the kernels once
    compiled = sweep_seconds(store, lambda b: family.spec(member, b), shuffles)
    python = sweep_seconds(store, lambda b: ControllerSpec.from_source(source, config={"beta": b},
                                                                       filename=PY_FILE.name), shuffles)
    print(f"{'Python file (sandboxed, ' + str(os.cpu_count()) + ' cores)':44}{python:9.1f} s   target <= 60 s  "
          f"{'ok' if python <= 60 else 'MISSED'}")
    print(f"{'parameterised family (compiled kernel)':44}{compiled:9.1f} s   {python / compiled:.0f}x faster")


SQUEEZE = ('float(self.config.get("beta", 0.5))', '0.1 * float(self.config.get("beta", 0.5))')


def cmc_like(variant: int, squeezed: bool = False) -> str:
    """SCRIPTED CONTENT: the CMC reference file under a new first docstring line (a new source, so nothing is
    served from the cache), with beta squeezed to [0, 0.1] (a cheap curve that scores lower) if asked."""
    source = PY_FILE.read_text()
    if squeezed:
        source = source.replace(*SQUEEZE)
    idea = "CMC with beta squeezed to [0, 0.1]" if squeezed else "CMC as the reference file writes it"
    return f'"""{idea} (variant {variant})."""\n' + source.split('"""', 2)[2].rstrip("\n") + "\n"


class StepClock:
    """Seconds between a round's steps, from the loop's own step events (``screen``, ``evaluate``, ...)."""

    def __init__(self) -> None:
        self.marks: list[tuple[int, str, float]] = []

    def __call__(self, event) -> None:
        if event.kind in ("step", "round"):
            self.marks.append((event.round, event.step, time.perf_counter()))

    def span(self, rnd: int, step: str) -> float | None:
        """Seconds from ``step`` of round ``rnd`` to the next event (None: the step did not run)."""
        for i, (r, name, t) in enumerate(self.marks[:-1]):
            if r == rnd and name == step:
                return self.marks[i + 1][2] - t
        return None


def screen_section(store: Store, screen_shuffles: int, full_shuffles: int) -> None:
    print(f"\n== Multi-fidelity search: a CMC-like Python file on 4 search datasets x 11 betas, screen "
          f"{screen_shuffles} shuffles, full {full_shuffles} (load average {os.getloadavg()[0]:.1f}) ==")
    answers = iter([cmc_like(1), cmc_like(2, squeezed=True)])
    clock = StepClock()
    with scripted_server(lambda endpoint, body: scripted.fenced(next(answers))) as server:
        config = SessionConfig(name=f"bench-screen-{time.time_ns()}", proposer="openai/scripted",
                               api_base=server.base_url, search=SEARCH_SETS, shuffles=full_shuffles,
                               screen_shuffles=screen_shuffles, rounds=2, retries=0, critic=False)
        final = start_session(store, config, on_event=clock)
    records = {r.round: r for r in sessions.list_rounds(store, config.name)}
    print(f"session {final.status}; round 1: {records[1].summary[:70]} | round 2: {records[2].summary[:90]}")
    screen1, full1, screen2 = clock.span(1, "screen"), clock.span(1, "evaluate"), clock.span(2, "screen")
    print(f"{'round':34}{'screen s':>10}{'full s':>10}{'evaluating s':>14}")
    print(f"{'1 promoted (screen + full)':34}{screen1:10.1f}{full1:10.1f}{screen1 + full1:14.1f}")
    print(f"{'2 screened out (screen only)':34}{screen2:10.1f}{'-':>10}{screen2:14.1f}   target <= 60 s  "
          f"{'ok' if screen2 <= 60 else 'MISSED'}")
    print(f"{'no screening (full only)':34}{'-':>10}{full1:10.1f}{full1:14.1f}")
    print("(round 1's screen includes the seed's screen figures, compiled, once; its full span includes the "
          "one-episode trace for the next prompt)")


def screen_policy(tag: str) -> Callable[[str, dict], str]:
    """SCRIPTED CONTENT for the promoted fraction: fresh proposals cycle through a CMC-like file, a 6-branch
    vote, the beta-squeezed CMC file, a 2-branch vote and a broken file; the model ignores the history. Each
    file ends with a comment naming ``tag`` and its number, so no session is served another's cached results."""
    count = [0]

    def reply(endpoint: str, body: dict) -> str:
        count[0] += 1
        n = count[0]
        cycle = [cmc_like(n), scripted.good(6), cmc_like(n, squeezed=True), scripted.good(2), scripted.BROKEN]
        return scripted.fenced(f"{cycle[(n - 1) % len(cycle)]}# {tag}, proposal {n}\n")

    return reply


def promoted_section(store: Store, rounds: int, shuffles: int, screen_shuffles: int) -> None:
    print(f"\n== Promoted fraction: {rounds} scripted rounds (SCRIPTED CONTENT, screen_policy), search "
          f"{SEARCH_SETS[-1]}, 11 betas, {shuffles} shuffles, screen {screen_shuffles} ==")
    for screen in (screen_shuffles, None):
        with scripted_server(screen_policy(f"screen {screen} {time.time_ns()}")) as server:
            config = SessionConfig(name=f"bench-promoted-{screen}-{time.time_ns()}", proposer="openai/scripted",
                                   api_base=server.base_url, search=SEARCH_SETS[-1:], shuffles=shuffles,
                                   screen_shuffles=screen, rounds=rounds, retries=0, critic=False)
            start_session(store, config)
        stats = lineage.stats(store, config.name)
        statuses = [v for (r, _), v in sorted(lineage.statuses(store, config.name).items()) if r > 0]
        evaluating = sum(r.seconds for r in sessions.list_rounds(store, config.name) if r.round > 0)
        rate = "-" if stats.promoted_rate is None else f"{100 * stats.promoted_rate:.0f}%"
        print(f"screening {'off' if screen is None else f'at {screen}'}: promoted {rate} of {stats.valid_rounds} "
              f"valid rounds ({', '.join(statuses)}); best curve score {stats.best_score:.2f}; rounds took "
              f"{evaluating:.1f} s in all (validation included)")


def fidelity_members(count: int, seed: int = 0) -> list[family.Params]:
    """``count`` random rising family members and ``count`` perturbations of CMC (each end within +-15 %)."""
    rng, cmc = random.Random(seed), family.preset("cmc")
    ranges = family.curve_ranges()
    rising = [{**{k: rng.uniform(*ranges[k]) for k in ranges}, **{f"{k}.p": rng.choice(family.SHAPES)
                                                                  for k in family.KNOBS}} for _ in range(count)]
    near = [{k: v * rng.uniform(0.85, 1.15) if not k.endswith(".p") else v for k, v in cmc.items()}
            for _ in range(count)]
    return rising + near


def fidelity_section(store: Store, screen_shuffles: int, full_shuffles: int, count: int) -> None:
    print(f"\n== Screen fidelity: {2 * count} family members vs CMC, curve score at {screen_shuffles} and "
          f"{full_shuffles} shuffles, 4 search datasets x 11 betas ==")
    datasets = [store.load_dataset(n) for n in SEARCH_SETS]

    def score(params: family.Params, shuffles: int) -> float:
        spans = objective.spans(store, datasets, BETAS, shuffles)
        sweeps = {ds.name: [(b, r.accuracy, r.avg_total_tokens) for b in BETAS
                            for r in [evaluate(ds, family.spec(params, b), shuffles=shuffles, store=store)]]
                  for ds in datasets}
        return objective.curve_score(sweeps, spans)

    cmc = family.preset("cmc")
    bars = {n: score(cmc, n) for n in (screen_shuffles, full_shuffles)}
    gaps = [(score(m, screen_shuffles) - bars[screen_shuffles], score(m, full_shuffles) - bars[full_shuffles])
            for m in fidelity_members(count)]
    error = sorted(abs(a - b) for a, b in gaps)
    print(f"CMC: {bars[screen_shuffles]:.2f} at {screen_shuffles}, {bars[full_shuffles]:.2f} at {full_shuffles}; "
          f"|gap at screen - gap at full| median {error[len(error) // 2]:.2f}, max {error[-1]:.2f} points")
    better = sum(full >= 0 for _, full in gaps)
    for margin in (0.0, 0.5, 1.0, 2.0):
        promoted = [(screen, full) for screen, full in gaps if screen >= -margin]
        missed = sum(full >= 0 and screen < -margin for screen, full in gaps)
        print(f"margin {margin:3.1f}: promoted {len(promoted):2d}/{len(gaps)}; members at least as good as CMC at "
              f"{full_shuffles} shuffles: {better}, of them screened out: {missed}")


def prompt_section(store: Store) -> None:
    import litellm

    print("\n== Prompt size per round (tokens, cl100k via litellm; budget 6000) ==")
    cmc = ControllerSpec.builtin("cmc")
    curve = []
    for beta in BETAS:
        row = {n: (r.accuracy, r.avg_total_tokens) for n in SEARCH_SETS
               for r in [evaluate(store.load_dataset(n), ControllerSpec.builtin("cmc", {"beta": beta}),
                                  shuffles=20, store=store)]}
        curve.append((beta, row))
    codes = [Path(__import__("inspect").getsourcefile(type(cmc.build()))).read_text(), PY_FILE.read_text(),
             (PROJECT_ROOT / "examples" / "controllers" / "sc_reference_style.py").read_text()]
    entries = [Entry(i, f"candidate {i}", code, curve, "question 3, beta 1: answered '17', correct '33'\n  open ...")
               for i, code in enumerate(codes)]

    def count(text: str) -> int:
        return litellm.token_counter(model="gpt-4o", messages=[{"role": "user", "content": text}])

    for rnd in range(1, 6):
        prompt = build_prompt(entries[: min(rnd, 3)], 6000, count)
        retry = build_prompt(entries[: min(rnd, 3)], 6000, count, retry=(codes[1], "line 3: SyntaxError"))
        print(f"round {rnd}: {len(prompt.seen)} candidates shown, {prompt.tokens:5d} tokens "
              f"(retry prompt {retry.tokens}){' OVER BUDGET' if prompt.over_budget else ''}")


def offline_section(store: Store, name: str, trials: int, shuffles: int, goal: str, gamma: float,
                    out: Path | None) -> None:
    print(f"\n== Offline session: {trials} trials, search = AIME24 x 4 models, 11 betas, {shuffles} shuffles, "
          f"objective {goal} ==")
    config = SessionConfig(name=name, proposer="offline", search=SEARCH_SETS, betas=BETAS, shuffles=shuffles,
                           rounds=trials, objective=goal, gamma=gamma)
    start = time.perf_counter()
    last = [start]

    def show(event) -> None:
        if event.kind == "round" and (event.round % 20 == 0 or event.round == trials):
            now = time.perf_counter()
            print(f"  {event.text}  [{(now - last[0]) / 20:.1f} s/trial]", flush=True)
            last[0] = now

    try:
        sessions.get_session(store, name)
        final = run_session(store, name, on_event=show, rounds=trials)
    except sessions.UnknownSession:
        final = start_session(store, config, on_event=show)
    wall = time.perf_counter() - start
    records = sessions.list_rounds(store, name)
    seed, best = next(r for r in records if r.round == 0), ranked(records)[0]
    print(f"{final.status}: {len(records) - 1} trials in {wall:.0f} s ({wall / max(1, len(records) - 1):.1f} s/trial)")
    print(f"search (mean of 4 x 11): seed CMC acc {seed.accuracy:.2f}% tokens {seed.tokens / 1000:.1f}k score "
          f"{seed.score:.2f} | best (trial {best.round}) acc {best.accuracy:.2f}% tokens {best.tokens / 1000:.1f}k "
          f"score {best.score:.2f}")
    params = sessions.get_candidate(store, name, best.round, best.attempt).params
    print("best member's beta-maps:\n  " + family.describe(params).replace("\n", "\n  "))
    table = heldout_table(store, params)
    print(f"\nheld-out (AIME25 + HMMT25 x 4 models = 8 datasets, {FULL_SHUFFLES} shuffles), mean per beta:")
    print(f"{'beta':>5} {'best acc%':>10} {'best ktok':>10} {'CMC acc%':>9} {'CMC ktok':>9}")
    for row in table:
        print(f"{row['beta']:5.1f} {row['best_acc']:10.2f} {row['best_tok'] / 1000:10.1f} {row['cmc_acc']:9.2f} "
              f"{row['cmc_tok'] / 1000:9.1f}")
    mean = {k: sum(r[k] for r in table) / len(table) for k in ("best_acc", "best_tok", "cmc_acc", "cmc_tok")}
    print(f" mean {mean['best_acc']:10.2f} {mean['best_tok'] / 1000:10.1f} {mean['cmc_acc']:9.2f} "
          f"{mean['cmc_tok'] / 1000:9.1f}")
    scores = heldout_curve_scores(store, table)
    lo, hi = table[0], table[-1]
    rising = hi["best_tok"] >= 1.1 * lo["best_tok"] and hi["best_acc"] > lo["best_acc"]
    print(f"held-out curve score (mean of the 8 datasets' curve scores): best {scores['best']:.2f}, "
          f"CMC {scores['cmc']:.2f}")
    print(f"best's held-out curve {'RISES' if rising else 'DOES NOT RISE'} with beta: "
          f"{lo['best_acc']:.2f}% at {lo['best_tok'] / 1000:.1f}k (beta 0) -> {hi['best_acc']:.2f}% at "
          f"{hi['best_tok'] / 1000:.1f}k (beta 1)")
    if out:
        search = [(e.round, e.dataset, e.beta, e.accuracy, e.tokens) for e in
                  sessions.list_evaluations(store, name, SEARCH)]
        out.write_text(json.dumps({"trials": [(r.round, r.accuracy, r.tokens, r.score) for r in records],
                                   "best_round": best.round, "params": params, "heldout": table,
                                   "search": search, "seconds": wall, "objective": goal,
                                   "heldout_curve_scores": scores}, indent=1))
        print(f"wrote {out}")


def heldout_curve_scores(store: Store, table: list[dict]) -> dict[str, float]:
    """The curve objective on the held-out sets (display only), from the per-dataset rows of ``table``."""
    datasets = [store.load_dataset(n) for n in HELDOUT_SETS]
    spans = objective.spans(store, datasets, BETAS, FULL_SHUFFLES)
    out = {}
    for key in ("best", "cmc"):
        sweeps = {n: [(row["beta"], row["per_dataset"][n][key][0], row["per_dataset"][n][key][1]) for row in table]
                  for n in HELDOUT_SETS}
        out[key] = objective.curve_score(sweeps, spans)
    return out


def heldout_table(store: Store, params: dict) -> list[dict]:
    rows = []
    for beta in BETAS:
        acc = {"best": [], "cmc": []}
        tok = {"best": [], "cmc": []}
        per_dataset: dict[str, dict[str, tuple[float, float]]] = {}
        for name in HELDOUT_SETS:
            ds = store.load_dataset(name)
            cmc = ControllerSpec.builtin("cmc", {"beta": beta})
            for key, spec in (("best", family.spec(params, beta)), ("cmc", cmc)):
                r = evaluate(ds, spec, shuffles=FULL_SHUFFLES, store=store)
                acc[key].append(r.accuracy)
                tok[key].append(r.avg_total_tokens)
                per_dataset.setdefault(name, {})[key] = (r.accuracy, r.avg_total_tokens)
        rows.append({"beta": beta, "best_acc": sum(acc["best"]) / 8, "best_tok": sum(tok["best"]) / 8,
                     "cmc_acc": sum(acc["cmc"]) / 8, "cmc_tok": sum(tok["cmc"]) / 8, "per_dataset": per_dataset})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="store to use (default: a fresh temporary one)")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--session", help="session name (default bench-offline-<shuffles>); resumed if it exists")
    parser.add_argument("--shuffles", type=int, default=20, help="shuffles per search evaluation")
    parser.add_argument("--objective", choices=objective.OBJECTIVES, default=objective.CURVE)
    parser.add_argument("--gamma", type=float, default=0.01, help="penalised objective: points per 1000 tokens")
    parser.add_argument("--sections", default="eval,prompt,offline")
    parser.add_argument("--eval-shuffles", type=int, default=FULL_SHUFFLES, help="shuffles in the timing section")
    parser.add_argument("--json", type=Path, help="write the offline session's figures here")
    parser.add_argument("--screen-shuffles", type=int, default=SessionConfig.screen_shuffles,
                        help="screen shuffles of the screen section")
    parser.add_argument("--screen-rounds", type=int, default=10, help="rounds of the promoted-fraction session")
    parser.add_argument("--fidelity-members", type=int, default=8, help="members of each kind, fidelity section")
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp(prefix="ttslab-bench-")) / "bench.duckdb"
    store = Store(db)
    if not store.has_dataset(SEARCH_SETS[0]):
        store.import_path(data_dir())
    sections = args.sections.split(",")
    if "eval" in sections:
        evaluation_section(store, args.eval_shuffles)
    if "prompt" in sections:
        prompt_section(store)
    if "screen" in sections:
        screen_section(store, args.screen_shuffles, args.eval_shuffles)
    if "promoted" in sections:
        promoted_section(store, args.screen_rounds, args.shuffles, max(1, args.shuffles // 4))
    if "fidelity" in sections:
        fidelity_section(store, args.screen_shuffles, args.eval_shuffles, args.fidelity_members)
    if "offline" in sections:
        name = args.session or f"bench-offline-{args.objective}-{args.shuffles}"
        offline_section(store, name, args.trials, args.shuffles, args.objective, args.gamma, args.json)


if __name__ == "__main__":
    main()
