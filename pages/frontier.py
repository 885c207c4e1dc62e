"""/frontier: built by its own issue (placeholder until then)."""

import streamlit as st

st.title("Frontier")
st.info("This page is not built yet.")
