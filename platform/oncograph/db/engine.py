"""Engines, sessions and the one transaction helper. Data-access functions take a Session and never commit."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from oncograph.db.embedded import embedded_url
from oncograph.db.iam import RdsIamPassword, sign_connections
from oncograph.settings import Settings, get_settings


def database_url(settings: Settings | None = None) -> str:
    """The configured server, or the embedded one under ``ONCOGRAPH_HOME`` (started if needed)."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    return embedded_url(settings.home_dir / "pg")


@functools.lru_cache(maxsize=8)
def engine_for(url: str, *, iam_auth: bool = False) -> Engine:
    """One pooled engine per URL per process; with ``iam_auth`` each new connection signs an RDS IAM token."""
    # validate before building the engine: a password in an IAM URL is a configuration error, not a pool
    password = RdsIamPassword(make_url(url)) if iam_auth else None
    # a pool sized for an API worker under concurrent clients (PostgreSQL's default max_connections is 100)
    engine = create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_timeout=30, future=True
    )
    if password is not None:
        sign_connections(engine, password)
    return engine


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    return engine_for(database_url(settings), iam_auth=settings.database_iam_auth)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """``with transaction(factory) as s:`` commits on success, rolls back on any error."""
    with factory() as session, session.begin():
        yield session
