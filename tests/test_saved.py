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


def test_versions_number_each_family_in_saving_order(store):
    """Edits of one controller form a family v1, v2, v3 (a branch too); an unrelated save is its own family."""
    v1 = saved.save_controller(store, SOURCE, "A", "mine")
    v2 = saved.save_controller(store, SOURCE + "# 2\n", "A", "mine", parent=v1.id)
    v3 = saved.save_controller(store, SOURCE + "# 3\n", "A", "mine-branch", parent=v1.id)
    other = saved.save_controller(store, SOURCE.replace("None", "'7'"), "A", "other")
    numbered = {v.controller.id: (v.family, v.number) for v in saved.versions(store)}
    assert numbered == {v1.id: (v1.id, 1), v2.id: (v1.id, 2), v3.id: (v1.id, 3), other.id: (other.id, 1)}
    assert saved.versions(store)[0].family == other.id  # the family saved to most recently comes first


def test_a_deleted_parent_leaves_its_children_a_family_of_their_own(store):
    """Deleting v1 keeps v2 listed (as the first stored version of its line), never an error."""
    v1 = saved.save_controller(store, SOURCE, "A", "mine")
    v2 = saved.save_controller(store, SOURCE + "# 2\n", "A", "mine", parent=v1.id)
    saved.delete_controller(store, v1.id)
    [only] = saved.versions(store)
    assert (only.controller.id, only.family, only.number, only.controller.parent) == (v2.id, v2.id, 1, v1.id)


def test_diff_shows_the_changed_lines_between_two_versions(store):
    """The diff of two versions is a unified diff naming both ids; identical code gives ''."""
    v1 = saved.save_controller(store, SOURCE, "A", "mine")
    v2 = saved.save_controller(store, SOURCE.replace("return None", "return '7'"), "A", "mine", parent=v1.id)
    text = saved.diff(v1, v2)
    assert f"--- mine ({v1.id})" in text and f"+++ mine ({v2.id})" in text
    assert "-        return None\n" in text and "+        return '7'\n" in text
    assert saved.diff(v1, v1) == ""


def test_resolve_spec_takes_builtins_presets_saved_ids_and_names(store):
    """One resolver for every picker: built-in, preset, saved:<id> and a saved name (newest version)."""
    v1 = saved.save_controller(store, SOURCE, "A", "mine")
    assert saved.resolve_spec(store, "cmc", {"beta": 0.3}).config == {"beta": 0.3}
    assert saved.resolve_spec(store, "sc64").config == {"k": 64}
    by_id = saved.resolve_spec(store, f"saved:{v1.id}", {"beta": 0.5})
    assert (by_id.source, by_id.class_name, dict(by_id.config)) == (SOURCE, "A", {"beta": 0.5})
    assert not by_id.is_builtin
    assert saved.resolve_spec(store, "mine").source == SOURCE


def test_resolve_spec_unknown_names_list_what_exists(store):
    """A typo names the built-ins and presets and says how to list saved controllers; saved: never matches all."""
    with pytest.raises(saved.UnknownSavedController, match=r"unknown controller 'cmcc'.*sc64.*python -m engine saved"):
        saved.resolve_spec(store, "cmcc")
    saved.save_controller(store, SOURCE, "A", "mine")
    with pytest.raises(saved.UnknownSavedController, match="needs an id or a name"):
        saved.resolve_spec(store, "saved:")
