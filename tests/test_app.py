"""The home page (app.py) through Streamlit's AppTest: first-run import, listing, evaluation, errors."""

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.controllers.loader import ControllerError
from engine.evaluate import ControllerSpec, evaluate
from engine.facts import dataset_facts
from engine.formats.autotts import load_autotts_file
from engine.paths import PROJECT_ROOT, data_dir

APP = str(PROJECT_ROOT / "app.py")
DATASET = "Qwen3-8B/aime24"
SHUFFLES = 20
WIDGETS = {"beta": "slider", "shuffles": "number_input"}  # widget kind by key; the rest are selectboxes


@pytest.fixture
def one_dataset(tmp_path, monkeypatch) -> Path:
    """A temp data dir holding one real AutoTTS file as <model>/<bench>.json, and a temp database."""
    source = data_dir() / f"{DATASET}.json"
    target = tmp_path / "data" / f"{DATASET}.json"
    target.parent.mkdir(parents=True)
    shutil.copy(source, target)
    monkeypatch.setenv("TTSLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TTSLAB_DB", str(tmp_path / "ttslab.duckdb"))
    return target


def run_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def evaluate_in_app(at: AppTest, controller: str, **inputs) -> dict[str, str]:
    """Set the evaluation widgets, rerun, and return the metrics by label."""
    at.selectbox(key="controller").select(controller).run()
    for key, value in inputs.items():
        getattr(at, WIDGETS.get(key, "selectbox"))(key=key).set_value(value)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return {m.label: m.value for m in at.metric}


def test_first_run_imports_the_data_dir_and_lists_its_facts(one_dataset):
    """An empty store is filled from TTSLAB_DATA on first run; the table shows the dataset's facts."""
    at = run_app()
    assert "Imported 1 dataset from" in at.success[0].value
    table = at.dataframe[0].value
    row = table.iloc[0]
    facts = dataset_facts(load_autotts_file(one_dataset, DATASET))
    assert list(table["dataset"]) == [DATASET]
    assert (row["questions"], row["branches"]) == (30, 30 * 128)
    assert row["pass@1 %"] == round(facts.pass_at_1, 1)
    assert row["majority of 128 %"] == round(facts.majority_all, 1)
    assert row["any of 128 correct %"] == round(facts.any_correct, 1)
    overview = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [t["name"] for t in overview["data"]] == ["pass@1", "majority of all", "any correct"]


def test_second_run_uses_the_store_without_importing_again(one_dataset):
    """Once imported, the page reads the store: no import message, same listing."""
    run_app()
    at = run_app()
    assert not at.success
    assert list(at.dataframe[0].value["dataset"]) == [DATASET]


def test_db_argument_overrides_ttslab_db(one_dataset, tmp_path, monkeypatch):
    """`streamlit run app.py -- --db FILE` uses FILE, as the CLI's --db does, not $TTSLAB_DB."""
    chosen = tmp_path / "chosen.duckdb"
    monkeypatch.setattr("sys.argv", ["app.py", "--db", str(chosen)])
    run_app()
    assert chosen.exists()
    assert not (tmp_path / "ttslab.duckdb").exists()


def test_beta_controller_accuracy_matches_engine_evaluate(one_dataset):
    """CMC at a chosen beta shows the same accuracy, tokens and plot as engine.evaluate for that config."""
    at = run_app()
    metrics = evaluate_in_app(at, "cmc", beta=0.3, shuffles=SHUFFLES, mode="compat")
    direct = evaluate(load_autotts_file(one_dataset, DATASET), ControllerSpec.builtin("cmc", {"beta": 0.3}),
                      shuffles=SHUFFLES)
    assert metrics["accuracy"] == f"{direct.accuracy:.2f}%"
    assert metrics["avg total tokens"] == f"{direct.avg_total_tokens:,.0f}"
    assert metrics["from cache"] == "no"
    per_question = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert per_question["layout"]["title"]["text"].startswith("cmc on Qwen3-8B/aime24: accuracy per question")
    assert per_question["data"][0]["y"] == direct.per_question_accuracy


def test_knob_table_is_the_schedule_at_the_chosen_beta(one_dataset):
    """The knob table lists schedule(beta) of the chosen controller, values as shown."""
    at = run_app()
    evaluate_in_app(at, "cmc", beta=0.8, shuffles=SHUFFLES)
    knobs = at.dataframe[1].value
    expected = ControllerSpec.builtin("cmc", {"beta": 0.8}).build().knobs
    assert dict(zip(knobs["knob"], knobs["value"], strict=True)) == {k: str(v) for k, v in expected.items()}


def test_budget_baseline_uses_the_budget_knob(one_dataset):
    """For SC the budget select sets k, and the accuracy is engine.evaluate's for {k: budget}."""
    at = run_app()
    metrics = evaluate_in_app(at, "sc", budget=8, shuffles=SHUFFLES)
    assert at.slider(key="beta").disabled
    knobs = at.dataframe[1].value
    assert dict(zip(knobs["knob"], knobs["value"], strict=True)) == {"k": "8"}
    direct = evaluate(load_autotts_file(one_dataset, DATASET), ControllerSpec.builtin("sc", {"k": 8}),
                      shuffles=SHUFFLES)
    assert metrics["accuracy"] == f"{direct.accuracy:.2f}%"


def test_repeated_evaluation_is_served_from_the_store(one_dataset):
    """The same config evaluated again in a new session comes from the result cache."""
    evaluate_in_app(run_app(), "cmc", beta=0.5, shuffles=SHUFFLES)
    again = evaluate_in_app(run_app(), "cmc", beta=0.5, shuffles=SHUFFLES)
    assert again["from cache"] == "yes"


def test_inputs_reach_the_engine_unchanged(one_dataset, monkeypatch):
    """Dataset, spec, shuffles, mode and the store are passed to engine.evaluate as chosen."""
    import engine.evaluate

    calls = []

    def spy(dataset, spec, **kwargs):
        calls.append((dataset.name, spec, kwargs))
        return real(dataset, spec, **kwargs)

    real = engine.evaluate.evaluate
    monkeypatch.setattr("engine.evaluate.evaluate", spy)
    evaluate_in_app(run_app(), "parallel_probe", budget=16, shuffles=SHUFFLES, mode="strict")
    name, spec, kwargs = calls[-1]
    assert (name, spec) == (DATASET, ControllerSpec.builtin("parallel_probe", {"num_chains": 16}))
    assert (kwargs["shuffles"], kwargs["mode"]) == (SHUFFLES, "strict")
    assert kwargs["store"] is not None and callable(kwargs["progress"])


def test_controller_error_is_shown_not_raised(one_dataset, monkeypatch):
    """A ControllerError from the engine becomes an st.error; the datasets table still renders."""
    def failing(*args, **kwargs):
        raise ControllerError("strict mode, question 3, shuffle 0: no branch left to open")

    monkeypatch.setattr("engine.evaluate.evaluate", failing)
    at = run_app()
    assert "no branch left to open" in at.error[0].value
    assert list(at.dataframe[0].value["dataset"]) == [DATASET]
    assert not at.metric


@pytest.mark.parametrize("layout", ["missing", "empty"])
def test_without_data_the_page_explains_how_to_import(tmp_path, monkeypatch, layout):
    """No data dir (or one without <model>/<bench>.json) shows the import command instead of crashing."""
    folder = tmp_path / "data"
    if layout == "empty":
        folder.mkdir()
    monkeypatch.setenv("TTSLAB_DATA", str(folder))
    monkeypatch.setenv("TTSLAB_DB", str(tmp_path / "ttslab.duckdb"))
    at = run_app()
    assert "python -m engine import PATH" in at.info[0].value
    assert str(folder) in at.info[0].value
    assert not at.error and not at.dataframe


def test_broken_data_file_is_reported_with_its_location(tmp_path, monkeypatch):
    """A malformed file in the data dir gives a one-line st.error naming the file, not a traceback."""
    bad = tmp_path / "data" / "M" / "bench.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"not": "a list"}')
    monkeypatch.setenv("TTSLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TTSLAB_DB", str(tmp_path / "ttslab.duckdb"))
    at = run_app()
    assert "FormatError" in at.error[0].value and str(bad) in at.error[0].value
