"""Synthetic teaching datasets: made-up trajectories with knobs a teacher can turn.

Real AutoTTS data shows *that* a controller wins; a synthetic set shows *why*, because its causes
are knobs: how often branches end on the right answer, how many wrong answers compete, how early
a branch's probes settle on its final answer, and how much branch lengths vary. Everything is drawn
from one seeded generator, so the same knobs and seed give the same dataset (and content hash).
Names always start with ``synthetic/`` and question texts say they are synthetic.

The generative story, per question: a difficulty ``p ~ Beta`` with mean ``accuracy``; per branch,
its final answer is the gold one with probability ``p``, else one of ``diversity`` wrong answers
(Zipf weights: a few popular mistakes, as in real data); its length is log-normal around
``mean_tokens`` with log-sd ``length_spread``; it has ``tokens // probe_freq`` probes, the last equal
to the final answer (as in the AutoTTS files). Before the branch *settles* its probes are "No"
(no answer yet) or guesses among the candidate answers; from the settling step on they are its
final answer. It settles after a fraction ``(1 - convergence) * U(0.3, 1)`` of its probes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from engine.dataset import Branch, Dataset, Question
from engine.formats.autotts import content_hash

PREFIX = "synthetic/"
PLACEHOLDER_SHARE = 0.35  # of unsettled probes that say "No" (no answer yet), the rest guess
DIFFICULTY_CONCENTRATION = 4.0  # Beta(a, b) with a + b = this: questions range from easy to hard


@dataclass(frozen=True)
class Knobs:
    """What a teacher turns; the defaults look like a mid-sized model on a competition benchmark."""

    accuracy: float = 0.6  # mean share of branches ending on the gold answer (0..1)
    diversity: int = 4  # distinct wrong answers competing with the gold one (1..50)
    convergence: float = 0.5  # 1: probes give the final answer from the first one; 0: only near the end
    length_spread: float = 0.5  # log-sd of branch lengths (0: all equal, 1.5: very uneven)
    questions: int = 30
    branches: int = 64
    mean_tokens: int = 12_000
    probe_freq: int = 500
    seed: int = 0

    def check(self) -> None:
        """Raise ValueError naming the first knob out of range."""
        ranges = {"accuracy": (0, 1), "diversity": (1, 50), "convergence": (0, 1), "length_spread": (0, 1.5),
                  "questions": (1, 1000), "branches": (1, 512), "mean_tokens": (100, 200_000),
                  "probe_freq": (10, 10_000), "seed": (0, 2**32 - 1)}
        for knob, (lo, hi) in ranges.items():
            value = getattr(self, knob)
            if not lo <= value <= hi:
                raise ValueError(f"synthetic dataset: {knob} must be in [{lo}, {hi}], got {value}")


def default_name(knobs: Knobs) -> str:
    """A name that says what the knobs were, e.g. ``synthetic/acc60-div4-conv50-spread50-s0``."""
    return (f"{PREFIX}acc{round(100 * knobs.accuracy)}-div{knobs.diversity}-conv{round(100 * knobs.convergence)}"
            f"-spread{round(100 * knobs.length_spread)}-s{knobs.seed}")


def synthetic_name(name: str | None, knobs: Knobs) -> str:
    """``name`` under ``synthetic/`` (added if missing), or the default name."""
    if not name:
        return default_name(knobs)
    name = name.strip().removeprefix(PREFIX)
    if not name or "/" in name:
        raise ValueError(f"synthetic dataset name must be one non-empty part without '/', got {name!r}")
    return PREFIX + name


def synthetic_dataset(knobs: Knobs = Knobs(), name: str | None = None) -> Dataset:
    """A reproducible synthetic dataset (same knobs and seed -> same content hash)."""
    knobs.check()
    rng = np.random.default_rng(knobs.seed)
    questions = tuple(_question(rng, knobs, i) for i in range(knobs.questions))
    dataset = Dataset(name=synthetic_name(name, knobs), questions=questions, source="synthetic")
    return dataclasses.replace(dataset, content_hash=content_hash(dataset))


def _question(rng: np.random.Generator, k: Knobs, index: int) -> Question:
    gold, wrong = _answers(rng, k.diversity)
    mean = min(max(k.accuracy, 1e-3), 1 - 1e-3)
    p = rng.beta(mean * DIFFICULTY_CONCENTRATION, (1 - mean) * DIFFICULTY_CONCENTRATION)
    weights = 1 / np.arange(1, len(wrong) + 1)
    weights /= weights.sum()
    branches = []
    for _ in range(k.branches):
        final = gold if rng.random() < p else wrong[rng.choice(len(wrong), p=weights)]
        tokens = int(max(k.probe_freq // 2, k.mean_tokens * np.exp(k.length_spread * rng.standard_normal()
                                                                    - k.length_spread**2 / 2)))
        branches.append(Branch(probes=_probes(rng, k, tokens, final, [gold, *wrong]), tokens=tokens, final=final))
    text = f"Synthetic question {index + 1} (seed {k.seed}): made-up trajectories for teaching, no real problem."
    return Question(text=text, gold=gold, probe_freq=k.probe_freq, branches=tuple(branches),
                    final_answers_trace=tuple(b.final for b in branches))


def _answers(rng: np.random.Generator, diversity: int) -> tuple[str, list[str]]:
    """A gold answer and ``diversity`` distinct wrong ones, all integers as text (like AIME)."""
    drawn = rng.choice(1000, size=diversity + 1, replace=False)
    return str(drawn[0]), [str(a) for a in drawn[1:]]


def _probes(rng: np.random.Generator, k: Knobs, tokens: int, final: str, candidates: list[str]) -> tuple[str, ...]:
    n = tokens // k.probe_freq
    if n == 0:
        return ()
    settle = int(n * (1 - k.convergence) * rng.uniform(0.3, 1.0))
    early = [("No" if rng.random() < PLACEHOLDER_SHARE else candidates[rng.integers(len(candidates))])
             for _ in range(min(settle, n - 1))]
    return (*early, *([final] * (n - len(early))))
