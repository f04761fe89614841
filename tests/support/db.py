"""Database helpers shared by fixtures."""

from __future__ import annotations

from sqlalchemy import Connection, text


def release_template(conn: Connection, database: str) -> None:
    """Close other sessions on ``database`` (idle pooled connections of this test process), which
    ``CREATE DATABASE ... TEMPLATE`` refuses to copy under; their pools re-connect (pre-ping)."""
    conn.execute(
        text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = :d AND pid <> pg_backend_pid()"
        ),
        {"d": database},
    )
