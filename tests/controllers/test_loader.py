"""Controller files in the reference format run unmodified; their errors point at their lines."""

import pytest

from engine.controllers.loader import ControllerError, load_class
from engine.evaluate import ControllerSpec, evaluate, run_python
from engine.paths import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "examples" / "controllers" / "cmc_reference_style.py"


def _spec(source, config=None):
    return ControllerSpec.from_source(source, None, config, "ctl.py")


def test_reference_style_cmc_file_equals_the_builtin(real_dataset):
    """The example file (LLMDesignedMethod subclass, SciPy, own helpers) gives the built-in's figures."""
    ds = real_dataset("Qwen3-8B/aime24")
    spec = ControllerSpec.from_source(EXAMPLE.read_text(), None, {"beta": 0.5}, str(EXAMPLE))
    mine = run_python(ds, spec.build(), shuffles=5)
    builtin = run_python(ds, ControllerSpec.builtin("cmc", {"beta": 0.5}).build(), shuffles=5)
    assert mine.answers == builtin.answers
    assert (mine.total_tokens == builtin.total_tokens).all()


def test_syntax_error_names_file_and_line():
    """A syntax error is one line: file, line number, message."""
    with pytest.raises(ControllerError, match=r"ctl.py:2: SyntaxError"):
        load_class("x = 1\ndef (:\n", filename="ctl.py")


def test_import_error_shows_the_users_line_only():
    """A failing import shows the user's frame, not the engine's."""
    with pytest.raises(ControllerError) as err:
        load_class("import os\nimport not_a_module_xyz\n", filename="ctl.py")
    assert 'ctl.py", line 2' in str(err.value)
    assert "engine" not in str(err.value)


def test_exception_in_solve_points_at_the_line_and_episode(real_dataset):
    """An exception in solve names question, shuffle and the user's line, with no engine frames."""
    source = "class C(LLMDesignedMethod):\n    def solve(self, q):\n        q.probe_new()\n        return 1 / 0\n"
    with pytest.raises(ControllerError) as err:
        evaluate(real_dataset("Qwen3-8B/aime24"), _spec(source), shuffles=1, trusted=True)
    text = str(err.value)
    assert "question 0, shuffle 0" in text and 'ctl.py", line 4' in text and "ZeroDivisionError" in text
    assert "evaluate.py" not in text


def test_non_string_answer_is_a_clear_error(real_dataset):
    """solve() must return a str or None; anything else is reported with its type."""
    source = "class C(LLMDesignedMethod):\n    def solve(self, q):\n        return 42\n"
    with pytest.raises(ControllerError, match="returned int"):
        evaluate(real_dataset("Qwen3-8B/aime24"), _spec(source), shuffles=1, trusted=True)


def test_class_choice_is_required_when_ambiguous():
    """Two controller classes in one file: the error asks for --class; naming one works."""
    source = "class A(LLMDesignedMethod):\n    pass\nclass B(LLMDesignedMethod):\n    pass\n"
    with pytest.raises(ControllerError, match="--class"):
        load_class(source, filename="ctl.py")
    assert load_class(source, "B", "ctl.py").__name__ == "B"


def test_strict_mode_reports_the_invalid_action(real_dataset):
    """In strict mode advancing a finished branch stops the evaluation with the action named."""
    source = ("class C(LLMDesignedMethod):\n    def solve(self, q):\n        q.get_new_branch_final_answer()\n"
              "        return q.probe_more(0)[0]\n")
    with pytest.raises(ControllerError, match=r"strict mode, question 0, shuffle 0: probe_more\(0\)"):
        evaluate(real_dataset("Qwen3-8B/aime24"), _spec(source), shuffles=1, mode="strict", trusted=True)


def test_strict_mode_falls_back_to_python_for_builtins_that_overrun_the_pool(real_dataset):
    """SC@130 opens past 128 branches: compat tolerates it, strict reports it."""
    ds = real_dataset("Qwen3-8B/aime24")
    assert evaluate(ds, ControllerSpec.builtin("sc", {"k": 130}), shuffles=1).accuracy > 0
    with pytest.raises(ControllerError, match="opens past the pool"):
        evaluate(ds, ControllerSpec.builtin("sc", {"k": 130}), shuffles=1, mode="strict")
