"""URL state for the pages: unknown values in a link get a friendly message, lists are comma-separated.

Single-value widgets bind to their query key themselves (``bind="query-params"``); Streamlit then
drops a value that is not an option, so ``warn_unknown`` must run before the widget to say so.
Multiselects keep ``datasets=a,b`` (the README's link format) through ``multiselect_param``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st


def warn_unknown(key: str, options: Sequence[Any], what: str, hint: str = "") -> None:
    """A warning when the link's ``key`` names something not in ``options`` (the page carries on)."""
    raw = st.query_params.get(key)
    if raw is not None and raw not in {str(o) for o in options}:
        st.warning(f"This link names the {what} {raw!r}, which is not available here{hint}; "
                   "showing the default instead.", icon=":material/link_off:")


def multiselect_param(label: str, options: Sequence[str], key: str, default: Sequence[str], what: str,
                      container: Any = st, format_func: Callable[[str], str] = str, **kwargs: Any) -> list[str]:
    """A multiselect whose value lives in the URL as ``key=a,b`` (repeated keys are read too)."""
    if key not in st.session_state:
        raw = [v for item in st.query_params.get_all(key) for v in item.split(",") if v]
        unknown = [v for v in raw if v not in options]
        known = [v for v in raw if v in options]
        if unknown:
            st.warning(f"This link names the {what} {', '.join(map(repr, unknown))}, which "
                       f"{'is' if len(unknown) == 1 else 'are'} not available here; left out"
                       + ("." if known else ", showing the default instead."),
                       icon=":material/link_off:")
        st.session_state[key] = known or [d for d in default if d in options]
    else:
        st.session_state[key] = [v for v in st.session_state[key] if v in options]
    value = container.multiselect(label, options, key=key, format_func=format_func, **kwargs)
    wanted = ",".join(value) or None
    if st.query_params.get(key) != wanted:  # a write sends the whole query string: only on a change (views/lab.py)
        if wanted:
            st.query_params[key] = wanted
        else:
            st.query_params.pop(key, None)
    return value


def initial(key: str, value: Any) -> Any:
    """``value`` as a widget's default unless session state already sets it (a preset button did):
    Streamlit warns when a widget gets both."""
    return None if key in st.session_state else value
