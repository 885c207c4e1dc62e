"""Answer extraction, the public data's cleaning rules, and the optional math-aware equivalence."""

from __future__ import annotations

import json

import pytest

from engine import paths
from engine.generation import answers
from engine.generation.answers import EXTRACTION_FAILED, NO_ANSWER

# (model text, what the branch's final answer must be): real-world formats.
FINAL_CASES = [
    ("so the answer is \\boxed{42}.", "42"),
    ("first \\boxed{3} then, correcting, \\boxed{5}", "5"),  # the last box wins
    ("\\boxed{\\frac{9\\sqrt{23}}{23}}", "\\frac{9\\sqrt{23}}{23}"),  # nested braces kept
    ("\\boxed{\\dfrac{1}{576}}", "\\dfrac{1}{576}"),  # \dfrac is not rewritten (exact strings)
    ("\\boxed{ 73 }", "73"),  # surrounding whitespace
    ("\\boxed{x = 5}", "5"),  # the part after the last '='
    ("\\boxed{\\sum_{k=1}^{45} k^2}", "1}^{45} k^2"),  # ... even inside LaTeX, as the public data shows
    ("\\boxed{\\text{The walk takes her } t \\text{ minutes}}", "The walk takes her  t  minutes"),
    ("\\boxed{12\\text{ cm}^2}", "12 cm^2"),
    ("\\boxed{60^\\circ}", "60^\\circ"),  # degrees stay
    ("\\boxed{2^{25} \\cdot 26!}", "2^{25} \\cdot 26!"),
    ("\\fbox{7}", "7"),
    ("\\boxed {9}", "9"),
    ("\\boxed{}", NO_ANSWER),  # an empty box: no answer
    ("the answer is \\boxed{12", EXTRACTION_FAILED),  # unclosed: extraction failed
    ("The final answer is 204.", "204"),  # fallback without a box
    ("Final answer: $\\frac{1}{2}$", "\\frac{1}{2}"),
    ("I keep thinking about it", None),  # nothing: the caller probes
    ("<think>a \\boxed{1} b</think> The answer is \\boxed{1013}", "1013"),
]


@pytest.mark.parametrize(("text", "expected"), FINAL_CASES)
def test_final_answer_formats(text: str, expected: str | None) -> None:
    """Each real-world answer format extracts and cleans to what the public data would store."""
    assert answers.final_answer(text) == expected


PROBE_CASES = [
    ("42}", "42"),
    ("42} because ...", "42"),
    ("\\frac{1}{2}} \\]", "\\frac{1}{2}"),
    ("}", NO_ANSWER),  # the model closed the box at once: no answer yet
    ("  } text", NO_ANSWER),
    ("\\text{No solution}}", "No solution"),
    ("1 + 2 + 3 + ", EXTRACTION_FAILED),  # cut by the probe cap before the box closed
]


@pytest.mark.parametrize(("completion", "expected"), PROBE_CASES)
def test_probe_answer(completion: str, expected: str) -> None:
    """A probe's completion (after a prompt ending in \\boxed{) is read up to its closing brace."""
    assert answers.probe_answer(completion) == expected


EQUIVALENT = [
    ("\\frac{9\\sqrt{23}}{23}", "\\frac{9 \\sqrt{23}}{23}"),  # HMMT25's spacing mismatch (replay-semantics.md)
    ("\\dfrac{1}{576}", "\\frac{1}{576}"),
    ("1/2", "\\frac{1}{2}"),
    ("0.5", "\\frac{1}{2}"),
    ("2/4", "1/2"),
    ("073", "73"),
    ("73.0", "73"),
    ("$204$", "204"),
    ("60^\\circ", "60"),
    ("\\left(3, 4\\right)", "(3,4)"),
    ("\\text{12}", "12"),
]
NOT_EQUIVALENT = [("\\frac{1}{3}", "\\frac{1}{2}"), ("73", "37"), ("No", "No"), ("ERR", "ERR"), ("100", "10")]


@pytest.mark.parametrize(("answer", "gold"), EQUIVALENT)
def test_math_equivalence_accepts(answer: str, gold: str) -> None:
    """The optional equivalence treats spacing, \\dfrac, fractions, leading zeros and $ as equal."""
    assert answers.equivalent(answer, gold)
    assert answers.is_correct(answer, gold, math=True)


@pytest.mark.parametrize(("answer", "gold"), NOT_EQUIVALENT)
def test_math_equivalence_rejects(answer: str, gold: str) -> None:
    """Different values stay different, and the placeholders are never correct."""
    assert not answers.equivalent(answer, gold)


def test_exact_rule_is_the_default() -> None:
    """Without the math option, scoring is replay's exact string rule."""
    assert not answers.is_correct("\\dfrac{1}{576}", "\\frac{1}{576}")
    assert answers.is_correct("73", "73")
    assert not answers.is_correct(None, "73")


def test_cleaning_is_idempotent_on_the_public_data() -> None:
    """Every answer stored in the public AutoTTS files is a fixed point of the cleaning rules, so the
    rules describe that data (no stored answer has ``\\text``, ``=`` or surrounding whitespace)."""
    files = sorted(paths.data_dir().glob("*/*.json"))
    assert files, "the real data must be present"
    seen = set()
    for f in files:
        for q in json.loads(f.read_text()):
            for probes, _, final in q["each_branch"]:
                seen.update(probes)
                seen.add(final)
    changed = [a for a in seen if answers.clean(a) != a]
    assert not changed, changed[:5]
    assert {NO_ANSWER, EXTRACTION_FAILED} <= seen
