"""/explorer: built by its own issue (placeholder until then)."""

import streamlit as st

st.title("Explorer")
st.info("This page is not built yet.")
