"""Discovery figures carry exactly the data they are given, and the held-out panel is marked."""

from __future__ import annotations

from types import SimpleNamespace as P

from engine.plots import discovery as figures


def test_scaling_curves_one_panel_per_dataset_lines_in_beta_order() -> None:
    """A line per (candidate, dataset) in its dataset's panel, points sorted by beta, baseline dashed."""
    pts = [P(label="r1", dataset=d, beta=b, accuracy=10 * b + i, tokens=1000 * (b + 1))
           for i, d in enumerate(("m/a", "m/b")) for b in (1.0, 0.0)]
    base = [P(label="CMC (baseline)", dataset="m/a", beta=b, accuracy=5.0, tokens=500.0) for b in (0.0, 1.0)]
    fig = figures.scaling_curves(pts, base, title="t")
    names = [(t.name, t.xaxis) for t in fig.data]
    assert names == [("CMC (baseline)", "x"), ("r1", "x"), ("r1", "x2")]
    r1a = fig.data[1]
    assert list(r1a.x) == [1.0, 2.0] and list(r1a.y) == [0.0, 10.0] and list(r1a.customdata) == [0.0, 1.0]
    assert fig.data[0].line.dash == "dash" and fig.data[2].showlegend is False
    assert figures.HELDOUT_BANNER not in fig.layout.title.text
    held = figures.scaling_curves(pts, heldout=True)
    assert held.layout.title.text.startswith(figures.HELDOUT_BANNER)


def test_progress_marks_invalid_rounds_and_tracks_best_and_spend() -> None:
    """Scores per round, a best-so-far step line, invalid rounds as crosses, cumulative spend."""
    rounds = [P(round=0, attempt=0, score=50.0, summary="seed", usd=0.0),
              P(round=1, attempt=1, score=40.0, summary="worse", usd=0.5),
              P(round=2, attempt=-1, score=None, summary="invalid: SyntaxError", usd=0.25),
              P(round=3, attempt=0, score=60.0, summary="better", usd=0.25)]
    fig = figures.progress(rounds, "accuracy")
    scores, best, invalid, spend = fig.data
    assert list(scores.y) == [50.0, 40.0, 60.0]
    assert list(best.x) == [0, 1, 3] and list(best.y) == [50.0, 50.0, 60.0]
    assert list(invalid.x) == [2] and invalid.marker.symbol == "x"
    assert list(spend.y) == [0.0, 0.5, 0.75, 1.0] and spend.yaxis == "y2"
    assert fig.layout.yaxis2.title.text == "spend ($)"


def test_progress_marks_screened_out_rounds_apart_and_hides_a_zero_spend_axis() -> None:
    """A screened-out round (a candidate, no full score) gets its own marker, not the invalid cross, and is
    not in the best-so-far line; with nothing spent there is no spend trace and the spend axis is hidden."""
    rounds = [P(round=0, attempt=0, score=50.0, summary="seed", usd=0.0),
              P(round=1, attempt=0, score=None, summary="screened out at 10 shuffles: score 40 < 50", usd=0.0),
              P(round=2, attempt=-1, score=None, summary="invalid: SyntaxError", usd=0.0)]
    fig = figures.progress(rounds, "curve")
    names = [t.name for t in fig.data]
    assert names == ["candidate score", "best so far", "no valid candidate", "screened out (not evaluated in full)"]
    assert list(fig.data[3].x) == [1] and list(fig.data[3].customdata) == [rounds[1].summary]
    assert list(fig.data[1].x) == [0] and fig.layout.yaxis2.visible is False
    assert "no LLM spend" in fig.layout.title.text


def test_compare_sessions_means_over_datasets_per_beta() -> None:
    """Each session is one line: per beta, the mean accuracy and tokens over its datasets."""
    pts = [P(label="s", dataset=d, beta=b, accuracy=acc, tokens=tok)
           for d, acc, tok in (("a", 10.0, 2000.0), ("b", 30.0, 4000.0)) for b in (0.0, 1.0)]
    fig = figures.compare_sessions({"s": pts, "empty": []})
    line = fig.data[0]
    assert line.name == "s" and list(line.x) == [3.0, 3.0] and list(line.y) == [20.0, 20.0]
    assert len(fig.data[1].x) == 0
