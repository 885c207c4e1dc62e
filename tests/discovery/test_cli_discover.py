"""`python -m engine discover` refuses bad input with one line and exit code 2, storing nothing."""

from __future__ import annotations

from engine.discovery import sessions
from engine.store import Store
from tests.cli_runner import cli
from tests.discovery.conftest import SEARCH


def test_bad_discover_input_is_one_line_and_stores_nothing(store: Store) -> None:
    """Unknown dataset, missing --search, a dataset both search and held-out, a negative screen count, an
    unknown session to resume:
    each is one `error:` line, exit 2, and no session row."""
    cases = [
        (["--proposer", "offline", "--search", "No/such", "--session", "a"], "no/such"),
        (["--proposer", "offline", "--session", "b"], "--search"),
        (["--proposer", "offline", "--search", SEARCH, "--heldout", SEARCH, "--session", "c"], "both"),
        (["--proposer", "offline", "--search", SEARCH, "--screen-shuffles", "-1", "--session", "d"], "screen"),
        (["--resume", "nothing"], "no discovery session"),
    ]
    for args, needle in cases:
        done = cli("discover", *args, db=store.path)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error:") and done.stderr.count("\n") == 1 and needle.lower() in \
            done.stderr.lower(), done.stderr
    assert sessions.list_sessions(store) == []
    listed = cli("sessions", db=store.path)
    assert listed.returncode == 0 and "no discovery sessions yet" in listed.stdout
