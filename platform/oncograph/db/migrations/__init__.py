"""Alembic migrations (package marker so the files ship with the wheel)."""
