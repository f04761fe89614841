"""The store: engines, sessions, migrations and the ORM models of the graph."""

from oncograph.db.engine import database_url, get_engine, session_factory, transaction
from oncograph.db.migrate import upgrade

__all__ = ["database_url", "get_engine", "session_factory", "transaction", "upgrade"]
