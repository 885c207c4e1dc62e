"""What /frontier evaluates: sweep entries, cached and cancellable sweeps, Table 1 against the paper."""

import shutil
import threading
from pathlib import Path

import pytest

from engine import frontier as fr
from engine import pareto
from engine.controllers import BETAS, BUDGETS
from engine.evaluate import ControllerSpec, evaluate, result_key
from engine.pareto import AVERAGE
from engine.paths import PROJECT_ROOT
from engine.saved import UnknownSavedController, save_controller
from engine.simulate import Knobs, synthetic_dataset
from engine.store import Store

SHUFFLES = 5
SC_FILE = PROJECT_ROOT / "examples" / "controllers" / "sc_reference_style.py"


@pytest.fixture
def store(tmp_path) -> Store:
    """A temp store with two small synthetic datasets."""
    s = Store(tmp_path / "f.duckdb")
    for seed in (0, 1):
        s.import_dataset(synthetic_dataset(Knobs(questions=6, branches=16, seed=seed), f"s{seed}"))
    return s


def test_builtin_entries_are_the_default_sweeps():
    """Budget baselines sweep their budget knob, CMC sweeps beta; unknown names list the built-ins."""
    sc = fr.builtin_entry("sc")
    assert sc.shown == tuple({"k": k} for k in BUDGETS) and sc.trusted
    assert fr.builtin_entry("cmc").shown == tuple({"beta": b} for b in BETAS)
    with pytest.raises(KeyError, match="built-ins: asc, cmc"):
        fr.builtin_entry("sc64")


def test_run_sweeps_gives_the_evaluations_points_and_caches_them(store):
    """Each point carries evaluate()'s numbers; afterwards the cache alone holds the whole run."""
    entries = [fr.builtin_entry("sc"), fr.builtin_entry("cmc")]
    empty = fr.run_sweeps(store, ["synthetic/s0"], entries, shuffles=SHUFFLES, cached_only=True)
    assert (empty.complete, empty.missing, empty.all_points()) == (False, 17, [])
    seen = []
    run = fr.run_sweeps(store, ["synthetic/s0", "synthetic/s1"], entries, shuffles=SHUFFLES,
                        progress=lambda done, total, label: seen.append((done, total)))
    assert run.complete and len(run.points["synthetic/s1"]) == 17
    assert seen[-1] == (34, 34) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    point = next(p for p in run.points["synthetic/s1"] if p.controller == "cmc" and p.config == {"beta": 0.3})
    direct = evaluate(store.load_dataset("synthetic/s1"), ControllerSpec.builtin("cmc", {"beta": 0.3}),
                      shuffles=SHUFFLES)
    assert (point.accuracy, point.total_tokens, point.sequential_tokens) == (
        direct.accuracy, direct.avg_total_tokens, direct.avg_sequential_tokens)
    again = fr.run_sweeps(store, ["synthetic/s0", "synthetic/s1"], entries, shuffles=SHUFFLES, cached_only=True)
    assert again.complete and again.all_points() == run.all_points()


def test_cancel_stops_between_chunks_keeping_what_was_done(store):
    """A set cancel event stops the sweep with Cancelled; finished chunks stay in the store."""
    cancel = threading.Event()
    entries = [fr.builtin_entry("sc"), fr.builtin_entry("esc")]

    def stop_after_first_chunk(done, total, label):
        if done >= 6:
            cancel.set()

    with pytest.raises(fr.Cancelled, match="stopped after 6 of 24"):
        fr.run_sweeps(store, ["synthetic/s0", "synthetic/s1"], entries, shuffles=SHUFFLES, cancel=cancel,
                      progress=stop_after_first_chunk)
    kept = fr.run_sweeps(store, ["synthetic/s0"], entries, shuffles=SHUFFLES, cached_only=True)
    assert (len(kept.points["synthetic/s0"]), kept.missing) == (6, 6)


def test_saved_controller_sweeps_beta_in_the_sandbox(store):
    """A saved controller is swept over beta, sandboxed, labelled with its name; a deleted one is an error."""
    code = save_controller(store, SC_FILE.read_text(), "SelfConsistency", "my sc")
    entry = fr.saved_entry(store, f"saved:{code.id}", betas=(0.0, 1.0))
    assert (entry.ref, entry.label, entry.trusted) == (f"saved:{code.id}", f"my sc ({code.id[:8]})", False)
    run = fr.run_sweeps(store, ["synthetic/s0"], [entry], shuffles=2)
    sc64 = evaluate(store.load_dataset("synthetic/s0"), ControllerSpec.builtin("sc", {"k": 64}), shuffles=2)
    assert [p.accuracy for p in run.points["synthetic/s0"]] == [sc64.accuracy] * 2
    with pytest.raises(UnknownSavedController):
        fr.entry_for(store, "saved:0000dead")


def test_panels_mark_held_out_and_add_the_average(store):
    """One panel per dataset titled search/held-out, plus the average when there are several."""
    run = fr.run_sweeps(store, ["synthetic/s0", "synthetic/s1"], [fr.builtin_entry("sc")], shuffles=SHUFFLES)
    panels = fr.panels(run, heldout=["synthetic/s1"])
    assert list(panels) == ["synthetic/s0 (search)", "synthetic/s1 (held-out)", AVERAGE]
    assert len(panels[AVERAGE]) == 6
    rows = fr.summary_rows(panels, "sc | k=64")
    assert [r["panel"] for r in rows] == list(panels)
    first = panels["synthetic/s0 (search)"]
    base = next(p for p in first if p.config == {"k": 64})
    assert rows[0]["tokens at sc | k=64 accuracy"] == fr.matched_text(pareto.matched_tokens(first, base), base)
    assert rows[0]["tokens at sc | k=64 accuracy"].endswith(")") and "%" in rows[0]["tokens at sc | k=64 accuracy"]


def test_comparing_runs_shows_only_what_differs(store):
    """Settings rows hold the full knob table; differing() keeps varying keys; dimensions are numeric."""
    entry = fr.builtin_entry("cmc")
    run = fr.run_sweeps(store, ["synthetic/s0"], [entry], shuffles=SHUFFLES)
    rows = fr.run_rows(entry, run.all_points())
    assert len(rows) == 11 and rows[5]["n_init"] == ControllerSpec.builtin("cmc", {"beta": 0.5}).build().knobs["n_init"]
    assert "controller" not in fr.differing(rows) and "beta" in fr.differing(rows)
    assert fr.differing([{"a": 1, "b": 2}, {"a": 1, "b": 3}, {"a": 1}]) == ["b"]
    dims = fr.numeric_dimensions(rows)
    assert dims[0] == "beta" and dims[-3:] == list(fr.OUTCOMES) and "dataset" not in dims


def test_table1_matches_the_paper_except_the_documented_row(real_store_path, tmp_path):
    """All 72 cells equal the paper's after its rounding, except Qwen3-1.7B Parallel-Probe (flagged)."""
    store = Store(shutil.copy(real_store_path, tmp_path / "real.duckdb"))
    rows = fr.table1(store, fr.read_paper_table())
    assert len(rows) == 72
    mismatched = {(r.model, r.method) for r in rows if not r.matches}
    assert mismatched == {("Qwen3-1.7B", "parallel_probe")}
    flagged = [r for r in rows if r.note]
    assert {(r.model, r.method) for r in flagged} == mismatched and "not reproducible" in flagged[0].note
    asc_4b = next(r for r in rows if (r.model, r.benchmark, r.method) == ("Qwen3-4B", "aime24", "asc"))
    assert (asc_4b.ours_accuracy, asc_4b.ours_tokens_k) == (80.1, 175.7)


def test_table1_without_the_datasets_says_so(store):
    """Rows whose dataset is not stored keep the paper's figures and say the dataset is missing."""
    rows = fr.table1(store, fr.read_paper_table()[:2])
    assert all(r.ours_accuracy is None and "not in the store" in r.note and not r.matches for r in rows)
    with pytest.raises(FileNotFoundError, match="paper's Table 1 is not at"):
        fr.read_paper_table(Path("/nonexistent/paper.csv"))


def test_live_runs_of_the_chosen_datasets_become_overlay_points_on_their_panels(store):
    """A stored live run appears as a point series on its dataset's panel (and on no other)."""
    from engine.generation.records import save_live_run
    run = {"id": "r1", "dataset": "synthetic/t", "controller": "sc", "config": {"k": 4}, "backend": {"kind": "openai"},
           "settings": {}, "questions": [0, 1], "accuracy": 50.0, "avg_tokens": 1234.0, "seconds": 1.0}
    episode = {"q_idx": 0, "answer": "1", "correct": True, "total_tokens": 1234, "sequential_tokens": 1234,
               "actions": [0], "seconds": 0.5, "model_seconds": 0.4}
    save_live_run(store, run, [episode])
    live = fr.live_points(store, ["synthetic/t", "other/x"], heldout=["synthetic/t"])
    assert list(live) == [fr.panel_title("synthetic/t", ["synthetic/t"])]
    (series,) = live[fr.panel_title("synthetic/t", ["synthetic/t"])]
    assert (series.name, list(series.tokens), list(series.accuracy)) == ("sc (live)", [1234.0], [50.0])


def test_table1_cancel_stops_between_datasets_keeping_what_was_done(store):
    """A set cancel event stops Table 1 before the next dataset (Cancelled); the rows done are stored."""
    import dataclasses

    paper = fr.read_paper_table()
    names = list(dict.fromkeys(f"{r['model']}/{r['benchmark']}" for r in paper))[:2]
    for seed, name in enumerate(names):
        store.import_dataset(dataclasses.replace(synthetic_dataset(Knobs(questions=4, branches=8, seed=seed)),
                                                 name=name))
    cancel = threading.Event()
    first = [r for r in paper if f"{r['model']}/{r['benchmark']}" == names[0]]
    with pytest.raises(fr.Cancelled, match=f"Table 1 stopped after {len(first)} of {len(paper)} rows"):
        fr.table1(store, paper, cancel=cancel, progress=lambda done, total, label: cancel.set())
    done = fr.table1(store, first)  # from the cache now
    assert all(r.ours_accuracy is not None for r in done)
    spec = fr.table1_spec(first[0]["model"], first[0]["method"])
    assert store.get_result(result_key(store.load_dataset(names[0]), spec, 100, "compat")) is not None
