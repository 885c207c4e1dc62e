"""The app as tests/e2e/test_fair_browser.py serves it: a page whose controller never returns (the
default, ``loop_page.py``: it holds its slot until Stop or a closed tab), beside the real lab and
frontier pages, whose replays and sweeps must wait for that slot in the same fair queue.
"""

from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[2]

st.set_page_config(page_title="TTS Lab (fair queue test)", layout="wide")
st.navigation([
    st.Page(ROOT / "tests" / "e2e" / "loop_page.py", title="Infinite loop", default=True),
    st.Page(ROOT / "views" / "lab.py", title="Controller lab", url_path="lab"),
    st.Page(ROOT / "views" / "frontier.py", title="Frontier", url_path="frontier"),
]).run()
