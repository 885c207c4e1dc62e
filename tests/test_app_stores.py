"""The database picker through AppTest: switching stores per session, db= links, bad links, new stores."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from engine.dataset import Dataset
from engine.paths import PROJECT_ROOT
from engine.store import Store
from ui.stores import BadStoreName, store_path

APP = str(PROJECT_ROOT / "app.py")
PICKER = "store_picker_sidebar"


@pytest.fixture
def stores(tmp_path: Path, monkeypatch, tiny_dataset: Dataset) -> Path:
    """A stores folder: alpha (the server's store, holding m/tiny) and beta (holding m/other)."""
    folder = tmp_path / "stores"
    Store(folder / "alpha.duckdb").import_dataset(tiny_dataset)
    Store(folder / "beta.duckdb").import_dataset(Dataset("m/other", tiny_dataset.questions[:1], source="o.json"))
    (tmp_path / "no-data").mkdir()
    monkeypatch.setenv("TTSLAB_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("TTSLAB_DB", str(folder / "alpha.duckdb"))
    monkeypatch.delenv("TTSLAB_STORES", raising=False)
    return folder


def run(target) -> AppTest:
    """Run an AppTest (or the app of a widget just changed) and check it did not raise."""
    at = target.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown_datasets(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["dataset"]) if at.dataframe else []


def test_sidebar_picker_switches_the_store_of_this_session_only(stores: Path) -> None:
    """Picking beta shows beta's datasets and puts db=beta in the URL; another session stays on alpha."""
    at = run(AppTest.from_file(APP, default_timeout=60))
    assert shown_datasets(at) == ["m/tiny"]
    picker = at.sidebar.selectbox(key=PICKER)
    assert picker.options == ["alpha · 1 dataset", "beta · 1 dataset"]
    at = run(picker.select("beta"))
    assert shown_datasets(at) == ["m/other"]
    assert at.query_params["db"] == "beta"
    other = run(AppTest.from_file(APP, default_timeout=60))
    assert shown_datasets(other) == ["m/tiny"]


def test_link_with_db_reopens_that_store(stores: Path) -> None:
    """Opening the app with ?db=beta works on beta, and the picker says so."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["db"] = "beta"
    run(at)
    assert shown_datasets(at) == ["m/other"]
    assert at.sidebar.selectbox(key=PICKER).value == "beta"


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "..", "beta/../alpha", "nope", "a b",
                                 "%2e%2e%2fsecret"])
def test_bad_db_links_are_refused_with_a_message(stores: Path, bad: str) -> None:
    """db= that is a path, a parent reference or an unknown name is refused; the server's store is shown."""
    before = sorted(p.name for p in stores.parent.rglob("*"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["db"] = bad
    run(at)
    assert len(at.error) == 1 and "was not opened" in at.error[0].value
    assert shown_datasets(at) == ["m/tiny"]
    assert "db" not in at.query_params
    assert sorted(p.name for p in stores.parent.rglob("*")) == before  # nothing created anywhere


def test_store_path_accepts_plain_names_only(tmp_path: Path) -> None:
    """The one gate between a URL and a file: a plain existing name in the folder, with or without .duckdb."""
    (tmp_path / "ok.duckdb").write_bytes(b"")
    assert store_path("ok", tmp_path) == store_path("ok.duckdb", tmp_path) == tmp_path / "ok.duckdb"
    for bad in ("../ok", "sub/ok", "/tmp/ok", "ok\x00", ".hidden", "missing"):
        with pytest.raises(BadStoreName):
            store_path(bad, tmp_path)
    (tmp_path / "link.duckdb").symlink_to("/etc/hostname")
    with pytest.raises(BadStoreName, match="not a store name"):
        store_path("link", tmp_path)


def test_create_a_new_empty_store_and_open_it(stores: Path) -> None:
    """The home page's form creates gamma.duckdb, opens it (empty: no auto-import) and lists it."""
    at = run(AppTest.from_file(APP, default_timeout=60))
    at.text_input(key="new_store_name").input("gamma")
    at = run(_submit(at))
    assert (stores / "gamma.duckdb").is_file()
    assert shown_datasets(at) == []
    assert "holds no datasets yet" in at.info[0].value
    assert at.selectbox(key="store_picker_home").value == "gamma"
    assert at.success[0].value.startswith("Created the empty database gamma")


def test_create_refuses_a_path_or_an_existing_name(stores: Path) -> None:
    """'../evil' and 'beta' are refused with a message; no file appears outside or over the folder."""
    at = run(AppTest.from_file(APP, default_timeout=60))
    for bad, message in (("../evil", "not a store name"), ("beta", "exists already")):
        at.text_input(key="new_store_name").input(bad)
        at = run(_submit(at))
        assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert not (stores.parent / "evil.duckdb").exists()
    assert shown_datasets(at) == ["m/tiny"]


def test_listing_shows_every_file_and_why_one_cannot_open(stores: Path) -> None:
    """The home table lists each .duckdb with its datasets; a foreign file is listed with its problem, not picked."""
    con = duckdb.connect(str(stores / "sales.duckdb"))
    con.execute("CREATE TABLE orders (id INT)")
    con.close()
    at = run(AppTest.from_file(APP, default_timeout=60))
    table = at.table[0].value
    assert list(table.index) == ["alpha", "beta", "sales"]
    assert table.loc["beta", "names"] == "m/other"
    assert "not a TTS Lab store" in table.loc["sales", "names"]
    assert [o.split(" ·")[0] for o in at.sidebar.selectbox(key=PICKER).options] == ["alpha", "beta"]


def _submit(at: AppTest) -> AppTest:
    """Press the create form's submit button."""
    return next(b for b in at.button if b.label == "Create and open").click()
