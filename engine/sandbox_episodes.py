"""Sandboxed episodes: the parent owns every episode, the worker holds only what was revealed.

A sandboxed controller never gets an ``engine.replay.Episode``: that object holds the whole
question (every probe, length and final answer of every branch), so code in the same process
could read what it never paid for. The worker gets a ``RemoteEpisode`` instead: the same API
(reference names and aliases), whose every action is a request to the parent, which applies it
to its own ``Episode`` and answers with what that action reveals: the answer, whether the branch
finished, and the new token total. So the worker's memory holds the question text, the branch
count, the interval length and the replies to its own requests, nothing else.

Many episodes are in flight per worker (one greenlet each, see ``sandbox_worker.Lanes``); their
requests go to the parent in one message per scheduling step and come back in one reply.

Wire format (this module is imported by both sides; it has no import side effects):
  worker -> parent  JSON ``{"k": "step", "r": requests, "f": [[lane, answer, trace], ...]}``, the requests
                    ``lane, op, arg, ...`` packed as base64 of native int64s (``pack_requests``: JSON spends
                    about 1 µs per action on integers), or a JSON list when an argument does not fit 64 bits
  parent -> worker  ``sandbox_worker.REPLY_HEADER`` + pickle ``{"r": [reply, ...], "new": [[lane, question], ...]}``
A reply is ``(answer, finished, total_tokens)``, or ``(error_name, message)`` when the rules refuse
the action (the proxy raises the same exception ``Episode`` raises in process).
"""

from __future__ import annotations

import base64
import operator
from array import array
from collections.abc import Callable, Mapping
from typing import Any

from engine.replay import OPEN, READ, Episode, InvalidAction

LANES = 64  # episodes in flight per worker: requests per message at most
OPEN_OP, READ_OP, MORE_OP = 0, 1, 2  # request ops: probe_new, get_new_branch_final_answer, probe_more(arg)
ERRORS: dict[str, type[Exception]] = {"IndexError": IndexError, "InvalidAction": InvalidAction}

Reply = tuple[Any, ...]


class RemoteEpisode:
    """The question object of a sandboxed controller: ``Episode``'s API, backed by the parent.

    Public state (``n_opened``, ``total_tokens``, ``actions``, ``sequential_tokens``) is kept here
    from the replies, exactly as ``Episode`` computes it; refusals raise what ``Episode`` raises.
    Nothing of the question is held beyond what its actions revealed.
    """

    __slots__ = ("_spent", "_wait", "actions", "n_branches", "n_opened", "probe_freq", "question", "total_tokens")

    def __init__(self, text: str, probe_freq: int, n_branches: int, wait: Callable[[int, int], Reply]):
        self.question = text
        self.probe_freq = probe_freq
        self.n_branches = n_branches
        self._wait = wait  # sends (op, arg) to the parent and returns its reply
        self._spent = [0] * n_branches  # tokens charged per branch position, as revealed
        self.n_opened = 0
        self.total_tokens = 0
        self.actions: list[int] = []

    # -- the reference API ------------------------------------------------------
    def probe_new(self) -> tuple[str, int, bool]:
        """Open the next branch and advance it one interval: (answer, index, is_finish)."""
        answer, finished, total = self._ask(OPEN_OP, 0)
        i = self.n_opened
        self.n_opened = i + 1
        self._charge(i, total, OPEN)
        return answer, i, finished

    def probe_more(self, index: int) -> tuple[str, bool]:
        """Advance branch ``index`` by one interval: (answer, is_finish)."""
        if type(index) is not int:
            index = operator.index(index)  # numpy ints are welcome, floats are a TypeError
        answer, finished, total = self._ask(MORE_OP, index)
        self._charge(index, total, index)
        return answer, finished

    def get_new_branch_final_answer(self) -> str:
        """Open the next branch and read it to its end in one go (costs its full length)."""
        answer, _, total = self._ask(READ_OP, 0)
        i = self.n_opened
        self.n_opened = i + 1
        self._spent[i] = 0  # a read charges the branch its full length, whatever was advanced before
        self._charge(i, total, READ)
        return answer

    def get_seq_and_total_tokens(self) -> tuple[int, int]:
        """Reference diagnostics; its first element is always 0."""
        return 0, self.total_tokens

    # -- friendlier aliases -----------------------------------------------------
    open_branch = probe_new
    advance = probe_more
    read_branch = get_new_branch_final_answer

    @property
    def sequential_tokens(self) -> int:
        return max(self._spent, default=0)

    def __repr__(self) -> str:
        return f"<Episode {self.n_opened}/{self.n_branches} branches open, {self.total_tokens} tokens>"

    # -- the parent's replies ---------------------------------------------------
    def _ask(self, op: int, arg: int) -> Reply:
        reply = self._wait(op, arg)
        if len(reply) == 2:
            raise ERRORS[reply[0]](reply[1])
        return reply

    def _charge(self, i: int, total: int, action: int) -> None:
        self._spent[i] += total - self.total_tokens
        self.total_tokens = total
        self.actions.append(action)


def pack_requests(requests: list[int]) -> str | list[int]:
    """A step's requests for the frame: base64 of int64s, or the list itself if one does not fit."""
    try:
        return base64.b64encode(array("q", requests).tobytes()).decode("ascii")
    except OverflowError:  # an index past 64 bits (the parent's Episode refuses it as IndexError)
        return requests


def unpack_requests(requests: Any) -> list[Any]:
    """The parent's side of ``pack_requests``; raises ValueError for anything it could not have made."""
    if type(requests) is list:
        return requests
    if type(requests) is not str:
        raise ValueError("requests that are neither packed nor a list")
    packed = array("q")
    packed.frombytes(base64.b64decode(requests, validate=True))  # (binascii.Error is a ValueError)
    return packed.tolist()


def serve(episodes: Mapping[int, Episode], requests: list[int]) -> list[Reply]:
    """Apply a step's requested actions (``lane, op, arg`` triples) to the parent's own episodes, in
    order; each reply reveals only its action's result. One call per step: this is the parent's hot loop.

    Raises ``KeyError`` for an unknown lane and ``ValueError`` for a request no honest worker sends."""
    if len(requests) % 3:
        raise ValueError("a truncated request")
    replies: list[Reply] = []
    reply = replies.append
    for i in range(0, len(requests), 3):
        ep, op, arg = episodes[requests[i]], requests[i + 1], requests[i + 2]
        try:
            if op == MORE_OP and type(arg) is int:
                answer, finished = ep.probe_more(arg)
            elif op == OPEN_OP:
                answer, _, finished = ep.probe_new()
            elif op == READ_OP:
                answer, finished = ep.get_new_branch_final_answer(), True
            else:
                raise ValueError(f"a malformed request ({str(op)[:20]}, {str(arg)[:20]})")
        except (IndexError, InvalidAction) as exc:
            reply((type(exc).__name__, str(exc)))
            continue
        reply((answer, finished, ep.total_tokens))
    return replies
