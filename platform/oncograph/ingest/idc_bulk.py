"""Bulk-load mechanics of the IDC load (PostgreSQL manual, "Populating a Database"), inside its transaction.

- :func:`begin_bulk`/:func:`end_bulk`: session settings for the load, and per-row foreign key triggers
  skipped when the role may (``session_replication_role``), checked set-based by
  :func:`foreign_key_violations` instead;
- :func:`without_indexes`: a table's indexes dropped for a block of writes and built again after,
  when :func:`rebuild_worthwhile` says the writes are large enough to pay for it;
- :func:`copy_binary`: a binary ``COPY`` of pre-encoded chunks.

Functions run inside the caller's transaction and never commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.orm import Session

from oncograph.db.triggers import restore_row_triggers, skip_row_triggers
from oncograph.sources.idc import pgcopy

#: ``SET LOCAL`` for the load: hash joins and aggregates of a million rows stay in memory, index builds
#: sort in memory.
_SETTINGS: Final = {"work_mem": "256MB", "maintenance_work_mem": "512MB"}
#: Lineage columns hold the run's document and release (bound parameters, locked FOR KEY SHARE), so the
#: set-based check covers the columns whose values come from data.
_LINEAGE: Final = frozenset(
    {"source_document_id", "first_seen_release_id", "last_seen_release_id", "retired_release_id"}
)


def begin_bulk(session: Session, *, doc_id: int, release_id: int) -> bool:
    """Tune the transaction; returns whether per-row foreign key triggers are skipped.

    Triggers are skipped (``session_replication_role = replica``) only when the role may set it; the
    caller must then run :func:`foreign_key_violations` before committing. The run's document and release
    rows are locked as the triggers would lock them.
    """
    for name, value in _SETTINGS.items():
        session.execute(text(f"SET LOCAL {name} = '{value}'"))
    session.execute(text("SELECT 1 FROM source_document WHERE id = :d FOR KEY SHARE"), {"d": doc_id})
    session.execute(text("SELECT 1 FROM source_release WHERE id = :r FOR KEY SHARE"), {"r": release_id})
    return skip_row_triggers(session)


def end_bulk(session: Session, *, skipped_triggers: bool) -> None:
    """Restore the settings (the transaction may go on, e.g. in tests)."""
    for name in (*_SETTINGS, "enable_nestloop"):
        session.execute(text(f"SET LOCAL {name} = DEFAULT"))
    if skipped_triggers:
        restore_row_triggers(session)


def copy_binary(session: Session, target: str, chunks: Iterable[memoryview]) -> int:
    driver = session.connection().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur:
        with cur.copy(f"COPY {target} FROM STDIN (FORMAT binary)") as copy:
            copy.write(pgcopy.HEADER)
            for chunk in chunks:
                copy.write(chunk)
            copy.write(pgcopy.TRAILER)
        return int(cur.rowcount)


def changed(session: Session, statement: str, params: dict[str, Any]) -> int:
    """Run a data-changing statement; returns how many rows it changed."""
    return int(session.connection().execute(text(statement), params).rowcount)


def count(session: Session, table: str) -> int:
    return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def rebuild_worthwhile(session: Session, table: str, *, staged: int, release_id: int, empty: bool) -> bool:
    """Whether to write ``table`` without its indexes and build them after (see :func:`without_indexes`).

    Yes when the role owns the table and the load writes a large part of it: into an empty table, or a
    release the table has not seen yet (every row seen again moves ``last_seen``) with at least a fifth as
    many staged rows as the table has. A re-run of the same release writes (almost) nothing: no.
    """
    owner = "SELECT pg_has_role(c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = CAST(:t AS regclass)"
    if not session.execute(text(owner), {"t": table}).scalar_one():
        return False
    if empty:
        return True
    rows = session.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}
    ).scalar_one()
    if rows is None or rows < 0:  # never analyzed
        rows = count(session, table)
    if staged * 5 < rows:
        return False
    seen = f"SELECT EXISTS (SELECT 1 FROM {table} WHERE last_seen_release_id = :rel)"
    return not session.execute(text(seen), {"rel": release_id}).scalar_one()


@contextlib.contextmanager
def without_indexes(session: Session, table: str, enabled: bool) -> Iterator[None]:
    """With ``enabled``, drop ``table``'s indexes for the block (the primary key too when no foreign key
    references it) and create them again after it, exactly as they were."""
    recreate = _drop_indexes(session, table) if enabled else []
    yield
    for ddl in recreate:
        session.execute(text(ddl))


def _drop_indexes(session: Session, table: str) -> list[str]:
    """Drop ``table``'s indexes and unique constraints, and its primary key unless a foreign key references
    it; returns the statements that create them again exactly (names and definitions from the catalog)."""
    rows = session.execute(
        text(
            "SELECT quote_ident(c.conname), pg_get_constraintdef(c.oid), NULL FROM pg_constraint c "
            "WHERE c.conrelid = CAST(:t AS regclass) AND (c.contype = 'u' OR c.contype = 'p' AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.confrelid = c.conrelid)) "
            "UNION ALL SELECT quote_ident(i.relname), NULL, pg_get_indexdef(x.indexrelid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = CAST(:t AS regclass) "
            "AND NOT x.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
        ),
        {"t": table},
    ).all()
    recreate = []
    for name, constraint, index in rows:
        if constraint is not None:
            session.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {name}"))
            recreate.append(f"ALTER TABLE {table} ADD CONSTRAINT {name} {constraint}")
        else:
            session.execute(text(f"DROP INDEX {name}"))
            recreate.append(index)
    return recreate


def foreign_key_violations(session: Session, tables: Sequence[str]) -> list[str]:
    """Check the data foreign keys of ``tables`` set-based; returns ``"<constraint>: <n> values"`` for each
    broken one.

    Per table, one scan collects the distinct values of its foreign key columns (``GROUPING SETS``), and
    each set is anti-joined to its parent, instead of a trigger query per row and constraint.
    """
    keys = session.execute(
        text(
            "SELECT c.conname, c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, "
            "quote_ident(fa.attname) FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1] "
            "WHERE c.contype = 'f' AND cardinality(c.conkey) = 1 "
            "AND c.conrelid = ANY(CAST(:tables AS regclass[])) "
            "ORDER BY 2, 1"
        ),
        {"tables": list(tables)},
    ).all()
    by_table: dict[str, list[tuple[str, str, str, str]]] = {}
    for name, child, column, parent, key in keys:
        if column not in _LINEAGE:
            by_table.setdefault(child, []).append((name, f'"{column}"', parent, key))
    broken = []
    for child, fks in by_table.items():
        columns = sorted({column for _, column, _, _ in fks})
        checks = ", ".join(
            f"(SELECT count(*) FROM v WHERE v.{column} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {parent} p WHERE p.{key} = v.{column}))"
            for _, column, parent, key in fks
        )
        sets = ", ".join(f"({c})" for c in columns)
        counts = session.execute(
            text(
                f"WITH v AS MATERIALIZED (SELECT {', '.join(columns)} FROM {child} "
                f"GROUP BY GROUPING SETS ({sets})) "
                f"SELECT {checks}"
            )
        ).one()
        broken += [f"{name}: {n} values" for (name, *_), n in zip(fks, counts, strict=True) if n]
    return broken
