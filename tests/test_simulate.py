"""Synthetic teaching datasets: reproducible, labelled, and each knob moves what it says it moves."""

import json
from pathlib import Path

import numpy as np
import pytest
from cli_runner import cli

from engine.facts import dataset_facts
from engine.formats.autotts import load_autotts_file
from engine.simulate import Knobs, default_name, synthetic_dataset
from engine.store import Store

SMALL = Knobs(questions=40, branches=64)


def test_same_knobs_and_seed_give_the_same_dataset():
    """Seeded: equal knobs -> equal content hash; another seed -> other content."""
    assert synthetic_dataset(SMALL).content_hash == synthetic_dataset(SMALL).content_hash
    other = Knobs(**{**SMALL.__dict__, "seed": 1})
    assert synthetic_dataset(other).content_hash != synthetic_dataset(SMALL).content_hash


def test_name_and_text_say_synthetic():
    """Names live under synthetic/ (prefix added to a given name); texts say they are made up."""
    ds = synthetic_dataset(SMALL)
    assert ds.name == default_name(SMALL) == "synthetic/acc60-div4-conv50-spread50-s0"
    assert synthetic_dataset(SMALL, "class1").name == "synthetic/class1"
    assert synthetic_dataset(SMALL, "synthetic/class1").name == "synthetic/class1"
    assert all("Synthetic question" in q.text for q in ds.questions)
    with pytest.raises(ValueError, match="without '/'"):
        synthetic_dataset(SMALL, "a/b")


def test_shape_follows_the_autotts_rules():
    """Counts as asked, one probe per interval, last probe equal to the final answer."""
    ds = synthetic_dataset(SMALL)
    assert ds.n_questions == 40 and all(len(q.branches) == 64 for q in ds.questions)
    for q in ds.questions:
        for b in q.branches:
            assert len(b.probes) == b.tokens // q.probe_freq
            assert not b.probes or b.probes[-1] == b.final


@pytest.mark.parametrize("accuracy", [0.2, 0.8])
def test_accuracy_knob_sets_pass_at_1(accuracy):
    """pass@1 lands near the asked accuracy (40 questions x 64 branches)."""
    facts = dataset_facts(synthetic_dataset(Knobs(accuracy=accuracy, questions=40, branches=64)))
    assert abs(facts.pass_at_1 - 100 * accuracy) < 10


def test_diversity_knob_bounds_the_wrong_answers():
    """With diversity d there are at most d distinct wrong final answers per question."""
    for d in (1, 5):
        ds = synthetic_dataset(Knobs(diversity=d, accuracy=0.3, questions=10))
        for q in ds.questions:
            wrong = {b.final for b in q.branches if b.final != q.gold}
            assert 1 <= len(wrong) <= d


def test_convergence_knob_moves_when_probes_settle():
    """convergence=1: every probe is the final answer; lower convergence: fewer probes agree with it."""
    def early_agreement(c):
        ds = synthetic_dataset(Knobs(convergence=c, questions=10))
        return np.mean([a == b.final for q in ds.questions for b in q.branches for a in b.probes])

    assert early_agreement(1.0) == 1.0
    assert early_agreement(0.0) < early_agreement(0.5) < 1.0


def test_length_spread_knob():
    """Spread 0 gives equal lengths; a larger spread a wider distribution."""
    def spread(s):
        return np.std([b.tokens for q in synthetic_dataset(Knobs(length_spread=s, questions=10)).questions
                       for b in q.branches])

    assert spread(0.0) == 0 and spread(1.0) > spread(0.3) > 0


def test_bad_knob_is_named():
    """An out-of-range knob is a one-line error naming it and its range."""
    with pytest.raises(ValueError, match=r"accuracy must be in \[0, 1\], got 1.5"):
        synthetic_dataset(Knobs(accuracy=1.5))


def test_cli_simulate_imports_and_writes_the_file(tmp_path: Path):
    """`python -m engine simulate` stores the dataset and writes an AutoTTS file that loads back equal."""
    db, out = tmp_path / "t.duckdb", tmp_path / "sim.json"
    done = cli("simulate", "--accuracy", "0.5", "--questions", "5", "--branches", "8", "--name", "demo",
               "-o", out, db=db)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "imported synthetic/demo (5 questions, 40 branches; synthetic)"
    stored = Store(db).load_dataset("synthetic/demo")
    assert load_autotts_file(out, "synthetic/demo").content_hash == stored.content_hash
    assert json.loads(out.read_text())[0]["question"].startswith("Synthetic question 1")
    again = cli("simulate", "--accuracy", "0.5", "--questions", "5", "--branches", "8", "--name", "demo", db=db)
    assert again.stdout.startswith("unchanged synthetic/demo")
    bad = cli("simulate", "--diversity", "0", db=db)
    assert (bad.returncode, bad.stderr.strip()) == (2, "error: synthetic dataset: diversity must be in [1, 50], got 0")
