"""Login: an API key typed into a form, checked against the API, kept only in this session's state."""

from __future__ import annotations

import streamlit as st

from oncograph_ui import session
from oncograph_ui.client import ApiError


def render() -> None:
    st.title("oncograph")
    st.write("Build cohorts across the Genomic, Imaging and Proteomic Data Commons, and export them for ML.")
    with st.form("login"):
        key = st.text_input("API key", type="password", help="`oncograph users add NAME` prints one")
        submitted = st.form_submit_button("Log in", type="primary")
    st.caption(f"API: {session.api_url()}")
    if submitted:
        if not key.strip():
            st.error("Type your API key.")
            return
        try:
            with st.spinner("Checking the key…"):
                session.log_in(key)
        except ApiError as exc:
            session.show_error(exc, "log in")
            return
        st.rerun()
