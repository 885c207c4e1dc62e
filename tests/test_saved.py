"""Saved controllers: content-hash ids, idempotent saves, versions with parents, lookup by id/name."""

import pytest

from engine import saved
from engine.store import Store

SOURCE = "class A(LLMDesignedMethod):\n    def solve(self, q):\n        return None\n"


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "s.duckdb")


def test_same_code_saved_twice_keeps_one_row_and_its_first_name(store):
    first = saved.save_controller(store, SOURCE, "A", "first")
    again = saved.save_controller(store, SOURCE, "A", "renamed")
    assert again.id == first.id and again.name == "first"
    assert [c.id for c in saved.list_controllers(store)] == [first.id]


def test_an_edit_is_a_new_version_pointing_at_its_parent(store):
    v1 = saved.save_controller(store, SOURCE, "A", "mine")
    v2 = saved.save_controller(store, SOURCE + "# tweak\n", "A", "mine", parent=v1.id, origin={"round": 2})
    assert v2.id != v1.id and v2.parent == v1.id and v2.origin == {"round": 2}
    assert saved.get_controller(store, "mine").id == v2.id  # a name means its newest version
    assert saved.get_controller(store, f"saved:{v1.id}").id == v1.id


def test_unknown_reference_is_a_clear_lookup_error(store):
    with pytest.raises(saved.UnknownSavedController, match="no saved controller 'nope'"):
        saved.get_controller(store, "saved:nope")
