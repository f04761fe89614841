"""Helpers of the API tests: a private copy of the sample graph (:class:`ApiDb`) and the problem-shape check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from oncograph.access import Scope, add_principal, get_principal, grant, issue_key, scope_for
from oncograph.db import session_factory, transaction
from oncograph.settings import Settings
from oncograph_api.app import create_app


class ApiDb:
    """A private copy of the sample graph, and helpers to call the API on it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url)
        self.sessions = session_factory(self.engine)

    def client(self, *, min_cell_count: int = 0) -> TestClient:
        """A client of the real app; server errors come back as responses (never raised into the test)."""
        settings = Settings(database_url=self.url, min_cell_count=min_cell_count)
        return TestClient(create_app(self.engine, settings), raise_server_exceptions=False)

    def user(self, name: str, role: str = "viewer", grants: Sequence[str] = ()) -> dict[str, str]:
        """A new principal with a fresh key; returns the request headers that carry the key."""
        with transaction(self.sessions) as s:
            add_principal(s, name, role)
            for project in grants:
                grant(s, name, project, granted_by="test")
            key = issue_key(s, name).key
        return {"X-API-Key": key}

    def scope(self, name: str) -> Scope:
        with transaction(self.sessions) as s:
            return scope_for(s, get_principal(s, name))

    def session(self) -> Session:
        return self.sessions()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar_one()

    def execute(self, sql: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(sql), params)


PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem document with ``status`` and no traceback; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["type"].startswith("urn:oncograph:problem:")
    assert "Traceback" not in response.text
    return body
