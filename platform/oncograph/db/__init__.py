"""The store: engines, sessions and the ORM models of the graph; migrations in :mod:`oncograph.db.migrate`
(imported on its own: Alembic is needed only to change the schema)."""

from oncograph.db.engine import database_url, get_engine, session_factory, transaction

__all__ = ["database_url", "get_engine", "session_factory", "transaction"]
