"""/episode: built by its own issue (placeholder until then)."""

import streamlit as st

st.title("Episode")
st.info("This page is not built yet.")
