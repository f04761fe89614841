"""The embedded PostgreSQL 16 + pgvector (the ``pgserver`` wheel), started on demand and reused."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from oncograph.errors import DatabaseError

log = logging.getLogger(__name__)


def embedded_url(pgdata: Path, *, database: str = "postgres") -> str:
    """Start (or reuse) the embedded server whose data directory is ``pgdata``; return its SQLAlchemy URL.

    The server keeps running after this process exits, so the next call (another CLI command, the API)
    connects in milliseconds instead of starting a cluster again.

    Raises:
        DatabaseError: the server could not be initialised or started.
    """
    url, _ = start_embedded(pgdata, database=database, keep_running=True)
    return url


def start_embedded(pgdata: Path, *, database: str = "postgres", keep_running: bool) -> tuple[str, Any]:
    """Start the embedded server; returns its URL and the ``pgserver`` handle.

    With ``keep_running=False`` the server stops when the handle's ``cleanup()`` is called or the process
    exits (tests and benchmarks use this so that no server outlives its temporary directory).
    """
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI)
            warnings.simplefilter("ignore")
            from pgserver import get_server  # type: ignore[attr-defined]
    except ImportError as exc:  # pragma: no cover - pgserver is a hard dependency
        raise DatabaseError(
            "the embedded PostgreSQL needs the 'pgserver' package",
            hint="run `make setup`, or set ONCOGRAPH_DATABASE_URL to a PostgreSQL server",
        ) from exc
    pgdata.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = get_server(pgdata, cleanup_mode=None if keep_running else "stop")
            uri: str = server.get_uri(database)
    except Exception as exc:
        raise DatabaseError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc}",
            hint="check that the directory is writable and not used by another PostgreSQL version, "
            "or set ONCOGRAPH_DATABASE_URL",
        ) from exc
    return to_sqlalchemy_url(uri), server


def to_sqlalchemy_url(uri: str) -> str:
    """``postgresql://user:@/db?host=/sock`` -> ``postgresql+psycopg://user:@/db?host=/sock``."""
    parts = urlsplit(uri)
    if parts.scheme not in {"postgresql", "postgres", "postgresql+psycopg"}:
        raise DatabaseError(f"not a PostgreSQL URL: {uri!r}")
    host = parse_qs(parts.query).get("host", [""])[0]
    log.debug("embedded postgres at %s (socket dir %s)", parts.path, host)
    return "postgresql+psycopg" + uri[len(parts.scheme) :]
