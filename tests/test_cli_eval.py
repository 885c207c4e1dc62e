"""`python -m engine eval|sweep` run as real subprocesses on a store holding the real data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_runner import cli

from engine.paths import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "examples" / "controllers" / "cmc_reference_style.py"
JSON_KEYS = {"accuracy", "avg_total_tokens", "avg_sequential_tokens", "ci95", "seconds"}


@pytest.fixture(scope="module")
def db(real_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the real store, shared by this module's tests."""
    return Path(shutil.copy(real_store_path, tmp_path_factory.mktemp("cli_eval") / "real.duckdb"))


def test_eval_builtin_json_gives_the_reference_figure(db: Path) -> None:
    """CMC beta 0.5 on Qwen3-8B/aime24 prints the paper's 84.3 % / 255.3k as one JSON object."""
    done = cli("eval", "--dataset", "Qwen3-8B/aime24", "--controller", "cmc", "--beta", "0.5", "--json", db=db)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert JSON_KEYS <= set(out)
    assert (out["accuracy"], int(out["avg_total_tokens"])) == (84.27, 255293)
    assert out["ci95"][0] <= out["accuracy"] <= out["ci95"][1]


def test_repeated_eval_comes_from_the_cache(db: Path) -> None:
    """The second identical evaluation is served from DuckDB, with the same figures."""
    args = ("eval", "--dataset", "Qwen3-4B/aime25", "--controller", "asc64", "--json")
    first, second = (json.loads(cli(*args, db=db).stdout) for _ in range(2))
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["accuracy"] == second["accuracy"] == 76.6  # paper: 76.6 with 64 samples


def test_set_overrides_a_knob_and_text_output_lists_the_metrics(db: Path) -> None:
    """--set max_samples=40 reproduces the paper's Qwen3-4B ASC row; text output names each metric."""
    done = cli("eval", "--dataset", "Qwen3-4B/aime24", "--controller", "asc", "--set", "max_samples=40", db=db)
    assert done.returncode == 0, done.stderr
    assert "accuracy              80.07 %" in done.stdout
    for label in ("avg total tokens", "avg sequential tokens", "95% CI", "seconds"):
        assert label in done.stdout


def test_reference_format_file_runs_with_beta(db: Path) -> None:
    """A reference-format file, constructed as Class(config={'beta': B}), gives the built-in's figures."""
    done = cli("eval", "--dataset", "Qwen3-8B/aime24", "--controller-file", EXAMPLE, "--beta", "0.5",
               "--shuffles", "10", "--json", "--trusted", db=db)
    builtin = cli("eval", "--dataset", "Qwen3-8B/aime24", "--controller", "cmc", "--beta", "0.5",
                  "--shuffles", "10", "--json", db=db)
    assert done.returncode == 0, done.stderr
    mine, ref = json.loads(done.stdout), json.loads(builtin.stdout)
    assert (mine["accuracy"], mine["avg_total_tokens"]) == (ref["accuracy"], ref["avg_total_tokens"])


@pytest.mark.parametrize("judge", ["strict", "sampled"])
def test_a_sandboxed_file_gives_the_builtin_figures_under_either_judge(db: Path, judge: str) -> None:
    """--judge picks the sandbox's judge for a controller file; 20 shuffles (600 episodes, more than the
    audit's 300) run sampled when asked, and either judge gives the built-in's figures; a judge that does
    not exist is a usage error."""
    args = ("eval", "--dataset", "Qwen3-8B/aime24", "--controller-file", EXAMPLE, "--beta", "0.5",
            "--shuffles", "20", "--json", "--no-cache")
    done = cli(*args, "--judge", judge, db=db)
    builtin = cli("eval", "--dataset", "Qwen3-8B/aime24", "--controller", "cmc", "--beta", "0.5",
                  "--shuffles", "20", "--json", db=db)
    assert done.returncode == 0, done.stderr
    mine, ref = json.loads(done.stdout), json.loads(builtin.stdout)
    assert (mine["accuracy"], mine["avg_total_tokens"]) == (ref["accuracy"], ref["avg_total_tokens"])
    wrong = cli(*args, "--judge", "lenient", db=db)
    assert wrong.returncode == 2 and "invalid choice: 'lenient'" in wrong.stderr


def test_failing_controller_file_points_at_its_line(db: Path, tmp_path: Path) -> None:
    """A controller that raises: exit 2, the user's file and line, no engine stack dump."""
    bad = tmp_path / "bad.py"
    bad.write_text("class Bad(LLMDesignedMethod):\n    def solve(self, q):\n        return {}['x']\n")
    done = cli("eval", "--dataset", "Qwen3-8B/aime24", "--controller-file", bad, "--shuffles", "1",
               "--trusted", db=db)
    assert done.returncode == 2
    assert f'{bad}", line 3' in done.stderr and "KeyError" in done.stderr
    assert "engine/" not in done.stderr and "Traceback" not in done.stderr


def test_unknown_dataset_and_controller_are_one_line_errors(db: Path) -> None:
    """Mistyped names exit 2 with one line that lists what exists."""
    done = cli("eval", "--dataset", "Qwen3-8B/aime99", "--controller", "sc", db=db)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Qwen3-8B/aime24" in done.stderr
    done = cli("eval", "--dataset", "Qwen3-8B/aime24", "--controller", "scc", db=db)
    assert done.returncode == 2 and "unknown controller 'scc'" in done.stderr


def test_sweep_budgets_and_betas_print_json_lists(db: Path) -> None:
    """--budgets sweeps a baseline's budget knob; --betas a beta range; both as JSON lists."""
    done = cli("sweep", "--dataset", "Qwen3-8B/aime24", "--controller", "parallel_probe", "--budgets", "1,64",
               "--json", db=db)
    rows = json.loads(done.stdout)
    assert [(r["accuracy"], int(r["avg_total_tokens"])) for r in rows] == [(75.23, 14160), (81.47, 730781)]
    done = cli("sweep", "--dataset", "Qwen3-8B/aime24", "--controller", "cmc", "--betas", "0:1:0.5", "--json", db=db)
    assert [r["config"]["beta"] for r in json.loads(done.stdout)] == [0.0, 0.5, 1.0]


def test_sweep_table_lists_every_default_point(db: Path) -> None:
    """Without a grid, a baseline sweeps its budgets 1..64 and prints one table row per point."""
    done = cli("sweep", "--dataset", "Qwen3-0.6B/aime24", "--controller", "sc", db=db)
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()[1:]] == [f"k={k}" for k in (1, 4, 8, 16, 32, 64)]


def test_traces_are_stored_and_printed_per_episode(db: Path) -> None:
    """eval --traces stores each episode's trace; `trace KEY` prints one in the reference event shape."""
    done = cli("eval", "--dataset", "Qwen3-8B/aime24", "--controller-file", EXAMPLE, "--beta", "0.5",
               "--shuffles", "2", "--traces", "--json", "--trusted", db=db)
    assert done.returncode == 0, done.stderr
    key = json.loads(done.stdout)["key"]
    shown = cli("trace", key, "--question", "3", "--seed", "1", db=db)
    events = json.loads(shown.stdout)
    assert events and {"event", "input", "output", "state", "decision"} <= set(events[0])
    missing = cli("trace", key, "--question", "3", "--seed", "7", db=db)
    assert missing.returncode == 2 and "no trace stored" in missing.stderr


def test_db_flag_after_eval(db: Path, tmp_path: Path) -> None:
    """`eval ... --db FILE` reads FILE's datasets (the option may follow the subcommand's own)."""
    done = cli("eval", "--dataset", "Qwen3-8B/aime24", "--controller", "sc64", "--json", "--db", db,
               db=tmp_path / "unused.duckdb")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accuracy"] > 0
    assert not (tmp_path / "unused.duckdb").exists()


def test_bad_set_value_names_knob_controller_and_type(db: Path) -> None:
    """`--set k=abc` is one error line naming the knob, the controller and the type it expects."""
    done = cli("eval", "--dataset", "Qwen3-8B/aime24", "--controller", "sc", "--set", "k=abc", db=db)
    assert done.returncode == 2
    assert done.stderr == "error: sc: knob 'k' expects int, got 'abc'\n"


@pytest.mark.parametrize("beta", ["7", "-1"])
def test_beta_outside_the_unit_interval_is_refused(db: Path, beta: str) -> None:
    """`--beta 7` / `--beta -1` are usage errors, not silently clipped to 1 / 0."""
    done = cli("eval", "--dataset", "Qwen3-8B/aime24", "--controller", "cmc", "--beta", beta, db=db)
    assert done.returncode == 2
    assert f"argument --beta: beta must be in [0, 1], got {beta}" in done.stderr
    sweep = cli("sweep", "--dataset", "Qwen3-8B/aime24", "--controller", "cmc", "--betas", "0:2:0.5", db=db)
    assert sweep.returncode == 2 and "betas must lie in [0, 1]" in sweep.stderr


def test_eval_seconds_exclude_the_kernel_start_up(db: Path) -> None:
    """A fresh process reports loading the compiled kernel as start-up, apart from the replay seconds."""
    done = cli("eval", "--dataset", "Qwen3-1.7B/aime25", "--controller", "esc64", "--no-cache", db=db)
    assert done.returncode == 0, done.stderr
    lines = {line.split("  ")[0]: line for line in done.stdout.splitlines()}
    assert "start-up seconds" in lines and "not counted" in lines["start-up seconds"]
    result = json.loads(cli("eval", "--dataset", "Qwen3-1.7B/aime25", "--controller", "esc64", "--no-cache",
                            "--json", db=db).stdout)
    assert result["startup_seconds"] > 0 and result["seconds"] > 0
