"""The app as benchmarks/load_test.py serves it: app.py's home and lab pages, plus /loop, a page whose
controller never returns (run through ui.fair as pages run user code), for the class member who
writes one. Once /lab runs typed controllers, the load test types the loop there instead.
"""

from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent

st.set_page_config(page_title="TTS Lab (load test)", layout="wide")
st.navigation([
    st.Page(ROOT / "views" / "home.py", title="Home", default=True),
    st.Page(ROOT / "views" / "lab.py", title="Controller lab", url_path="lab"),
    st.Page(ROOT / "tests" / "e2e" / "loop_page.py", title="Infinite loop", url_path="loop"),
]).run()
