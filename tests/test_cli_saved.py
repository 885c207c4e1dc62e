"""`python -m engine saved` and `eval/sweep --controller saved:<id>|name`, as real subprocesses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_runner import cli

from engine import saved
from engine.paths import PROJECT_ROOT
from engine.store import Store

SC_FILE = PROJECT_ROOT / "examples" / "controllers" / "sc_reference_style.py"


@pytest.fixture(scope="module")
def db(real_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the real store with two versions of a saved SC controller."""
    path = Path(shutil.copy(real_store_path, tmp_path_factory.mktemp("cli_saved") / "real.duckdb"))
    store = Store(path)
    source = SC_FILE.read_text()
    v1 = saved.save_controller(store, source, "SelfConsistency", "my-sc", note="the example")
    saved.save_controller(store, source.replace('get("k", 64)', 'get("k", 8)'), "SelfConsistency", "my-sc",
                          note="cheaper", parent=v1.id)
    return path


def versions(db: Path) -> list[dict]:
    done = cli("saved", "--json", db=db)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_saved_lists_each_version_with_its_family_and_parent(db: Path) -> None:
    """The listing shows both versions of my-sc, v2 pointing at v1, in text and JSON."""
    listed = versions(db)
    assert [(v["name"], v["version"]) for v in listed] == [("my-sc", 1), ("my-sc", 2)]
    assert listed[1]["parent"] == listed[0]["id"] and listed[0]["family"] == listed[1]["family"]
    text = cli("saved", db=db).stdout
    assert f"saved:{listed[1]['id']}  v2  my-sc  from {listed[0]['id'][:8]}" in text and "cheaper" in text


def test_saved_diff_and_show(db: Path) -> None:
    """--diff prints the changed line between the versions; --show prints the source."""
    v1, v2 = (v["ref"] for v in versions(db))
    diff = cli("saved", "--diff", v1, v2, db=db).stdout
    assert '-        for _ in range(int(self.config.get("k", 64))):' in diff
    assert '+        for _ in range(int(self.config.get("k", 8))):' in diff
    assert cli("saved", "--show", v1, db=db).stdout == SC_FILE.read_text()


def test_eval_runs_a_saved_controller_by_id_and_by_name(db: Path) -> None:
    """saved:<id> runs that version (sandboxed) with SC@64's figures; the name runs the newest (SC@8)."""
    v1 = versions(db)[0]["ref"]
    args = ("eval", "--dataset", "Qwen3-8B/aime24", "--shuffles", "5", "--json")
    by_id = json.loads(cli(*args, "--controller", v1, db=db).stdout)
    sc64 = json.loads(cli(*args, "--controller", "sc", "--set", "k=64", db=db).stdout)
    assert (by_id["accuracy"], by_id["avg_total_tokens"]) == (sc64["accuracy"], sc64["avg_total_tokens"])
    by_name = json.loads(cli(*args, "--controller", "my-sc", db=db).stdout)
    sc8 = json.loads(cli(*args, "--controller", "sc", "--set", "k=8", db=db).stdout)
    assert (by_name["accuracy"], by_name["avg_total_tokens"]) == (sc8["accuracy"], sc8["avg_total_tokens"])


def test_sweep_of_a_saved_controller_goes_over_beta(db: Path) -> None:
    """A saved controller's default sweep is the beta grid; --budgets is refused with one line."""
    done = cli("sweep", "--dataset", "Qwen3-8B/aime24", "--controller", "my-sc", "--betas", "0:1:0.5",
               "--shuffles", "2", "--json", db=db)
    assert done.returncode == 0, done.stderr
    assert [r["config"] for r in json.loads(done.stdout)] == [{"beta": 0.0}, {"beta": 0.5}, {"beta": 1.0}]
    refused = cli("sweep", "--dataset", "Qwen3-8B/aime24", "--controller", "my-sc", "--budgets", "1,2", db=db)
    assert refused.returncode == 2 and "--budgets needs a handcrafted baseline" in refused.stderr


def test_unknown_saved_controller_is_one_line(db: Path) -> None:
    """A deleted or mistyped saved:<id> exits 2 with one line naming the listing command."""
    done = cli("eval", "--dataset", "Qwen3-8B/aime24", "--controller", "saved:feedbeef", db=db)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "no saved controller 'feedbeef'" in done.stderr and "python -m engine saved" in done.stderr
