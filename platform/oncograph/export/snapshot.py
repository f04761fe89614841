"""Connections beside an export's own that read its snapshot.

An export reads everything in one REPEATABLE READ transaction (:mod:`oncograph.export.job`) whose snapshot it
exports (``pg_export_snapshot()``); a stream that runs beside the main one (the embedding vectors; the
clinical tables and download manifests, written on a second thread) imports it, so every read of an export
sees one state of the graph.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import sql
from sqlalchemy import Connection, Engine

from oncograph.export.tables import SERIAL_READS


@contextmanager
def snapshot_connection(engine: Engine, snapshot: str) -> Iterator[Connection]:
    """A read-only REPEATABLE READ connection of ``engine`` in the exported snapshot ``snapshot``, reading
    without parallel workers like the export's own; rolled back and returned to the pool afterwards."""
    with engine.connect() as plain:
        conn = plain.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        raw = conn.connection.driver_connection
        assert raw is not None
        # the transaction's first statement; a utility statement takes no bind parameters, so the snapshot
        # id (from pg_export_snapshot) is quoted as a literal
        conn.exec_driver_sql(
            sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)).as_string(raw)
        )
        conn.exec_driver_sql(SERIAL_READS)
        try:
            yield conn
        finally:
            conn.rollback()
