"""Figures carry the data they claim to show: traces, x/y values, titles."""

from types import SimpleNamespace

from engine import plots
from engine.controllers import BETAS, BUILTINS
from engine.evaluate import EvalResult


def _result(**overrides) -> EvalResult:
    fields = dict(
        dataset="toy/bench", controller="cmc", config={"beta": 0.5}, shuffles=7, mode="compat",
        accuracy=50.0, avg_total_tokens=1000.0, avg_sequential_tokens=400.0, ci95=(20.0, 80.0),
        seconds=0.1, per_question_accuracy=[100.0, 0.0, 50.0], per_question_tokens=[900.4, 1200.6, 899.0],
        avg_actions=3.0,
    )
    return EvalResult(**{**fields, **overrides})


def test_per_question_accuracy_has_one_bar_per_question_with_tokens_in_hover():
    """Per-question figure: bar i is question i's accuracy, hover data its mean tokens, title names the run."""
    fig = plots.per_question_accuracy(_result())
    (bar,) = fig.data
    assert bar.type == "bar"
    assert list(bar.x) == ["Q1", "Q2", "Q3"]
    assert list(bar.y) == [100.0, 0.0, 50.0]
    assert list(bar.customdata) == [900, 1201, 899]
    assert list(bar.marker.color) == [100.0, 0.0, 50.0]
    assert "tokens" in bar.hovertemplate
    assert fig.layout.title.text == "cmc on toy/bench: accuracy per question (7 shuffles)"
    assert tuple(fig.layout.yaxis.range) == (0, 100)


def test_per_question_accuracy_marks_the_mean_accuracy():
    """The overall accuracy is drawn as a horizontal line at its value."""
    fig = plots.per_question_accuracy(_result(accuracy=62.5))
    (line,) = fig.layout.shapes
    assert (line.y0, line.y1) == (62.5, 62.5)


def test_schedule_curve_has_one_panel_per_knob_with_schedule_values():
    """Each knob's trace is exactly schedule(beta)[knob] over the given betas, one subplot each."""
    cmc = BUILTINS["cmc"]
    fig = plots.schedule_curve(cmc, BETAS)
    knobs = list(cmc.schedule(0.0))
    assert [t.name for t in fig.data] == knobs
    for trace in fig.data:
        assert list(trace.x) == list(BETAS)
        assert list(trace.y) == [cmc.schedule(b)[trace.name] for b in BETAS]
    assert len({t.xaxis for t in fig.data}) == len(knobs)
    assert [a.text for a in fig.layout.annotations] == knobs
    assert fig.layout.title.text == "cmc: knobs as a function of beta"


def test_schedule_curve_marks_the_current_beta_in_every_panel():
    """With current=beta, every knob panel gets a vertical marker at that beta."""
    sc = BUILTINS["sc"]
    fig = plots.schedule_curve(sc, BETAS, current=0.35)
    assert [t.name for t in fig.data] == ["k"]
    assert list(fig.data[0].y) == [sc.schedule(b)["k"] for b in BETAS]
    assert [(s.x0, s.x1) for s in fig.layout.shapes] == [(0.35, 0.35)]


def test_schedule_curve_skips_non_numeric_knobs():
    """Knobs that are not numbers cannot be plotted against beta and are left out."""
    class Fake:
        NAME = "fake"

        @classmethod
        def schedule(cls, beta):
            return {"width": 2 * beta, "policy": "greedy"}

    fig = plots.schedule_curve(Fake, [0.0, 1.0])
    assert [t.name for t in fig.data] == ["width"]
    assert list(fig.data[0].y) == [0.0, 2.0]


def test_datasets_overview_groups_three_facts_per_dataset():
    """Overview: three bar traces (pass@1, majority, any-correct) with each dataset's values, grouped."""
    infos = [
        SimpleNamespace(name="M/a", pass_at_1=40.0, majority_all=50.0, any_correct=90.0),
        SimpleNamespace(name="M/b", pass_at_1=10.0, majority_all=13.3, any_correct=60.0),
    ]
    fig = plots.datasets_overview(infos)
    assert [t.name for t in fig.data] == ["pass@1", "majority of all", "any correct"]
    for trace in fig.data:
        assert list(trace.x) == ["M/a", "M/b"]
    assert [list(t.y) for t in fig.data] == [[40.0, 10.0], [50.0, 13.3], [90.0, 60.0]]
    assert fig.layout.barmode == "group"
    assert fig.layout.title.text.startswith("Stored datasets")


def test_datasets_overview_of_nothing_is_an_empty_figure():
    """No datasets yet still gives a valid (empty) figure, not an error."""
    fig = plots.datasets_overview([])
    assert all(len(t.x) == 0 for t in fig.data)
