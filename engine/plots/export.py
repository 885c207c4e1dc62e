"""A figure as a file: standalone HTML (plotly.js inlined, opens offline) or PNG (kaleido + Chromium)."""

from __future__ import annotations

import plotly.graph_objects as go

PNG_SCALE = 2


class ExportError(RuntimeError):
    """The figure could not be rendered to an image here (the message says what is missing)."""


def figure_html(fig: go.Figure) -> str:
    """A standalone HTML page with plotly.js inlined: it needs no network to open."""
    return fig.to_html(include_plotlyjs=True, full_html=True)


def figure_png(fig: go.Figure, width: int = 1400) -> bytes:
    """The figure as PNG, rendered by kaleido in a headless Chromium (no network needed)."""
    height = int(fig.layout.height or 600)
    try:
        return fig.to_image(format="png", width=width, height=height, scale=PNG_SCALE)
    except Exception as exc:  # kaleido missing, or no Chrome/Chromium for it to drive
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"PNG export needs kaleido and Chromium (apt-get install chromium): {first}") from None
