"""TTS Lab: the Streamlit entry point. It only declares the pages; each lives in ``pages/``.

Run with ``make run`` (or ``streamlit run app.py -- --db FILE``). Every page keeps its state in the
URL query string, so a link reopens the same view.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm must never fetch prices at import

import streamlit as st

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/lab.py", title="Controller lab", icon=":material/code:", url_path="lab"),
    st.Page("pages/frontier.py", title="Frontier", icon=":material/show_chart:", url_path="frontier"),
    st.Page("pages/explorer.py", title="Data explorer", icon=":material/grid_on:", url_path="explorer"),
    st.Page("pages/episode.py", title="Episode viewer", icon=":material/timeline:", url_path="episode"),
    st.Page("pages/discovery.py", title="Discovery", icon=":material/psychology:", url_path="discovery"),
]

st.set_page_config(page_title="TTS Lab", page_icon=":material/science:", layout="wide")
st.navigation(PAGES).run()
