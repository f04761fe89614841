"""Database helpers shared by fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker


def refuse_non_test(url: str) -> None:
    """The safety check of every test database: its name must contain 'test'."""
    name = make_url(url).database or ""
    if "test" not in name:
        raise RuntimeError(f"refusing to run tests against database {name!r}: its name must contain 'test'")


def clone_database(server_url: str, template: str, name: str) -> str:
    """(Re)create database ``name`` as a copy of the database at URL ``template``; returns its URL.

    Other sessions on the template are closed first (see :func:`release_template`); callers that hold an
    engine on it dispose it before, so that its pool reconnects afterwards.
    """
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        release_template(conn, make_url(template).database or "")
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template).database}"'))
    admin.dispose()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    refuse_non_test(url)
    return url


def create_empty_database(server_url: str, name: str) -> str:
    """A new database ``name`` with no tables (dropped first if it exists); returns its URL."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name`` (a clone that would otherwise stay until the session ends)."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def rolled_back(engine: Engine) -> Iterator[Connection]:
    """A connection inside an outer transaction that is rolled back at the end."""
    with engine.connect() as conn:
        outer = conn.begin()
        try:
            yield conn
        finally:
            outer.rollback()


def joining_sessions(conn: Connection) -> sessionmaker[Session]:
    """A session factory whose sessions join ``conn``'s outer transaction (commits become savepoints)."""
    return sessionmaker(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)


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
