"""The oncograph cohort builder (Streamlit): ``oncograph ui`` runs ``streamlit run`` on this file.

Without a key (typed in the login form, or ``ONCOGRAPH_API_KEY`` in the UI process's environment) only the
login page shows; with one, the pages below. Every page talks to the REST API through
:class:`oncograph_ui.client.ApiClient` only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

if __package__ in (None, ""):  # run by `streamlit run path/to/app.py`: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oncograph_ui import session
from oncograph_ui.views import login

PAGES = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="oncograph", page_icon=":material/hub:", layout="wide")

if not session.current_key():
    login.render()
    st.stop()

navigation = st.navigation(
    [
        st.Page(PAGES / "builder.py", title="Cohort builder", icon=":material/tune:", default=True),
        st.Page(PAGES / "cohorts.py", title="My cohorts", icon=":material/group:"),
        st.Page(PAGES / "export.py", title="Export", icon=":material/download:"),
        st.Page(PAGES / "patient.py", title="Patient", icon=":material/person:"),
        st.Page(PAGES / "runs.py", title="Runs", icon=":material/history:"),
    ]
)
with st.sidebar:
    st.caption(f"API: {session.api_url()}")
    if st.session_state.get(session.KEY) and st.button("Log out", icon=":material/logout:"):
        session.log_out()
        st.rerun()
navigation.run()
