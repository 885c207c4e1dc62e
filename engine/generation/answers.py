"""Answers out of model text: extraction, the public data's cleaning rules, optional math equivalence.

Extraction takes the content of the **last** ``\\boxed{...}`` (braces balanced, nested ones kept);
``\\fbox{...}`` counts as well. Fallbacks, in order, when the text has no complete box: a box that
is opened but never closed is an extraction failure (``ERR``); otherwise "answer is X" / "Final
answer: X" at the end of a line; otherwise there is no answer (``NO_ANSWER``).

Cleaning reproduces what the public AutoTTS files show (checked on all 12 files in
``../shared/data/autotts``: no stored answer contains ``\\text``, ``=`` or surrounding whitespace,
and answers such as ``"1}^{45} k^2"`` or ``"The walk takes her  t  minutes"`` are what these
rules leave of ``\\sum_{k=1}^{45} k^2`` and ``\\text{The walk takes her } t \\text{ minutes}``):

1. ``\\text{...}`` (also ``\\textbf``, ``\\mbox``) wrappers are removed, their content kept;
2. only the part after the last ``=`` is kept (``x = 5`` -> ``5``);
3. surrounding whitespace is stripped;
4. nothing left -> ``NO_ANSWER`` ("No"): the branch gave no answer at that point;
5. extraction failed (an unclosed box) -> ``EXTRACTION_FAILED`` ("ERR").

Nothing else is touched (``\\dfrac``, spaces inside, ``^\\circ``, trailing dots stay), so answers
compare as exact strings as in replay. ``equivalent`` is the optional math-aware comparison
(fractions, ``\\frac``/``\\dfrac``, spacing, leading zeros, ``\\left``/``\\right``, degrees,
``$``): for scoring only when a user chooses it, never for parity with the reference.
"""

from __future__ import annotations

import re
from fractions import Fraction

NO_ANSWER = "No"
EXTRACTION_FAILED = "ERR"
PLACEHOLDERS = (NO_ANSWER, EXTRACTION_FAILED)

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_TEXT = re.compile(r"\\(?:text|textbf|textrm|mbox|mathrm)\s*\{")
_FALLBACK = re.compile(r"(?:answer is|final answer\s*:)\s*\$?([^\n$]+?)\$?\s*\.?\s*$", re.IGNORECASE | re.MULTILINE)


def balanced(text: str, start: int) -> int | None:
    """Index of the brace closing the group that begins at ``text[start]`` (depth 1), or None."""
    depth = 1
    for i in range(start, len(text)):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def extract_boxed(text: str) -> str | None:
    """Raw content of the last complete ``\\boxed{...}``; None if there is none."""
    for m in reversed(list(_BOX.finditer(text))):
        end = balanced(text, m.end())
        if end is not None:
            return text[m.end():end]
    return None


def clean(raw: str) -> str:
    """The public data's cleaning rules (module docstring) applied to raw extracted text."""
    text = _unwrap_text(raw)
    if "=" in text:
        text = text.rsplit("=", 1)[1]
    text = text.strip()
    return text or NO_ANSWER


def _unwrap_text(text: str) -> str:
    while (m := _TEXT.search(text)) is not None:
        end = balanced(text, m.end())
        if end is None:
            return text[: m.start()] + text[m.end():]
        text = text[: m.start()] + text[m.end():end] + text[end + 1:]
    return text


def final_answer(text: str) -> str | None:
    """The answer a branch wrote itself (cleaned), ``ERR`` for a broken box, None if it wrote none."""
    raw = extract_boxed(text)
    if raw is not None:
        return clean(raw)
    if _BOX.search(text):
        return EXTRACTION_FAILED
    found = _FALLBACK.findall(text)
    return clean(found[-1]) if found else None


def probe_answer(completion: str) -> str:
    """The answer of an answer-forcing probe: the prompt ended in ``\\boxed{``, so the completion
    is the box's content up to its closing brace. Unclosed within the cap -> ``ERR``."""
    end = balanced(completion, 0)
    if end is None:
        return EXTRACTION_FAILED
    return clean(completion[:end])


# -- optional math-aware equivalence (scoring only, when chosen) -------------------------------
_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_NOISE = re.compile(r"\\left|\\right|\\!|\\,|\\;|\\:|\\ |\$|\s+|\^\s*\{?\\circ\}?|°")


def normalise(answer: str) -> str:
    """A canonical form for ``equivalent``: no spacing, ``\\dfrac``/``\\tfrac`` -> ``\\frac``,
    ``\\frac{a}{b}`` -> ``a/b``, numbers without leading zeros or trailing ``.0``, exact rationals
    reduced (``2/4`` -> ``1/2``, ``0.5`` -> ``1/2``)."""
    text = _NOISE.sub("", _unwrap_text(answer))
    text = _FRAC.sub(lambda m: f"({m.group(1)})/({m.group(2)})", text)
    text = re.sub(r"\((-?[\w.]+)\)", r"\1", text)
    number = _as_fraction(text)
    if number is not None:
        return str(number)
    return re.sub(r"(?<![\d.])0+(?=\d)", "", text)


def _as_fraction(text: str) -> Fraction | None:
    parts = text.split("/")
    if len(parts) > 2:
        return None
    try:
        values = [Fraction(p) for p in parts]
    except (ValueError, ZeroDivisionError):
        return None
    if len(values) == 2:
        return None if values[1] == 0 else values[0] / values[1]
    return values[0]


def equivalent(answer: str | None, gold: str) -> bool:
    """Math-aware equality of an answer and the gold answer (placeholders are never correct)."""
    if answer is None or answer in PLACEHOLDERS:
        return False
    return answer == gold or normalise(answer) == normalise(gold)


def is_correct(answer: str | None, gold: str, *, math: bool = False) -> bool:
    """Replay's exact-string rule, or ``equivalent`` when ``math`` is chosen."""
    if math:
        return equivalent(answer, gold)
    return answer is not None and answer == gold
