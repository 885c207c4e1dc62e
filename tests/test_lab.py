"""engine.lab: the controller lab's logic, on the real data and the real sandbox (no Streamlit)."""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from engine import lab, saved
from engine.controllers import BUILTINS, PRESETS
from engine.evaluate import ControllerSpec, evaluate
from engine.formats.autotts import load_autotts_file
from engine.paths import PROJECT_ROOT, data_dir
from engine.sandbox import Limits, SandboxError
from engine.store import Store

DATASET = "Qwen3-8B/aime24"
SC_SOURCE = (PROJECT_ROOT / "examples" / "controllers" / "sc_reference_style.py").read_text()
LOOP = "class Loop(LLMDesignedMethod):\n    def solve(self, question):\n        while True:\n            pass\n"


@pytest.fixture(scope="module")
def dataset():
    return load_autotts_file(data_dir() / f"{DATASET}.json", DATASET)


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "lab.duckdb")


def test_progressive_plan_is_a_quick_estimate_then_the_full_count():
    """A few shuffles first, then the requested count; a small request is one stage."""
    assert lab.progressive_plan(100) == [lab.FIRST_ESTIMATE_SHUFFLES, 100]
    assert lab.progressive_plan(lab.FIRST_ESTIMATE_SHUFFLES) == [lab.FIRST_ESTIMATE_SHUFFLES]
    assert lab.progressive_plan(2) == [2]


def test_progressive_yields_an_estimate_then_the_sandboxed_full_result(dataset, store):
    """User code: 5 shuffles, then the full count, each equal to a direct evaluation; progress is
    monotone to 100%; once cached, only the full result comes back (at once)."""
    spec = lab.user_spec(SC_SOURCE, {"beta": 0.5})
    seen: list[tuple[int, int]] = []
    results = list(lab.progressive(dataset, spec, shuffles=12, store=store,
                                   progress=lambda d, t, _: seen.append((d, t))))
    assert [r.shuffles for r in results] == [5, 12]
    for r in results:
        direct = evaluate(dataset, ControllerSpec.builtin("sc", {"k": 64}), shuffles=r.shuffles)
        assert (r.accuracy, r.avg_total_tokens) == (direct.accuracy, direct.avg_total_tokens)
    shares = [d / t for d, t in seen]
    assert shares == sorted(shares) and shares[-1] == 1.0
    again = list(lab.progressive(dataset, spec, shuffles=12, store=store))
    assert [(r.shuffles, r.cached) for r in again] == [(12, True)]


def test_a_cancel_event_stops_a_looping_controller(dataset):
    """Setting cancel (the page's Stop) ends a sandboxed loop long before the episode limit."""
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    with pytest.raises(SandboxError) as caught:
        list(lab.progressive(dataset, lab.user_spec(LOOP, {}), shuffles=5, cancel=cancel,
                             limits=Limits(episode_seconds=60)))
    assert caught.value.kind == "cancelled"


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_source_runs_unmodified_as_user_code(dataset, name):
    """'Start from a built-in': its module source, sandboxed, gives the compiled built-in's figures."""
    mine = evaluate(dataset, lab.user_spec(lab.builtin_source(name), {"beta": 0.5}), shuffles=2)
    ref = evaluate(dataset, ControllerSpec.builtin(name, {"beta": 0.5}), shuffles=2)
    assert (mine.accuracy, mine.avg_total_tokens, mine.avg_sequential_tokens) == (
        ref.accuracy, ref.avg_total_tokens, ref.avg_sequential_tokens)


def test_the_template_is_a_working_controller_whose_beta_trades_tokens(dataset):
    """The 'new' template runs sandboxed; a higher beta spends more tokens for no less accuracy here."""
    low, high = (evaluate(dataset, lab.user_spec(lab.TEMPLATE, {"beta": b}), shuffles=3) for b in (0.0, 1.0))
    assert low.avg_total_tokens < high.avg_total_tokens
    assert lab.class_name(lab.TEMPLATE) == "LeadMargin"
    assert set(lab.starters()) == {"template", *BUILTINS}


def test_class_name_is_read_without_running_the_code():
    """The controller class comes from the syntax tree: helpers are skipped, ambiguity and syntax errors are told."""
    source = "import os\nos.system('x')\nclass _H:\n    pass\nclass A(LLMDesignedMethod):\n    pass\n"
    assert lab.class_name(source) == "A"
    assert lab.class_name("class Plain:\n    def solve(self, q):\n        return None\n") == "Plain"
    assert lab.class_name(lab.builtin_source("cmc")) == "CMC"
    with pytest.raises(ValueError, match="candidates: A, B"):
        lab.class_name("class A(LLMDesignedMethod):\n    pass\nclass B(LLMDesignedMethod):\n    pass\n")
    with pytest.raises(ValueError, match="line 2: SyntaxError"):
        lab.class_name("class A:\n    def f(self)\n")


def test_lab_config_follows_the_kind_of_controller():
    """Baselines take their budget knob, beta-controllers and user code take beta, presets stay fixed."""
    assert lab.lab_config("sc", 0.3, 8) == {"k": 8}
    assert lab.lab_config("parallel_probe", 0.3, 16) == {"num_chains": 16}
    assert lab.lab_config("cmc", 0.3, 8) == {"beta": 0.3}
    assert lab.lab_config("cmc_beta0.5", 0.3, 8) == {}
    assert lab.lab_config("saved:abc", 0.7, 8) == lab.lab_config(lab.NEW, 0.7, 8) == {"beta": 0.7}


def test_controller_refs_and_labels(store):
    """The picker lists built-ins, presets, saved ids and 'new'; saved ones are labelled by name and version."""
    v1 = saved.save_controller(store, SC_SOURCE, "SelfConsistency", "my-sc")
    versions = saved.versions(store)
    refs = lab.controller_refs(versions)
    assert refs == [*sorted(BUILTINS), *PRESETS, f"saved:{v1.id}", lab.NEW]
    assert lab.ref_label(f"saved:{v1.id}", versions) == f"saved: my-sc v1 ({v1.id[:8]})"
    assert lab.ref_label("sc64", versions) == "sc64 (sc: k=64)"
    assert [lab.kind_of(r) for r in ("sc", "sc64", f"saved:{v1.id}", lab.NEW)] == ["builtin", "preset", "saved", "new"]


def test_episode_links_carry_the_page_keys():
    """A row's link opens /episode with dataset, controller, question, seed and beta or budget (ids only)."""
    url = lab.episode_link(DATASET, "sc", 3, 7, {"k": 8}, "strict")
    parts = urlsplit(url)
    assert parts.path == "/episode"
    assert parse_qs(parts.query) == {"dataset": [DATASET], "controller": ["sc"], "question": ["3"], "seed": ["7"],
                                     "budget": ["8"], "mode": ["strict"]}
    assert parse_qs(urlsplit(lab.episode_link(DATASET, "saved:ab12", 0, 0, {"beta": 0.5})).query) == {
        "dataset": [DATASET], "controller": ["saved:ab12"], "question": ["0"], "seed": ["0"], "beta": ["0.5"]}


def test_question_rows_hold_accuracy_tokens_gold_and_links(dataset):
    """One row per question, from the result; no link for code that has no id."""
    result = evaluate(dataset, ControllerSpec.builtin("cmc", {"beta": 0.5}), shuffles=4)
    rows = lab.question_rows(dataset, result, controller="cmc", seed=2)
    assert len(rows) == len(dataset.questions) == 30
    assert [r.accuracy for r in rows] == result.per_question_accuracy
    assert rows[0].gold == str(dataset.questions[0].gold) and rows[0].avg_tokens == result.per_question_tokens[0]
    assert rows[5].episode == lab.episode_link(DATASET, "cmc", 5, 2, {"beta": 0.5})
    assert all(r.episode is None for r in lab.question_rows(dataset, result, controller=None))


def test_error_line_finds_the_users_innermost_frame():
    """Tracebacks and syntax errors point at the line of the user's file, not the engine's."""
    tb = ('controller raised at question 0, shuffle 0:\n  File "controller.py", line 9, in solve\n    x()\n'
          '  File "controller.py", line 4, in x\n    raise E\n  File "engine/x.py", line 80, in y\nE')
    assert lab.error_line(tb) == 4
    assert lab.error_line("controller.py:2: SyntaxError: expected ':'") == 2
    assert lab.error_line('File "other.py", line 3') is None
    assert lab.error_line("evaluation cancelled after 3/150 episodes") is None


def test_excerpt_numbers_and_marks_the_line():
    """The code around an error, numbered, the failing line marked with '>'."""
    text = lab.excerpt("a\nb\nc\nd\ne\nf\n", 3, context=1)
    assert text.splitlines() == ["     2 | b", ">    3 | c", "     4 | d"]


def test_baseline_curves_are_the_builtins_sweeps(dataset, store):
    """SC/ASC/ESC/Parallel-Probe over budgets 1..64 and CMC over 11 betas, equal to direct evaluations."""
    curves = lab.baseline_curves(store, dataset, shuffles=3)
    assert {k: len(v) for k, v in curves.items()} == {"sc": 6, "asc": 6, "esc": 6, "parallel_probe": 6, "cmc": 11}
    direct = evaluate(dataset, ControllerSpec.builtin("esc", {"max_samples": 16}), shuffles=3)
    assert (curves["esc"][3].accuracy, curves["esc"][3].avg_total_tokens) == (direct.accuracy, direct.avg_total_tokens)
    assert lab.baseline_curves(None, dataset, shuffles=3) is curves  # kept in memory by content and setting
    lab._CURVES.clear()
    assert all(r.cached for r in lab.baseline_curves(store, dataset, shuffles=3)["cmc"])  # then from the store


def test_cached_points_never_run_user_code(dataset, store):
    """A user curve shows only the betas already evaluated, in sweep order."""
    spec = lab.user_spec(SC_SOURCE, {"beta": 0.5})
    specs = lab.own_sweep(spec)
    assert [s.config["beta"] for s in specs] == list(lab.SWEEP_BETAS)
    assert lab.cached_points(store, dataset, specs, 2, "compat") == []
    evaluate(dataset, specs[4], shuffles=2, store=store)
    evaluate(dataset, specs[1], shuffles=2, store=store)
    assert [r.config["beta"] for r in lab.cached_points(store, dataset, specs, 2, "compat")] == [0.25, 1.0]
    assert len(lab.own_sweep(ControllerSpec.builtin("sc", {"k": 8}))) == 6


def test_knob_table_comes_from_the_schedule():
    """The knob table is the built-in's schedule at beta, explicit knobs winning."""
    assert lab.knob_table(ControllerSpec.builtin("sc", {"k": 8})) == [("k", "8")]
    table = dict(lab.knob_table(ControllerSpec.builtin("cmc", {"beta": 0.5})))
    assert table["n_init"] == "5" and table["max_branch_use"] == "34"
