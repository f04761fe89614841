"""Who the UI talks to and as whom: the API's URL, the key, and the one :class:`ApiClient` of a session.

The key is typed into the login form and kept only in ``st.session_state`` (server-side: the browser never
holds it), or, for one person on their own machine, read by the UI *process* from ``ONCOGRAPH_API_KEY``.
``ONCOGRAPH_API_URL`` says where the API is (default: the local ``oncograph serve`` address).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import streamlit as st

from oncograph_ui.client import DEFAULT_API_URL, ApiClient, ApiError

KEY = "oncograph_api_key"
T = TypeVar("T")


def api_url() -> str:
    return os.environ.get("ONCOGRAPH_API_URL") or DEFAULT_API_URL


def current_key() -> str | None:
    return st.session_state.get(KEY) or os.environ.get("ONCOGRAPH_API_KEY") or None


def client() -> ApiClient:
    """The session's client (made once per session and key)."""
    key = current_key()
    cached = st.session_state.get("_oncograph_client")
    if cached is None or cached[0] != key:
        cached = (key, ApiClient(api_url(), key))
        st.session_state["_oncograph_client"] = cached
    api: ApiClient = cached[1]
    return api


def log_in(key: str) -> dict[str, Any]:
    """Check ``key`` against the API (it must list cohorts, which every record-level key may) and keep it.

    Raises:
        ApiError: the key is refused or the API is unreachable.
    """
    probe = ApiClient(api_url(), key.strip())
    try:
        probe.health()
        probe.fields()
    finally:
        probe.close()
    st.session_state[KEY] = key.strip()
    return {"ok": True}


def log_out() -> None:
    st.session_state.pop(KEY, None)
    st.session_state.pop("_oncograph_client", None)


def show_error(exc: ApiError, what: str) -> None:
    """An API error as a readable message (never a traceback)."""
    st.error(f"Could not {what}: {exc}", icon=":material/error:")


def call(what: str, fn: Callable[[], T]) -> T | None:
    """``fn()`` under a spinner; an :class:`ApiError` is shown as a message and gives None."""
    try:
        with st.spinner(f"{what[:1].upper()}{what[1:]}…"):
            return fn()
    except ApiError as exc:
        show_error(exc, what)
        return None


@contextmanager
def api_errors(what: str) -> Iterator[None]:
    try:
        yield
    except ApiError as exc:
        show_error(exc, what)


__all__ = ["KEY", "api_errors", "api_url", "call", "client", "current_key", "log_in", "log_out", "show_error"]


def page_link(page: str, label: str, icon: str | None = None, **params: Any) -> None:
    """A link to another page of the app (``builder``, ``cohorts``, ``export``, ``patient``, ``runs``) with
    query parameters; where the page runs on its own (no navigation, as in tests), a plain link."""
    from urllib.parse import urlencode

    from streamlit.errors import StreamlitAPIException

    query = {k: str(v) for k, v in params.items() if v is not None}
    try:
        st.page_link(f"screens/{page}.py", label=label, icon=icon, query_params=query or None)
    except StreamlitAPIException:
        st.markdown(f"[{label}](/{page}{'?' + urlencode(query) if query else ''})")
