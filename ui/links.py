"""Share links: every page keeps its state in the URL query string, so the URL is the link.

Widgets bind their value to a query key (``bind="query-params"`` with ``key`` = the URL key); this
module shows the current URL to copy. Links carry ids only, never code, tokens or API keys.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

# Query keys that must never appear in a link the app builds (an access token, keys typed in a page).
PRIVATE_KEYS = frozenset({"token", "api_key"})


def share_url(base: str, params: dict[str, str | list[str]]) -> str:
    """``base`` (the page's URL) with ``params`` as its query string, private keys dropped."""
    parts = urlsplit(base)
    query = urlencode({k: v for k, v in params.items() if k not in PRIVATE_KEYS}, doseq=True)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def copy_link_button(label: str = "Copy link") -> None:
    """A popover with this view's link in a code box (its copy icon puts it on the clipboard)."""
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    with st.popover(label, icon=":material/link:"):
        st.code(share_url(st.context.url or "", params), language=None, wrap_lines=True)
