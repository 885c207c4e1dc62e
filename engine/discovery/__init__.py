"""Agentic discovery: a proposer writes controllers, replay judges them on search datasets, the history
teaches the next round; held-out datasets are only ever displayed. Sessions live in the store and resume.

Start reading at ``loop.run_session``; ``config.SessionConfig`` says what a session does,
``sessions`` holds the queries, ``prompts`` what the proposer reads, ``proposers`` who proposes
(litellm or Optuna over ``family``), ``validate`` the gate a candidate passes, ``worker`` the
background process the page starts.
"""

from engine.discovery.config import OFFLINE, ConfigError, SessionConfig
from engine.discovery.loop import Event, ranked, run_session, start_session

__all__ = ["OFFLINE", "ConfigError", "Event", "SessionConfig", "ranked", "run_session", "start_session"]
