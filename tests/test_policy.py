"""engine.policy: a read-only server refuses every write with one clear line, keeps each visitor's
results to that visitor, and a shared server never reads a path a visitor chose."""

import shutil
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from engine import policy, saved
from engine.evaluate import ControllerSpec, evaluate
from engine.formats.autotts import load_autotts_file
from engine.paths import PROJECT_ROOT, data_dir
from engine.store import Store

DATASET = "Qwen3-8B/aime24"
SOURCE = "class Mine(LLMDesignedMethod):\n    def solve(self, question):\n        return None\n"
SHUFFLES = 5


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    """A real store holding one real dataset and one saved controller."""
    store = Store(tmp_path / "shared.duckdb")
    store.import_path(data_dir() / f"{DATASET}.json")
    saved.save_controller(store, SOURCE, "Mine", "mine")
    return store.path


@pytest.fixture
def read_only(monkeypatch) -> None:
    monkeypatch.setenv(policy.READ_ONLY_ENV, "1")


def rows(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("datasets", "questions", "results", "traces", "saved_controllers")}
    finally:
        con.close()


@pytest.mark.parametrize(("action", "write"), [
    ("importing datasets", lambda s: s.import_path(data_dir() / "Qwen3-4B/aime24.json")),
    ("importing datasets", lambda s: s.import_dataset(load_autotts_file(data_dir() / "Qwen3-4B/aime24.json"))),
    ("deleting datasets", lambda s: s.delete_dataset(DATASET)),
    ("saving or deleting controllers", lambda s: saved.save_controller(s, SOURCE + "# v2\n", "Mine", "mine v2")),
    ("saving or deleting controllers", lambda s: saved.delete_controller(s, saved.list_controllers(s)[0].id)),
])
def test_each_write_is_refused_with_a_clear_line_and_nothing_changes(store_file, read_only, action, write):
    """Import, delete, save and overwrite are refused by the visitor's view; the file is unchanged."""
    before = rows(store_file)
    view = policy.visitor_store(Store(store_file))
    with pytest.raises(policy.ReadOnlyError, match=f"{action}.* is turned off: this TTS Lab server is read-only"):
        write(view)
    assert rows(store_file) == before


def test_reads_still_work_in_a_read_only_view(store_file, read_only):
    """Listing and loading datasets and saved controllers go to the shared file as usual."""
    view = policy.visitor_store(Store(store_file))
    assert [i.name for i in view.list_datasets()] == [DATASET]
    assert view.load_dataset(DATASET).name == DATASET
    assert saved.get_controller(view, "mine").class_name == "Mine"


def test_results_stay_in_the_visitor_s_own_view(store_file, read_only):
    """An evaluation is cached for the visitor who ran it, invisible to another visitor and to the file."""
    before = rows(store_file)
    alice, bob = (policy.visitor_store(Store(store_file)) for _ in range(2))
    dataset, spec = alice.load_dataset(DATASET), ControllerSpec.builtin("cmc", {"beta": 0.3})
    first = evaluate(dataset, spec, shuffles=SHUFFLES, store=alice)
    again = evaluate(dataset, spec, shuffles=SHUFFLES, store=alice)
    other = evaluate(dataset, spec, shuffles=SHUFFLES, store=bob)
    assert (first.cached, again.cached, other.cached) == (False, True, False)
    assert again.accuracy == first.accuracy == other.accuracy
    assert rows(store_file) == before


def test_traces_stay_in_the_visitor_s_own_view(store_file, read_only):
    """Stored traces of an evaluation are readable in the same view only."""
    view = policy.visitor_store(Store(store_file))
    result = evaluate(view.load_dataset(DATASET), ControllerSpec.builtin("sc", {"k": 4}), shuffles=2,
                      store=view, traces=True)
    assert len(view.get_traces(result.key)) == 2 * 30
    assert view.get_traces(result.key, q_idx=3, seed=1)[0][:2] == (3, 1)
    assert Store(store_file).get_traces(result.key) == []


def test_a_writable_server_gives_the_store_itself(store_file, monkeypatch):
    """Without TTSLAB_READ_ONLY the visitor's store is the shared store."""
    monkeypatch.delenv(policy.READ_ONLY_ENV, raising=False)
    store = Store(store_file)
    assert policy.visitor_store(store) is store
    policy.require_writable("saving a controller")


def test_a_shared_server_refuses_server_paths(monkeypatch):
    """Choosing a folder on the server is for the operator: refused when shared, allowed in private."""
    monkeypatch.setenv(policy.SHARE_ENV, "1")
    with pytest.raises(policy.PolicyError, match="importing a folder is turned off on a shared server"):
        policy.require_private("importing a folder")
    monkeypatch.delenv(policy.SHARE_ENV)
    policy.require_private("importing a folder")


def test_home_page_on_an_empty_read_only_server_explains_instead_of_importing(tmp_path, monkeypatch, read_only):
    """The first-run import is a write: refused with the read-only line, and the store stays empty."""
    folder = tmp_path / "data" / "Qwen3-8B"
    folder.mkdir(parents=True)
    shutil.copy(data_dir() / f"{DATASET}.json", folder)
    monkeypatch.setenv("TTSLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TTSLAB_DB", str(tmp_path / "empty.duckdb"))
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120).run()
    assert "importing datasets is turned off" in at.error[0].value
    assert rows(tmp_path / "empty.duckdb")["datasets"] == 0


def test_home_page_evaluations_of_one_visitor_do_not_reach_another(store_file, monkeypatch, read_only):
    """Two sessions of a read-only app: each evaluates; neither sees the other's cached result."""
    monkeypatch.setenv("TTSLAB_DB", str(store_file))
    for _ in range(2):
        at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120).run()
        at.number_input(key="shuffles").set_value(SHUFFLES).run()
        assert not at.error, [e.value for e in at.error]
        assert {m.label: m.value for m in at.metric}["from cache"] == "no"
    assert rows(store_file)["results"] == 0
