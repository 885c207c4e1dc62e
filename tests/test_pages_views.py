"""/frontier, /explorer, /episode and the home page's data panel through Streamlit's AppTest.

The store holds small synthetic datasets (two of them under Figure 3's dataset names), so every
page's logic runs on real engine results in seconds.
"""

import dataclasses
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import explore
from engine import frontier as fr
from engine.evaluate import ControllerSpec
from engine.paths import PROJECT_ROOT
from engine.saved import save_controller
from engine.simulate import Knobs, synthetic_dataset
from engine.store import Store
from engine.timeline import run_episode

APP = str(PROJECT_ROOT / "app.py")
SC_FILE = PROJECT_ROOT / "examples" / "controllers" / "sc_reference_style.py"
A, B = "synthetic/a", "synthetic/b"


@pytest.fixture
def store(tmp_path, monkeypatch) -> Store:
    """A temp store (TTSLAB_DB) with synthetic datasets a, b and two under Figure 3's names; no data dir."""
    monkeypatch.setenv("TTSLAB_DB", str(tmp_path / "pages.duckdb"))
    monkeypatch.setenv("TTSLAB_DATA", str(tmp_path / "no-data"))
    s = Store(tmp_path / "pages.duckdb")
    for seed, name in enumerate(["a", "b"]):
        s.import_dataset(synthetic_dataset(Knobs(questions=5, branches=16, seed=seed), name))
    for seed, name in enumerate(fr.FIGURE3_DATASETS[:2], 2):
        small = synthetic_dataset(Knobs(questions=4, branches=8, seed=seed))
        s.import_dataset(dataclasses.replace(small, name=name))
    return s


def open_page(page: str, **params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page(f"views/{page}.py")
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def chart(at: AppTest, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def test_frontier_link_draws_each_dataset_and_the_average(store):
    """datasets/controllers/axis/shuffles from the link: one panel each plus the average, log x, the
    chosen token axis; the summary table has a row per controller and panel."""
    at = open_page("frontier", datasets=f"{A},{B}", heldout=B, controllers="sc,cmc", axis="sequential", shuffles="4")
    assert not at.error and not at.warning
    fig = chart(at)
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert titles == [f"{A} (search)", f"{B} (held-out)", fr.AVERAGE]
    assert fig["layout"]["xaxis"]["type"] == "log" and "sequential" in fig["layout"]["xaxis"]["title"]["text"]
    summary = at.dataframe[0].value
    assert list(summary["controller"]) == ["sc", "cmc"] * 3
    run = fr.run_sweeps(store, [A, B], [fr.builtin_entry("sc"), fr.builtin_entry("cmc")], shuffles=4,
                        cached_only=True)
    assert run.complete  # the page evaluated and cached exactly these sweeps
    sc_line = next(t for t in fig["data"] if t.get("name") == "sc" and t.get("xaxis", "x") == "x")
    assert sc_line["y"] == [p.accuracy for p in sorted((p for p in run.points[A] if p.controller == "sc"),
                                                       key=lambda p: p.sequential_tokens)]
    assert (at.query_params["datasets"], at.query_params["controllers"]) == (f"{A},{B}", "sc,cmc")


def test_frontier_link_with_unknown_names_explains_and_carries_on(store):
    """An unknown dataset, controller or deleted saved controller is named in a warning, not a traceback."""
    at = open_page("frontier", datasets=f"{A},nope/x", controllers="sc,saved:0000dead,magic", shuffles="3")
    warnings = " ".join(w.value for w in at.warning)
    assert "'nope/x'" in warnings and "'saved:0000dead'" in warnings and "'magic'" in warnings
    assert [a["text"] for a in chart(at)["layout"]["annotations"]] == [f"{A} (search)"]
    only_unknown = open_page("frontier", datasets="nope/x", controllers="sc", shuffles="3")
    assert "showing the default instead" in only_unknown.warning[0].value
    assert only_unknown.multiselect(key="datasets").value == [sorted(i.name for i in store.list_datasets())[0]]


def test_figure3_preset_sets_the_held_out_panels_and_sweeps(store):
    """The Figure 3 button selects its held-out datasets (those stored), the five controllers, total tokens."""
    at = open_page("frontier", shuffles="3")
    next(b for b in at.button if b.label == "Paper Figure 3").click().run()
    assert not at.exception, [e.value for e in at.exception]
    stored = list(fr.FIGURE3_DATASETS[:2])
    assert at.multiselect(key="datasets").value == stored and at.multiselect(key="heldout").value == stored
    assert at.multiselect(key="controllers").value == list(fr.FIGURE3_CONTROLLERS)
    titles = [a["text"] for a in chart(at)["layout"]["annotations"]]
    assert titles == [f"{d} (held-out)" for d in stored] + [fr.AVERAGE]


def test_table1_view_lists_every_paper_row(store):
    """The Table 1 view shows all 72 rows with the paper's figures, ours where the dataset is stored."""
    at = open_page("frontier", view="table1")
    table = at.dataframe[0].value
    assert len(table) == 72 and list(table.columns[:5]) == ["model", "benchmark", "method", "paper acc %",
                                                            "ours acc %"]
    assert at.metric[0].value == "0 / 72"
    stored = (table["model"] + "/" + table["benchmark"]).isin(fr.FIGURE3_DATASETS[:2])
    assert table.loc[~stored, "note"].str.contains("not in the store").all()
    assert table.loc[stored, "ours acc %"].notna().all() and stored.sum() == 12


def test_explorer_link_shows_the_question_and_its_grid(store):
    """dataset and question from the link: gold answer, and the heatmap is probe_grid's data."""
    at = open_page("explorer", dataset=B, question="2")
    question = store.load_dataset(B).questions[2]
    assert at.metric[0].value == question.gold
    grid = explore.probe_grid(question)
    heat = chart(at)["data"][0]
    assert chart(at)["layout"]["yaxis"]["ticktext"] == [f"#{b}" for b in grid.branches]
    assert [[-1 if v is None else v for v in row] for row in heat["z"]] == [list(r) for r in grid.codes]
    warned = open_page("explorer", dataset="gone/x")
    assert "'gone/x'" in warned.warning[0].value and warned.metric


def test_episode_link_replays_the_episode_and_the_step_slider_rewinds(store):
    """controller, budget, question and seed from the link give run_episode's numbers; step 2 shows 2 actions."""
    at = open_page("episode", dataset=A, question="1", seed="3", controller="sc", budget="8")
    direct = run_episode(store.load_dataset(A), ControllerSpec.builtin("sc", {"k": 8}), 1, 3)
    values = {m.label: m.value for m in at.metric}
    assert values["final answer"] == str(direct.answer) and values["total tokens"] == f"{direct.total_tokens:,}"
    assert values["actions"] == str(len(direct.steps)) == "8"
    at.slider(key="step").set_value(2).run()
    assert len(at.dataframe[0].value) == 2
    assert "action 2 of 8" in chart(at)["layout"]["title"]["text"]
    next(b for b in at.button if b.label == "▶").click().run()
    assert at.slider(key="step").value == 3 and "action 3 of 8" in chart(at)["layout"]["title"]["text"]
    assert not at.warning, [w.value for w in at.warning]


def test_episode_runs_a_saved_controller_and_explains_a_deleted_one(store):
    """A saved controller replays sandboxed; a link to a deleted one gets a warning and the default."""
    code = save_controller(store, SC_FILE.read_text(), "SelfConsistency", "teacher sc")
    at = open_page("episode", dataset=A, controller=f"saved:{code.id}")
    assert not at.error, [e.value for e in at.error]
    assert {m.label: m.value for m in at.metric}["actions"] == "16"  # reads every branch (k defaults to 64)
    gone = open_page("episode", dataset=A, controller="saved:0000dead")
    assert "deleted saved controller" in gone.warning[0].value
    assert gone.selectbox(key="controller").value == "cmc"


def test_home_makes_a_synthetic_dataset_and_imports_a_folder(store, tmp_path):
    """The data panel's synthetic form stores a synthetic/ dataset; a bad folder is a one-line error."""
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.slider(key="sim_accuracy").set_value(0.3)
    at.number_input(key="sim_questions").set_value(3)
    at.number_input(key="sim_branches").set_value(4)
    at.text_input(key="sim_name").input("lesson")
    next(b for b in at.button if b.label == "Make the dataset").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "imported synthetic/lesson (3 questions, 12 branches)" in at.success[0].value
    assert "synthetic/lesson" in list(at.dataframe[0].value["dataset"])
    at.text_input(key="import_folder").input(str(tmp_path / "missing"))
    next(b for b in at.button if b.label == "Import folder").click().run()
    assert "Nothing was imported" in at.error[0].value
    folder = tmp_path / "folder" / "M"
    folder.mkdir(parents=True)
    Path(folder / "bench.json").write_text(json.dumps([{"question": "q", "gold_answer": "1", "probe_freq": 500,
                                                        "each_branch": [[["1"], 600, "1"]]}]))
    at.text_input(key="import_folder").input(str(folder.parent))
    next(b for b in at.button if b.label == "Import folder").click().run()
    assert "imported M/bench (1 questions, 1 branches)" in at.success[0].value
