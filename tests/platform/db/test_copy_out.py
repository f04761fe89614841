"""``COPY ... TO STDOUT`` read in blocks straight from libpq (``db.copy_out``), on a real server: the bytes are
psycopg's own, errors are psycopg's, and a stream left early leaves a connection that rolls back and works."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

from oncograph.db.copy_out import copy_out

ROWS = sql.SQL(
    "COPY (SELECT g, repeat('x', g %% 50), %(tag)s::text FROM generate_series(1, 200000) g) TO STDOUT"
)


@pytest.fixture()
def raw(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg connection of the test database with a transaction open, as in an export."""
    pooled = engine.raw_connection()
    conn = pooled.driver_connection
    assert isinstance(conn, psycopg.Connection)
    conn.execute("SELECT 1")
    try:
        yield conn
    finally:
        conn.rollback()
        pooled.close()


def test_blocks_hold_whole_rows_and_equal_psycopgs_copy(raw: psycopg.Connection[Any]) -> None:
    blocks = list(copy_out(raw, ROWS, {"tag": "it's"}, block_bytes=1 << 16))
    with raw.cursor() as cur, cur.copy(ROWS, {"tag": "it's"}) as copy:
        expected = b"".join(bytes(chunk) for chunk in copy)
    assert b"".join(blocks) == expected
    assert expected.count(b"\n") == 200_000 and b"\tit's\n" in expected  # the value bound, quoted by libpq
    assert len(blocks) > 10 and all(block.endswith(b"\n") for block in blocks)
    assert raw.execute("SELECT 2").fetchone() == (2,)  # the connection is idle in its transaction again


def test_an_error_in_the_query_is_psycopgs_and_the_connection_rolls_back(
    raw: psycopg.Connection[Any],
) -> None:
    failing = sql.SQL("COPY (SELECT 1 / (g - 150000) FROM generate_series(1, 200000) g) TO STDOUT")
    with pytest.raises(psycopg.errors.DivisionByZero):
        for _ in copy_out(raw, failing):
            pass
    raw.rollback()
    raw.execute("SELECT 1")
    with pytest.raises(psycopg.errors.UndefinedTable):
        list(copy_out(raw, sql.SQL("COPY (SELECT * FROM no_such_table) TO STDOUT")))
    raw.rollback()
    assert raw.execute("SELECT 3").fetchone() == (3,)


def test_a_stream_left_early_is_cancelled_and_the_connection_rolls_back(raw: psycopg.Connection[Any]) -> None:
    blocks = copy_out(raw, sql.SQL("COPY (SELECT g FROM generate_series(1, 3000000) g) TO STDOUT"))
    assert next(blocks).startswith(b"1\n2\n")
    blocks.close()
    raw.rollback()
    assert raw.execute("SELECT 4").fetchone() == (4,)


def test_outside_a_transaction_it_refuses(raw: psycopg.Connection[Any]) -> None:
    raw.rollback()
    with pytest.raises(psycopg.ProgrammingError, match="begin it first"):
        next(copy_out(raw, ROWS, {"tag": "t"}))
