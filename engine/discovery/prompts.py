"""What the proposer reads: the environment, the best candidates with their curves and traces.

Prompts are built only from search-set figures (``history`` holds nothing else) and kept within
a token budget by dropping the least useful parts first; their size is reported. Replies are
parsed here too: the code block of a controller and the one-line idea summary at its top.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

Counter = Callable[[str], int]

ENVIRONMENT = """\
You write a test-time-scaling controller in Python. It decides how to spend reasoning tokens of a
language model on one math question: many reasoning branches were sampled in advance and are
replayed; the controller opens branches, advances them, reads intermediate answers, and returns one
final answer. It is judged on accuracy (its answer equals the gold answer) and on the tokens it spent.

The question object passed to solve(question) has exactly these methods (no gold answer exists on it):
- question.probe_new() -> (answer: str, index: int, finished: bool): open the next branch and read its
  answer after one probe interval (costs probe_freq tokens). Raises IndexError when no branch is left.
- question.probe_more(index) -> (answer: str, finished: bool): advance branch `index` by one interval
  and read its current answer (costs probe_freq tokens, or what remains of the branch when it finishes).
- question.get_new_branch_final_answer() -> str: open the next branch and read it to the end (costs
  the branch's full length). Raises IndexError when no branch is left.
- question.n_branches (int), question.probe_freq (int), question.total_tokens (tokens spent so far).
Answers are strings (an intermediate answer may be a placeholder when the branch has not decided yet).
At most 64 branches exist per question: never open more.

Write ONE class that subclasses LLMDesignedMethod (it is predefined: do not import it), with
    def __init__(self, config=None): super().__init__(config); beta = float(self.config.get("beta", 0.5))
    def solve(self, question) -> str | None
Only the standard library is available (collections, math, ...); no files, no network, no threads.
Requirements:
- Exactly one knob: beta in [0, 1]. Every internal setting must be a monotonic function of beta:
  beta 0 = cheapest, beta 1 = most accurate. Sweeping beta traces an accuracy-vs-tokens curve.
- Accuracy first, then tokens. Be correct and robust: catch IndexError/ValueError from the question.
- Start the file with a docstring whose first line summarises the idea in one sentence.
Reply with the complete file in one ```python code block.
"""

CRITIC = """\
You are reviewing a candidate controller before it is evaluated. Check it against the environment
rules and the history above: bugs (exceptions, infinite loops, more than 64 branches), beta not
changing every knob monotonically, or an idea that cannot beat the best candidate so far.
If it is fine, reply with the single word APPROVE. Otherwise reply with an improved complete file in
one ```python code block.
"""


CURVE_TASK = """Write a new controller whose beta curve beats the best candidate's. Candidates are ranked by their curve
score: on each dataset, the best accuracy reachable within a token budget, averaged over budgets on a log
scale from CMC's cost at beta 0 up to reading 64 branches in full. A beta point counts only if it costs at
least as much as the lower betas' points, so beta must raise the spend: a controller that ignores beta (or
spends less as beta grows) scores nothing for the budgets below its cost. Be cheap at beta 0, most
accurate at beta 1, and better than the best candidate at every beta in between."""


@dataclass(frozen=True)
class Entry:
    """A past candidate as the proposer sees it: search-set figures only."""

    round: int
    summary: str
    code: str | None
    # rows: (beta, {dataset: (accuracy %, tokens)})
    curve: list[tuple[float, dict[str, tuple[float, float]]]]
    trace: str
    score: float | None = None  # its curve score, shown when the session ranks by the curve
    screened: str = ""  # a screened-out candidate: why, and the shuffle count of its (screen) figures


@dataclass(frozen=True)
class Prompt:
    text: str
    tokens: int
    seen: list[int]  # rounds of the entries it shows
    over_budget: bool


def build_prompt(entries: list[Entry], budget: int, count: Counter, *, retry: tuple[str, str] | None = None,
                 critic_code: str | None = None, task: str | None = None) -> Prompt:
    """The prompt for a proposal (or a retry with ``(code, error)``, or a critique of ``critic_code``).

    ``entries`` are the best candidates first; the first is the parent, shown with its code.
    ``task`` replaces the default proposal task (the curve objective's says how it ranks).
    Parts are dropped from the least useful end until the text fits ``budget`` tokens.
    """
    tail = _tail(retry, critic_code, task or TASK)
    parts = [_entry_text(e, with_code=(i == 0), with_trace=True) for i, e in enumerate(entries)]
    variants = [parts]
    for i in range(len(parts) - 1, -1, -1):  # drop traces, then the others' tables, then the parent's code
        bare = _entry_text(entries[i], with_code=i == 0, with_trace=False)
        variants.append([*variants[-1][:i], bare, *variants[-1][i + 1:]])
    for i in range(len(parts) - 1, 0, -1):
        variants.append(variants[-1][:i])
    variants.append([_entry_text(entries[0], with_code=False, with_trace=False)] if entries else [])
    for kept in variants:
        text = _assemble(kept, tail)
        tokens = count(text)
        if tokens <= budget:
            return Prompt(text, tokens, [e.round for e in entries[: len(kept)]], False)
    return Prompt(text, tokens, [e.round for e in entries[: len(kept)]], True)


def _assemble(parts: list[str], tail: str) -> str:
    history = "\n\n".join(parts) if parts else "(no candidates yet: this is the first one)"
    return f"{ENVIRONMENT}\n## Best candidates so far (search datasets)\n\n{history}\n\n{tail}".rstrip() + "\n"


TASK = "Write a new controller that beats the best candidate (higher accuracy at equal or fewer tokens)."


def _tail(retry: tuple[str, str] | None, critic_code: str | None, task: str) -> str:
    if critic_code is not None:
        return f"## Candidate under review\n\n```python\n{critic_code}\n```\n\n{CRITIC}"
    if retry is not None:
        code, error = retry
        return (f"## Your previous answer failed validation\n\n```python\n{code}\n```\n\nError:\n{error[-1500:]}\n\n"
                "Fix it and reply with the complete corrected file in one ```python code block.")
    return f"## Task\n\n{task}"


def _entry_text(e: Entry, *, with_code: bool, with_trace: bool) -> str:
    score = "" if e.score is None else f" (curve score {e.score:.2f})"
    status = " (screened out)" if e.screened else ""
    lines = [f"### Round {e.round}{status}{score}: {e.summary or '(no summary)'}"]
    if e.screened:
        lines.append(f"Not evaluated in full: {e.screened}")
    lines.append(curve_table(e.curve))
    if with_trace and e.trace:
        lines.append(f"Execution trace where it failed:\n{e.trace}")
    if with_code and e.code:
        lines.append(f"Code:\n```python\n{e.code}\n```")
    return "\n".join(lines)


def curve_table(curve: list[tuple[float, dict[str, tuple[float, float]]]]) -> str:
    """``beta | dataset acc% / ktokens ...`` as a compact text table."""
    if not curve:
        return "(not evaluated)"
    names = sorted({d for _, row in curve for d in row})
    head = "beta | " + " | ".join(f"{n} acc% ktok" for n in names)
    rows = [f"{b:.2f} | " + " | ".join(_cell(row.get(n)) for n in names) for b, row in curve]
    return "\n".join([head, *rows])


def _cell(value: tuple[float, float] | None) -> str:
    return "-" if value is None else f"{value[0]:.1f} {value[1] / 1000:.1f}"


# -- replies ----------------------------------------------------------------------------------------
_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)


def extract_code(reply: str) -> str | None:
    """The controller file in a reply: the last fenced block defining a class, else a bare class file."""
    blocks = [b.strip() for b in _FENCE.findall(reply) if "class " in b]
    if blocks:
        return blocks[-1] + "\n"
    open_fence = re.search(r"```(?:python|py)?[ \t]*\n(.*)$", reply, re.S)  # a reply cut off mid-block
    if open_fence and "class " in open_fence.group(1):
        return open_fence.group(1).strip() + "\n"
    if "class " in reply and "def solve" in reply:
        return reply[reply.index(_first_code_line(reply)):].strip() + "\n"
    return None


def _first_code_line(text: str) -> str:
    for line in text.splitlines():
        if line.startswith(("import ", "from ", "class ", '"""', "#")):
            return line
    return text[text.index("class "):].splitlines()[0]


def approved(reply: str) -> bool:
    """Whether a critic reply approves the candidate as it is."""
    return extract_code(reply) is None


def summary(code: str | None) -> str:
    """First line of the module (or class) docstring, else the first comment: the idea in a line."""
    if not code:
        return ""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return ""
    docs = [ast.get_docstring(tree)] + [ast.get_docstring(n) for n in tree.body if isinstance(n, ast.ClassDef)]
    for doc in docs:
        if doc and doc.strip():
            return doc.strip().splitlines()[0][:200]
    for line in code.splitlines():
        if line.strip().startswith("#"):
            return line.strip("# ").strip()[:200]
    return ""
