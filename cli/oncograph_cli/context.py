"""Build the store handles a command needs from settings (the CLI is the composition root)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from oncograph.db import get_engine, session_factory
from oncograph.db.migrate import MIGRATIONS_DIR, current_revision
from oncograph.errors import DatabaseError


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from oncograph.db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()
    assert head is not None, MIGRATIONS_DIR
    return head


def migrated_engine() -> Engine:
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
