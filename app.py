"""TTS Lab: the Streamlit entry point. It only declares the pages; each lives in ``views/``.

Not in ``pages/``: Streamlit treats a folder of that name as an old-style multipage app and would run a
deep link's page without this script (no access check, no navigation); see views/README.md.

Run with ``make run`` (or ``streamlit run app.py -- --db FILE``). Every page keeps its state in the
URL query string, so a link reopens the same view.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm must never fetch prices at import

import streamlit as st

from ui.access import require_access
from ui.stores import store_picker

PAGES = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/lab.py", title="Controller lab", icon=":material/code:", url_path="lab"),
    st.Page("views/frontier.py", title="Frontier", icon=":material/show_chart:", url_path="frontier"),
    st.Page("views/explorer.py", title="Data explorer", icon=":material/grid_on:", url_path="explorer"),
    st.Page("views/episode.py", title="Episode viewer", icon=":material/timeline:", url_path="episode"),
    st.Page("views/live.py", title="Live generation", icon=":material/bolt:", url_path="live"),
    st.Page("views/discovery.py", title="Discovery", icon=":material/psychology:", url_path="discovery"),
]

st.set_page_config(page_title="TTS Lab", page_icon=":material/science:", layout="wide")
require_access()  # before any page: a refused visitor sees one line and nothing runs
store_picker()  # this session's trajectory database (sidebar, and db= in the URL)
st.navigation(PAGES).run()
