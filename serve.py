"""The app's server entry point: ``make run`` (private) and ``make serve`` (shared behind a token).

``streamlit run serve.py`` serves ``app.py`` as an ``st.App``, so that ``ui.access.TokenGate`` can
sit in front of every request when sharing (``TTSLAB_SHARE=1``; ``make serve`` sets it). The token
is ``TTSLAB_TOKEN`` or a random one, printed with the links at start. See README.md, "Sharing the app".
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm must never fetch prices at import

import streamlit as st
from streamlit import config

from ui import access

app = st.App("app.py", lifespan=access.announce, middleware=access.middleware(config.get_option("server.baseUrlPath")))
