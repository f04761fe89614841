"""Prefect flows of oncograph (and, in later issues, the only code that imports ray)."""

__all__: list[str] = []
