"""`python -m engine discover` refuses bad input with one line and exit code 2, storing nothing."""

from __future__ import annotations

from engine.discovery import SessionConfig, sessions
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


def test_screen_flags_are_stored_with_the_session(store: Store) -> None:
    """`--screen-shuffles N --screen-margin M` land in the stored config; `--screen-shuffles 0` turns screening
    off (stored as none); without the flags a session gets the config's defaults."""
    common = ["--proposer", "offline", "--search", SEARCH, "--betas", "0,1", "--shuffles", "2", "--rounds", "0"]
    for name, flags, expected in (("on", ["--screen-shuffles", "1", "--screen-margin", "0.5"], (1, 0.5)),
                                  ("off", ["--screen-shuffles", "0"], (None, SessionConfig.screen_margin)),
                                  ("default", [], (SessionConfig.screen_shuffles, SessionConfig.screen_margin))):
        done = cli("discover", *common, "--session", name, *flags, db=store.path)
        assert done.returncode == 0, done.stderr
        config = sessions.get_session(store, name).config
        assert (config.screen_shuffles, config.screen_margin) == expected
