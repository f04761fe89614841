"""One harvest per source at a time: a PostgreSQL advisory lock held on its own connection.

A killed process's connection closes and the lock goes with it, so a crashed run never blocks the next one;
the next holder marks the runs that were left ``running`` as ``abandoned``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

from sqlalchemy import Connection, Engine, text

from oncograph.errors import OncographError


class SourceBusyError(OncographError):
    """Another run of the same source holds the lock."""


def lock_key(source: str) -> int:
    return int.from_bytes(hashlib.sha256(f"oncograph:{source}".encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def source_lock(bind: Engine | Connection, source: str, *, wait: bool = True) -> Iterator[None]:
    """Hold the advisory lock of ``source`` for the ``with`` block.

    Args:
        bind: an engine (a dedicated connection is opened) or a connection to lock on.
        source: e.g. ``gdc``, ``idc``, ``pdc``.
        wait: wait for a running harvest to finish (True) or fail at once (False).

    Raises:
        SourceBusyError: ``wait`` is False and another run holds the lock.
    """
    key = lock_key(source)
    with contextlib.ExitStack() as stack:
        conn = bind if isinstance(bind, Connection) else stack.enter_context(bind.connect())
        if wait:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        elif not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one():
            raise SourceBusyError(
                f"another {source} harvest is running", hint="wait for it to finish, or run without --no-wait"
            )
        if not isinstance(bind, Connection):
            conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            if not isinstance(bind, Connection):
                conn.commit()


def abandon_stale_runs(bind: Engine | Connection, transform: str) -> int:
    """Mark runs of ``transform`` still ``running`` as ``abandoned`` (call while holding the source lock)."""
    sql = text(
        "UPDATE run SET status = 'abandoned', finished_at = now(), "
        "error = coalesce(error, 'the process ended without finishing (killed or crashed)') "
        "WHERE transform = :t AND status = 'running'"
    )
    if isinstance(bind, Connection):
        return int(bind.execute(sql, {"t": transform}).rowcount)
    with bind.begin() as conn:
        return int(conn.execute(sql, {"t": transform}).rowcount)
