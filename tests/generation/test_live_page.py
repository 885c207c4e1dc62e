"""The /live page through Streamlit's AppTest, against a real local HTTP server whose content is scripted
(tests/generation/scripted_model.py): collect a dataset, run a controller live, see the gap; bad input is
one error line."""

from __future__ import annotations

import pytest
import scripted_model as sm
from streamlit.testing.v1 import AppTest

from engine.evaluate import ControllerSpec
from engine.generation import records
from engine.generation.collect import collect
from engine.paths import PROJECT_ROOT
from engine.store import Store

PAGE = str(PROJECT_ROOT / "views" / "live.py")


@pytest.fixture
def page_store(tmp_path, monkeypatch, backend) -> Store:
    """The page's store (TTSLAB_DB) holding a small scripted collection to take questions from."""
    monkeypatch.setenv("TTSLAB_DB", str(tmp_path / "page.duckdb"))
    store = Store(tmp_path / "page.duckdb")
    collect(store, "s/source", backend, questions=sm.QUESTIONS, settings=sm.settings(branches=2))
    return store


def _page(server) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=240).run()
    at.text_input(key="model").set_value("scripted")
    at.text_input(key="server").set_value(server.base_url)
    at.selectbox(key="fmt").set_value("chatml")
    at.number_input(key="max_tokens").set_value(sm.MAX_TOKENS)
    return at.run()


def test_collect_then_run_live(page_store: Store, server) -> None:
    """Collecting from a stored dataset's questions stores a complete dataset; a live run then shows the gap
    metrics and figure and is stored."""
    at = _page(server)
    at.radio(key="source").set_value("From a stored dataset")
    at.selectbox(key="from_dataset").set_value("s/source")
    at.text_input(key="new_name").set_value("s/page")
    at.number_input(key="branches").set_value(2)
    at.number_input(key="interval").set_value(sm.INTERVAL)
    at.button(key="collect_submit").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "s/page: 4 branches" in at.success[0].value
    assert records.get_run(page_store, "s/page").status == "complete"
    at.selectbox(key="dataset").set_value("s/page")
    at.selectbox(key="controller").set_value("sc")
    at.text_input(key="knobs").set_value('{"k": 2}')
    at.number_input(key="k").set_value(1)
    at.number_input(key="pool").set_value(2)
    at.number_input(key="shuffles").set_value(5)
    at.button(key="live_submit").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    labels = {m.label for m in at.metric}
    assert {"Live accuracy", "Live tokens / question", "Wall clock"} <= labels
    run = records.list_live_runs(page_store, "s/page")[0]
    assert run["controller"] == ControllerSpec.builtin("sc").name and run["questions"] == [0]


def test_bad_input_is_one_error_line(page_store: Store, server) -> None:
    """A missing dataset name or an unknown model is one st.error line; the page keeps serving."""
    at = _page(server)
    at.radio(key="source").set_value("From a stored dataset")
    at.selectbox(key="from_dataset").set_value("s/source")
    at.button(key="collect_submit").click().run()
    assert not at.exception and "give the new dataset a name" in at.error[0].value
    at.text_input(key="model").set_value("nope")
    at.text_input(key="new_name").set_value("s/x")
    at.button(key="collect_submit").click().run()
    assert not at.exception and "not served by" in at.error[0].value
    assert records.get_run(page_store, "s/x") is None
