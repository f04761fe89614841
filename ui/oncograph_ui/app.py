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

# not `pages/`: Streamlit would serve a `pages/` folder beside this file as pages of their own, past the login
PAGES = Path(__file__).resolve().parent / "screens"

st.set_page_config(page_title="oncograph", page_icon=":material/hub:", layout="wide")

logged_in = bool(session.current_key())
# the pages are declared before the login check, so a link to any page (with its query parameters) survives
# the login form: the page it names runs once the key is accepted
navigation = st.navigation(
    [
        st.Page(PAGES / "builder.py", title="Cohort builder", icon=":material/tune:", default=True),
        st.Page(PAGES / "cohorts.py", url_path="cohorts", title="My cohorts", icon=":material/group:"),
        st.Page(PAGES / "export.py", url_path="export", title="Export", icon=":material/download:"),
        st.Page(PAGES / "patient.py", url_path="patient", title="Patient", icon=":material/person:"),
        st.Page(PAGES / "runs.py", url_path="runs", title="Runs", icon=":material/history:"),
    ],
    position="sidebar" if logged_in else "hidden",
)
if not logged_in:
    login.render()
    st.stop()
with st.sidebar:
    st.caption(f"API: {session.api_url()}")
    if st.session_state.get(session.KEY) and st.button("Log out", icon=":material/logout:"):
        session.log_out()
        st.rerun()
navigation.run()
