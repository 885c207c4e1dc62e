"""Does the critic step help? python benchmarks/discovery_critic.py [--rounds 4] [--servers scripted,smollm2]

Runs the same discovery session twice, critic on and critic off, against each local proposer, and
prints per session: valid-answer rate, retries, critic requests and revisions, valid rounds, the
best search curve score, spend and wall time (``engine.discovery.lineage.stats``, the figures the
/discovery page's "Compare sessions" tab shows).

- scripted: ``tests.servers.scripted_server`` with SCRIPTED CONTENT and a fixed, stated policy
  (``scripted_policy``): every third proposal is a broken file, the others vote controllers of
  varying strength; the critic rewrites a weak controller (fewer than 4 base branches) into base + 3
  and approves the others.
  What this measures is the critic's cost (extra requests, time) and that its revisions flow into
  selection; its "help" here is what the script says, by construction.
- smollm2: SmolLM2-135M behind llama.cpp's server (``tests.servers.llama_server``): a real, tiny model
  whose answers are mostly invalid. The same temperature and seed-free sampling both times.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.discovery import SessionConfig, lineage, start_session
from engine.paths import data_dir
from engine.store import Store
from tests.discovery import scripted
from tests.servers import llama_server, scripted_server

SEARCH = ("Qwen3-8B/aime24",)
BETAS = (0.0, 0.5, 1.0)
BASES = (1, 6, 2, 5, 3, 7)  # the scripted proposer's vote controllers, in turn
WEAK = 4


def scripted_policy() -> Callable[[str, dict], str]:
    """A fresh scripted model (module docstring): its n-th fresh proposal is broken when n % 3 == 1, else a
    vote over BASES[n] base branches; a retry gets the next base; the critic revises weak votes only."""
    proposals = [0]

    def reply(endpoint: str, body: dict) -> str:
        text = body["messages"][0]["content"]
        n = proposals[0]
        if "## Candidate under review" in text:
            review = text.split("## Candidate under review", 1)[1]
            base = next((b for b in range(1, 20) if f"range({b} + round(10 * beta))" in review), None)
            return scripted.fenced(scripted.good(base + 3)) if base is not None and base < WEAK else "APPROVE"
        if "failed validation" in text:
            return scripted.fenced(scripted.good(BASES[n % len(BASES)]))
        proposals[0] += 1
        return scripted.fenced(scripted.BROKEN if n % 3 == 1 else scripted.good(BASES[n % len(BASES)]))

    return reply


def run_session(store: Store, label: str, base_url: str, rounds: int, critic: bool,
                **extra: object) -> lineage.Stats:
    name = f"{label}-critic-{'on' if critic else 'off'}"
    config = SessionConfig(name=name, proposer=f"openai/{label}", api_base=base_url, search=SEARCH, betas=BETAS,
                           shuffles=4, rounds=rounds, retries=1, critic=critic, **extra)
    final = start_session(store, config)
    print(f"  {name}: {final.status} ({final.message})", flush=True)
    return lineage.stats(store, name)


def show(rows: list[lineage.Stats]) -> None:
    print("best = best search curve score (the seed CMC included); new = best proposed candidate's")
    print(f"{'session':24} {'valid%':>7} {'retries':>7} {'critic':>6} {'revised':>7} {'valid rnds':>10} "
          f"{'best':>7} {'new':>7} {'$':>7} {'seconds':>8}")
    for s in rows:
        rate = "-" if s.valid_rate is None else f"{100 * s.valid_rate:.0f}"
        best, new = ("-" if v is None else f"{v:.2f}" for v in (s.best_score, s.best_new_score))
        print(f"{s.name:24} {rate:>7} {s.retries:>7} {s.critic_calls:>6} {s.critic_revisions:>7} "
              f"{s.valid_rounds:>4}/{s.rounds:<5} {best:>7} {new:>7} {s.spent_usd:7.4f} {s.seconds:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--servers", default="scripted,smollm2")
    parser.add_argument("--max-tokens", type=int, default=400, help="SmolLM2 completion tokens per request")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ttslab-critic-"))
    store = Store(tmp / "critic.duckdb")
    store.import_path(data_dir())
    rows: list[lineage.Stats] = []
    try:
        if "scripted" in args.servers:
            print("scripted server (SCRIPTED CONTENT):", flush=True)
            for critic in (True, False):
                with scripted_server(scripted_policy()) as server:
                    rows.append(run_session(store, "scripted", server.base_url, args.rounds, critic))
        if "smollm2" in args.servers:
            print("SmolLM2-135M (llama.cpp server):", flush=True)
            with llama_server(n_ctx=8192) as base_url:
                rows += [run_session(store, "smollm2", base_url, args.rounds, critic, prompt_budget=3000,
                                     max_tokens=args.max_tokens, temperature=0.2) for critic in (True, False)]
        print()
        show(rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
