"""Build the store handles a command needs from settings (the CLI is the composition root)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from oncograph.db import get_engine, session_factory, transaction
from oncograph.errors import DatabaseError, OncographError
from oncograph_cli.output import exit_with_error

T = TypeVar("T")


def head_revision() -> str:
    # Alembic is imported when a command opens the store, not when the CLI starts (`--help` stays fast).
    from alembic.script import ScriptDirectory

    from oncograph.db.migrate import MIGRATIONS_DIR, alembic_config

    head = ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()
    assert head is not None, MIGRATIONS_DIR
    return head


def migrated_engine() -> Engine:
    from oncograph.db.migrate import current_revision

    engine = get_engine()
    revision = current_revision(engine)
    if revision != head_revision():
        raise DatabaseError(
            f"the database schema is at revision {revision or 'none'}, not {head_revision()}",
            hint="run `oncograph db upgrade` first",
        )
    return engine


def store() -> sessionmaker[Session]:
    return session_factory(migrated_engine())


def in_transaction(work: Callable[[Session], T]) -> T:
    """``work(session)`` in one transaction on the migrated database, committed when it returns.

    An :class:`~oncograph.errors.OncographError` (from ``work`` or from opening the store) exits with its
    message. Read what the result needs from ORM rows inside ``work``: they expire at the commit.
    """
    try:
        with transaction(store()) as s:
            return work(s)
    except OncographError as exc:
        exit_with_error(str(exc))
