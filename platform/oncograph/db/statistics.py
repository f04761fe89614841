"""Planner statistics kept honest where one statement adds many rows of a new key value.

A cohort version's members arrive in one ``COPY``; until autovacuum analyses ``cohort_member``, the planner
estimates one row for the new version (every known version is a most-common value, so an unknown one gets
the minimum) and plans nested loops that run 10,000 × 100,000 times: an export of a fresh 10k-member version
once ran for over 15 minutes in one query. :func:`analyze_if_underestimated` compares the planner's estimate
with the known row count and analyses the table when it is off by more than ten times (~0.1–0.3 s).
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

#: (table, column) pairs this module may analyse: names never come from callers' data.
_KNOWN = {("cohort_member", "cohort_version_id")}


def estimated_rows(engine: Engine, table: str, column: str, value: int) -> int:
    """The planner's estimate of the rows of ``table`` where ``column = value``."""
    if (table, column) not in _KNOWN:
        raise ValueError(f"{table}.{column} is not a column whose statistics are checked here")
    with engine.connect() as conn:
        plan = conn.execute(
            text(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {table} WHERE {column} = :v"), {"v": value}
        ).scalar_one()
    return int(plan[0]["Plan"]["Plan Rows"])


def analyze_if_underestimated(engine: Engine, table: str, column: str, value: int, rows: int) -> bool:
    """``ANALYZE table`` (on a connection of its own, committed at once, so an open snapshot's planning sees
    it) when the planner expects under a tenth of ``rows`` for ``column = value``. Returns whether it did.
    A role that may not analyse the table is logged and left to autovacuum."""
    if rows < 1000 or estimated_rows(engine, table, column, value) * 10 >= rows:
        return False
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"ANALYZE {table}"))
    except DBAPIError as exc:
        log.warning("could not ANALYZE %s (%s); plans may be poor until autovacuum does", table, exc.orig)
        return False
    return True
