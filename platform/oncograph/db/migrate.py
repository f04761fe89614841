"""Schema migrations: the only way the schema is created (``oncograph db upgrade``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import OperationalError

from oncograph.errors import DatabaseError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision`` (idempotent).

    Raises:
        DatabaseError: the server cannot be reached.
    """
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with _reachable(engine), engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The applied revision, or None on an empty database.

    Raises:
        DatabaseError: the server cannot be reached.
    """
    from alembic.runtime.migration import MigrationContext

    with _reachable(engine), engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _reachable(engine: Engine) -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        url = engine.url.render_as_string(hide_password=True)
        raise DatabaseError(
            f"cannot connect to PostgreSQL at {url}: {str(exc.orig).splitlines()[0]}",
            hint="check ONCOGRAPH_DATABASE_URL, or unset it to use the embedded PostgreSQL",
        ) from exc
