"""The lab page (views/lab.py) through Streamlit's AppTest: links in, numbers out, saved controllers, errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import lab, saved
from engine.evaluate import ControllerSpec, evaluate
from engine.formats.autotts import load_autotts_file
from engine.paths import PROJECT_ROOT, data_dir
from engine.store import Store

PAGE = str(PROJECT_ROOT / "views" / "lab.py")
DATASET = "Qwen3-8B/aime24"
SHUFFLES = 10  # what most tests ask for in their link (the default, 100, is tested once)
SC_SOURCE = (PROJECT_ROOT / "examples" / "controllers" / "sc_reference_style.py").read_text()
RAISES = "class Bad(LLMDesignedMethod):\n    def solve(self, question):\n        x = 1\n        return {}['nope']\n"


@pytest.fixture(scope="module")
def seed_store(tmp_path_factory) -> Path:
    """One real dataset with the baselines' curves cached at the shuffle counts these tests use."""
    path = tmp_path_factory.mktemp("lab_page") / "seed.duckdb"
    store = Store(path)
    store.import_path(data_dir() / f"{DATASET}.json")
    for shuffles in (100, SHUFFLES):
        lab.baseline_curves(store, store.load_dataset(DATASET), shuffles=shuffles)
    return path


@pytest.fixture
def store(seed_store, tmp_path, monkeypatch) -> Store:
    """A private copy of the seeded store, used by the page through TTSLAB_DB."""
    path = Path(shutil.copy(seed_store, tmp_path / "lab.duckdb"))
    monkeypatch.setenv("TTSLAB_DB", str(path))
    return Store(path)


def open_page(**params: str) -> AppTest:
    """The page opened with ``params`` as its URL query string."""
    at = AppTest.from_file(PAGE, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def direct(spec: ControllerSpec, shuffles: int = 100):
    return evaluate(load_autotts_file(data_dir() / f"{DATASET}.json", DATASET), spec, shuffles=shuffles)


def test_default_view_is_cmc_at_beta_half_with_its_knobs(store):
    """No query string: CMC at beta 0.5 on the first dataset, the engine's figures and the knob table."""
    at = open_page()
    ref = direct(ControllerSpec.builtin("cmc", {"beta": 0.5}))
    assert metrics(at)["accuracy"] == f"{ref.accuracy:.2f}%"
    assert metrics(at)["avg total tokens"] == f"{ref.avg_total_tokens:,.0f}"
    knobs = at.dataframe[0].value
    assert dict(zip(knobs["knob"], knobs["value"], strict=True))["max_branch_use"] == "34"
    assert not at.warning and not at.error


def test_a_link_sets_controller_budget_and_shuffles(store):
    """?controller=sc&budget=8&shuffles=10 shows SC@8 over 10 shuffles, with its episode links."""
    at = open_page(dataset=DATASET, controller="sc", budget="8", shuffles=str(SHUFFLES))
    ref = direct(ControllerSpec.builtin("sc", {"k": 8}), shuffles=SHUFFLES)
    assert metrics(at)["accuracy"] == f"{ref.accuracy:.2f}%" and metrics(at)["shuffles"] == str(SHUFFLES)
    table = at.dataframe[1].value
    assert list(table["accuracy"]) == ref.per_question_accuracy
    dataset = DATASET.replace("/", "%2F")
    assert table["episode"][3] == f"/episode?dataset={dataset}&controller=sc&question=3&seed=0&budget=8"


def test_moving_beta_changes_the_result(store):
    """The beta slider re-runs the replay: beta 0.2 gives CMC's figures at 0.2."""
    at = open_page(shuffles=str(SHUFFLES))
    at.slider(key="beta").set_value(0.2).run()
    ref = direct(ControllerSpec.builtin("cmc", {"beta": 0.2}), shuffles=SHUFFLES)
    assert metrics(at)["accuracy"] == f"{ref.accuracy:.2f}%"
    assert metrics(at)["avg total tokens"] == f"{ref.avg_total_tokens:,.0f}"


def test_preset_fixes_its_knobs(store):
    """A preset disables beta and runs its reference settings."""
    at = open_page(controller="asc64", shuffles=str(SHUFFLES))
    assert at.slider(key="beta").disabled
    ref = direct(ControllerSpec.builtin("asc64"), shuffles=SHUFFLES)
    assert metrics(at)["accuracy"] == f"{ref.accuracy:.2f}%"


@pytest.mark.parametrize(("params", "says"), [
    ({"dataset": "Nope/none"}, "does not hold; showing Qwen3-8B/aime24"),
    ({"controller": "cmcc"}, "unknown controller **cmcc**"),
    ({"controller": "saved:0123456789abcdef"}, "is not saved here: it was deleted"),
])
def test_links_to_missing_things_explain_and_fall_back(store, params, says):
    """Unknown dataset, unknown controller, deleted saved controller: a friendly warning, the default view."""
    at = open_page(**params, shuffles=str(SHUFFLES))
    assert any(says in w.value for w in at.warning), [w.value for w in at.warning]
    assert "accuracy" in metrics(at) and not at.error


def test_a_saved_controller_link_runs_it_sandboxed(store):
    """?controller=saved:<id> runs that code in the sandbox (progressively) with the built-in's figures."""
    found = saved.save_controller(store, SC_SOURCE, "SelfConsistency", "my-sc", note="k from config")
    at = open_page(controller=f"saved:{found.id}", shuffles=str(SHUFFLES))
    ref = direct(ControllerSpec.builtin("sc", {"k": 64}), shuffles=SHUFFLES)
    assert metrics(at)["accuracy"] == f"{ref.accuracy:.2f}%" and metrics(at)["shuffles"] == str(SHUFFLES)
    assert any("my-sc v1" in c.value and "k from config" in c.value for c in at.caption)


def test_a_failing_controller_shows_its_line_and_the_page_carries_on(store):
    """A controller that raises: one error naming line 4 and the code excerpt; other widgets still work."""
    found = saved.save_controller(store, RAISES, "Bad", "bad")
    at = open_page(controller=f"saved:{found.id}", shuffles=str(SHUFFLES))
    # two sandbox workers share the shuffles: either may report first
    assert re.fullmatch(r"controller raised at question 0, shuffle \d — line 4 of your code", at.error[0].value)
    assert any(">    4 |         return {}['nope']" in c.value for c in at.code)
    at.selectbox(key="controller").select("sc").run()
    assert not at.error and "accuracy" in metrics(at)


def test_versions_are_listed_with_a_diff_between_them(store):
    """Two versions of one controller: the listing numbers them, the diff shows the changed line."""
    v1 = saved.save_controller(store, SC_SOURCE, "SelfConsistency", "my-sc")
    v2 = saved.save_controller(store, SC_SOURCE.replace('get("k", 64)', 'get("k", 4)'), "SelfConsistency", "my-sc",
                               parent=v1.id, note="cheaper")
    at = open_page(controller=f"saved:{v2.id}", shuffles=str(SHUFFLES))
    assert any('+        for _ in range(int(self.config.get("k", 4))):' in c.value for c in at.code)
    table = at.dataframe[-1].value
    assert list(table["version"]) == [1, 2] and list(table["note"]) == ["", "cheaper"]


def test_save_form_stores_the_code_and_switches_to_it(store):
    """New code saved from the form gets an id; the page then shows it as the picked saved controller."""
    at = open_page(controller="new", shuffles=str(SHUFFLES))
    at.text_input(key="lab_save_name").input("lead-margin")
    at.text_input(key="lab_save_note").input("the template")
    at.button[-1].click().run()  # the form's submit button
    assert not at.exception, [e.value for e in at.exception]
    [found] = saved.list_controllers(store)
    assert (found.name, found.note, found.class_name) == ("lead-margin", "the template", "LeadMargin")
    assert found.parent is None
    assert at.selectbox(key="controller").value == f"saved:{found.id}"


@pytest.mark.parametrize(("body", "says", "line"), [
    ("        return 42\n", "controller returned int at question 0", None),
    ("        return open({path!r}).read()\n", "controller raised at question 0", 3),
    ("        x = bytearray(1 << 34)\n", "memory limit (1024 MiB) exceeded at question 0", 3),
], ids=["garbage", "file", "memory"])
def test_each_kind_of_failure_is_one_clear_message(store, body, says, line):
    """Garbage answers, reading the store's own file, eating memory: one error, with the line where one applies."""
    source = "class Bad(LLMDesignedMethod):\n    def solve(self, question):\n" + body.format(path=str(store.path))
    found = saved.save_controller(store, source, "Bad", "bad")
    at = open_page(controller=f"saved:{found.id}", shuffles=str(SHUFFLES))
    [error] = at.error
    assert says in error.value
    assert error.value.endswith(f" — line {line} of your code") == (line is not None)


def test_draw_its_curve_sweeps_user_code_over_beta(store):
    """'Draw its curve' evaluates saved code at the sweep's betas (sandboxed) and draws them over the baselines."""
    found = saved.save_controller(store, lab.TEMPLATE, "LeadMargin", "lead-margin")
    at = open_page(controller=f"saved:{found.id}", shuffles=str(SHUFFLES))
    at.button(key="lab_sweep").click().run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    [own] = [t for t in spec["data"] if t["name"] == "lead-margin (sweep)"]
    ds = load_autotts_file(data_dir() / f"{DATASET}.json", DATASET)
    want = [evaluate(ds, lab.user_spec(lab.TEMPLATE, {"beta": b}), shuffles=SHUFFLES).accuracy for b in lab.SWEEP_BETAS]
    assert own["y"] == want
