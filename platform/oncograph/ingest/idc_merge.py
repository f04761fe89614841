"""The set-based SQL of the IDC load (``oncograph.ingest.idc_import``): staging, merges, retirement, checks.

Every function runs inside the caller's transaction and never commits. Identifiers in the generated SQL
come from the field lists of ``oncograph.sources.idc`` and the catalog, never from input; values are bound
parameters or come from the staging tables.

Staging is two ``COPY`` streams: the groups (one row per study, collection and patient: a few hundred
thousand rows), which become patients and studies, and the series. Into an empty ``imaging_series`` the
series are copied straight into the table with their study and patient ids (looked up per group on the
client); otherwise they go to a staging table and are merged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.orm import Session

from oncograph.sources.idc import GROUP_FIELDS, ROW_COLUMNS, SERIES_FIELDS, SERIES_LEVEL, EncodedBatch, pgcopy

STAGE: Final = "idc_stage"
_TEMP: Final = ", ".join(f"{STAGE}{suffix}" for suffix in ("", "_group", "_patient", "_study", "_link"))
_PG_TYPE: Final = {
    "key": 'text COLLATE "C"',
    "text": "text",
    "uuid": "uuid",
    "date": "date",
    "int4": "integer",
    "int8": "bigint",
    "float8": "double precision",
    "bytea": "bytea",
}
_KIND: Final = {f.name: f.kind for f in SERIES_FIELDS}
#: ``SET LOCAL`` for the load: hash joins and aggregates of a million rows stay in memory, index builds
#: sort in memory.
_SETTINGS: Final = {"work_mem": "256MB", "maintenance_work_mem": "512MB"}
_STUDY_COLUMNS: Final = ("study_date", "study_description", "patient_age", "patient_sex")
_SERIES: Final = tuple(f.name for f in SERIES_LEVEL)
_DIRECT_HEAD: Final = ("imaging_study_id", "idc_patient_id", "index_row", "row_hash", "source_document_id")
_SEEN: Final = "last_seen_release_id = :rel, retired_release_id = NULL"
_NOT_SEEN: Final = "(t.last_seen_release_id <> :rel OR t.retired_release_id IS NOT NULL)"
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
    allowed = session.execute(
        text(
            "SELECT current_setting('is_superuser') = 'on' "
            "OR has_parameter_privilege('session_replication_role', 'SET')"
        )
    ).scalar_one()
    if allowed:
        session.execute(text("SET LOCAL session_replication_role = replica"))
    return bool(allowed)


def end_bulk(session: Session, *, skipped_triggers: bool) -> None:
    """Drop the staging tables and restore the settings (the transaction may go on, e.g. in tests)."""
    session.execute(text(f"DROP TABLE IF EXISTS {_TEMP}"))
    for name in (*_SETTINGS, "enable_nestloop"):
        session.execute(text(f"SET LOCAL {name} = DEFAULT"))
    if skipped_triggers:
        session.execute(text("SET LOCAL session_replication_role = DEFAULT"))


def _copy(session: Session, target: str, chunks: Iterable[memoryview]) -> int:
    driver = session.connection().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur:
        with cur.copy(f"COPY {target} FROM STDIN (FORMAT binary)") as copy:
            copy.write(pgcopy.HEADER)
            for chunk in chunks:
                copy.write(chunk)
            copy.write(pgcopy.TRAILER)
        return int(cur.rowcount)


def stage_groups(session: Session, chunks: Iterable[memoryview]) -> None:
    """``COPY`` the groups in and derive the staged patients and studies from them."""
    session.execute(text(f"DROP TABLE IF EXISTS {_TEMP}"))
    columns = ", ".join(f"{n} {_PG_TYPE[_KIND[n]]}" for n in GROUP_FIELDS)
    session.execute(text(f"CREATE TEMP TABLE {STAGE}_group (group_id integer, {columns}) ON COMMIT DROP"))
    _copy(session, f"{STAGE}_group", chunks)
    session.execute(
        text(
            f"CREATE TEMP TABLE {STAGE}_patient ON COMMIT DROP AS "
            f"SELECT DISTINCT collection_id, patient_id FROM {STAGE}_group"
        )
    )
    # A study takes the smallest value of each study-level column over its series (they differ for a few
    # hundred studies in IDC v25) and, if its series name several patients, the smallest PatientID.
    aggregates = ", ".join(f"min({c}) AS {c}" for c in _STUDY_COLUMNS)
    session.execute(
        text(
            f"CREATE TEMP TABLE {STAGE}_study ON COMMIT DROP AS "
            f"SELECT DISTINCT ON (study_instance_uid) * FROM (SELECT study_instance_uid, collection_id, "
            f"min(patient_id) AS patient_id, {aggregates} FROM {STAGE}_group "
            "GROUP BY study_instance_uid, collection_id) g ORDER BY study_instance_uid, collection_id"
        )
    )
    session.execute(text(f"ANALYZE {STAGE}_group, {STAGE}_patient, {STAGE}_study"))


@dataclass(frozen=True, slots=True)
class Merged:
    """What a merge did to one table (``rebuilt``: its secondary indexes were dropped and built again)."""

    inserted: int
    updated: int
    unchanged: int
    empty: bool
    rebuilt: bool

    @property
    def counts(self) -> tuple[int, int, int]:
        return self.inserted, self.updated, self.unchanged


def is_empty(session: Session, table: str) -> bool:
    return bool(session.execute(text(f"SELECT NOT EXISTS (SELECT 1 FROM {table})")).scalar_one())


def rebuild_worthwhile(session: Session, table: str, *, staged: int, release_id: int, empty: bool) -> bool:
    """Whether to write ``table`` without its secondary indexes and build them after.

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
        rows = _count(session, table)
    if staged * 5 < rows:
        return False
    seen = f"SELECT EXISTS (SELECT 1 FROM {table} WHERE last_seen_release_id = :rel)"
    return not session.execute(text(seen), {"rel": release_id}).scalar_one()


@contextlib.contextmanager
def _without_indexes(session: Session, table: str, enabled: bool) -> Iterator[None]:
    """Drop ``table``'s unique constraints and indexes except the primary key for the block and create them
    again after it, exactly (names and definitions read from the catalog)."""
    recreate = _drop_secondary_indexes(session, table) if enabled else []
    yield
    for ddl in recreate:
        session.execute(text(ddl))


def _plan(session: Session, table: str, staged: int, params: dict[str, Any]) -> tuple[bool, bool]:
    empty = is_empty(session, table)
    return empty, rebuild_worthwhile(session, table, staged=staged, release_id=params["rel"], empty=empty)


def merge_patients(session: Session, params: dict[str, Any]) -> Merged:
    """Merge the staged patients (nothing to update but their lineage)."""
    staged = _count(session, f"{STAGE}_patient")
    empty, rebuild = _plan(session, "idc_patient", staged, params)
    match = "t.collection_id = s.collection_id AND t.patient_id = s.patient_id"
    with _without_indexes(session, "idc_patient", rebuild):
        if not empty:
            session.execute(
                text(
                    f"UPDATE idc_patient t SET {_SEEN} FROM {STAGE}_patient s WHERE {match} AND {_NOT_SEEN}"
                ),
                params,
            )
        inserted = _insert(
            session,
            "INSERT INTO idc_patient (collection_id, patient_id, source_document_id, first_seen_release_id, "
            "last_seen_release_id) SELECT s.collection_id, s.patient_id, :doc, :rel, :rel FROM s",
            f"{STAGE}_patient",
            None if empty else f"NOT EXISTS (SELECT 1 FROM idc_patient t WHERE {match})",
            params,
        )
    session.execute(text("ANALYZE idc_patient"))
    return Merged(inserted, 0, staged - inserted, empty, rebuild)


def merge_studies(session: Session, params: dict[str, Any]) -> Merged:
    """Merge the staged studies (a changed value or patient updates the study)."""
    staged = _count(session, f"{STAGE}_study")
    empty, rebuild = _plan(session, "imaging_study", staged, params)
    values = ["collection_id", *_STUDY_COLUMNS]
    patient = "JOIN idc_patient p ON p.collection_id = s.collection_id AND p.patient_id = s.patient_id"
    updated = 0
    with _without_indexes(session, "imaging_study", rebuild):
        if not empty:
            changed = "(t.idc_patient_id, {}) IS DISTINCT FROM (p.id, {})".format(
                ", ".join(f"t.{c}" for c in values), ", ".join(f"s.{c}" for c in values)
            )
            updated = _changed(
                session,
                f"UPDATE imaging_study t SET idc_patient_id = p.id, {', '.join(f'{c} = s.{c}' for c in values)}, "
                f"source_document_id = :doc, updated_at = now(), {_SEEN} FROM {STAGE}_study s {patient} "
                f"WHERE t.study_instance_uid = s.study_instance_uid AND {changed}",
                params,
            )
            session.execute(
                text(
                    f"UPDATE imaging_study t SET {_SEEN} FROM {STAGE}_study s "
                    f"WHERE t.study_instance_uid = s.study_instance_uid AND {_NOT_SEEN}"
                ),
                params,
            )
        inserted = _insert(
            session,
            f"INSERT INTO imaging_study (study_instance_uid, idc_patient_id, {', '.join(values)}, "
            "source_document_id, first_seen_release_id, last_seen_release_id) SELECT s.study_instance_uid, "
            f"p.id, {', '.join(f's.{c}' for c in values)}, :doc, :rel, :rel FROM s {patient}",
            f"{STAGE}_study",
            None
            if empty
            else "NOT EXISTS (SELECT 1 FROM imaging_study t WHERE t.study_instance_uid = s.study_instance_uid)",
            params,
        )
    session.execute(text("ANALYZE imaging_study"))
    return Merged(inserted, updated, staged - inserted - updated, empty, rebuild)


def link_groups(session: Session) -> None:
    """Each staged group's study and patient ids (after their merges)."""
    session.execute(
        text(
            f"CREATE TEMP TABLE {STAGE}_link ON COMMIT DROP AS SELECT g.group_id, st.id AS imaging_study_id, "
            f"p.id AS idc_patient_id FROM {STAGE}_group g "
            "JOIN imaging_study st ON st.study_instance_uid = g.study_instance_uid "
            "JOIN idc_patient p ON p.collection_id = g.collection_id AND p.patient_id = g.patient_id"
        )
    )
    session.execute(text(f"ANALYZE {STAGE}_link"))


def group_ids(session: Session) -> tuple[Any, Any]:
    """The linked ids as two int64 Arrow arrays indexed by group number (NULL where a group has none)."""
    rows = session.execute(text(f"SELECT group_id, imaging_study_id, idc_patient_id FROM {STAGE}_link")).all()
    size = max((r[0] for r in rows), default=-1) + 1
    studies: list[int | None] = [None] * size
    patients: list[int | None] = [None] * size
    for group, study, patient in rows:
        studies[group], patients[group] = study, patient
    return pa.array(studies, pa.int64()), pa.array(patients, pa.int64())


def copy_series(
    session: Session, chunks: Iterable[memoryview], params: dict[str, Any], *, rows: int
) -> Merged:
    """``COPY`` the series (chunks from :func:`direct_layout`, ``rows`` of them) straight into the empty
    ``imaging_series``."""
    rebuild = rebuild_worthwhile(session, "imaging_series", staged=rows, release_id=params["rel"], empty=True)
    columns = [*_DIRECT_HEAD, "first_seen_release_id", "last_seen_release_id", *_SERIES]
    with _without_indexes(session, "imaging_series", rebuild):
        inserted = _copy(session, f"imaging_series ({', '.join(columns)})", chunks)
    return Merged(inserted, 0, 0, True, rebuild)


def direct_layout(batch: EncodedBatch, *, ids: tuple[Any, Any], params: dict[str, Any]) -> memoryview:
    """The ``COPY`` tuples of :func:`copy_series`: ids looked up per group, lineage constants, the fields."""
    studies, patients = (pgcopy.encode_field(a.take(batch.groups), "int8") for a in ids)
    doc, rel = pgcopy.constant(params["doc"], "int8"), pgcopy.constant(params["rel"], "int4")
    head = [*studies, *patients, *batch.index_row, *batch.row_hash, *doc, *rel, *rel]
    return pgcopy.tuples(len(_DIRECT_HEAD) + 2 + len(_SERIES), [*head, batch.series])


def stage_layout(batch: EncodedBatch) -> memoryview:
    """The ``COPY`` tuples of :func:`stage_series`: the row columns, then the series fields."""
    head = [*batch.index_row, *batch.row_hash, *batch.group_id]
    return pgcopy.tuples(len(ROW_COLUMNS) + len(_SERIES), [*head, batch.series])


def stage_series(session: Session, chunks: Iterable[memoryview]) -> int:
    """``COPY`` the series (chunks from :func:`stage_layout`) into the staging table; returns the count."""
    columns = [f"{n} {_PG_TYPE[wire]}" for n, wire in ROW_COLUMNS]
    columns += [f"{n} {_PG_TYPE[_KIND[n]]}" for n in _SERIES]
    session.execute(text(f"CREATE TEMP TABLE {STAGE} ({', '.join(columns)}) ON COMMIT DROP"))
    staged = _copy(session, STAGE, chunks)
    session.execute(text("SET LOCAL default_statistics_target = 10"))  # a small sample is plenty
    session.execute(text(f"ANALYZE {STAGE}"))
    session.execute(text("SET LOCAL default_statistics_target = DEFAULT"))
    return staged


def merge_series(session: Session, params: dict[str, Any], *, staged: int) -> Merged:
    """Merge the staged series into a non-empty ``imaging_series``: rows whose ``row_hash`` changed are
    updated, rows seen again move ``last_seen``, new rows are inserted."""
    rebuild = rebuild_worthwhile(
        session, "imaging_series", staged=staged, release_id=params["rel"], empty=False
    )
    # A million staged rows join their table on the key: hash joins, always (the planner's estimate of the
    # staged join is far too low and it would choose nested loops).
    session.execute(text("SET LOCAL enable_nestloop = off"))
    sets = ", ".join(f"{c} = s.{c}" for c in ("index_row", "row_hash", *_SERIES))
    link = f"JOIN {STAGE}_link l ON l.group_id = s.group_id"
    with _without_indexes(session, "imaging_series", rebuild):
        updated = _changed(
            session,
            f"WITH s AS MATERIALIZED (SELECT s.* FROM {STAGE} s JOIN imaging_series t "
            "ON t.series_instance_uid = s.series_instance_uid WHERE t.row_hash IS DISTINCT FROM s.row_hash) "
            "UPDATE imaging_series t SET imaging_study_id = l.imaging_study_id, "
            f"idc_patient_id = l.idc_patient_id, {sets}, source_document_id = :doc, updated_at = now(), {_SEEN} "
            f"FROM s {link} WHERE t.series_instance_uid = s.series_instance_uid",
            params,
        )
        session.execute(
            text(
                f"UPDATE imaging_series t SET {_SEEN} FROM {STAGE} s "
                f"WHERE t.series_instance_uid = s.series_instance_uid AND {_NOT_SEEN}"
            ),
            params,
        )
        columns = ["index_row", "row_hash", *_SERIES]
        inserted = _insert(
            session,
            f"INSERT INTO imaging_series (imaging_study_id, idc_patient_id, {', '.join(columns)}, "
            "source_document_id, first_seen_release_id, last_seen_release_id) SELECT l.imaging_study_id, "
            f"l.idc_patient_id, {', '.join(f's.{c}' for c in columns)}, :doc, :rel, :rel FROM s {link}",
            STAGE,
            "NOT EXISTS (SELECT 1 FROM imaging_series t WHERE t.series_instance_uid = s.series_instance_uid)",
            params,
        )
    session.execute(text("SET LOCAL enable_nestloop = DEFAULT"))
    return Merged(inserted, updated, staged - inserted - updated, False, rebuild)


def _changed(session: Session, statement: str, params: dict[str, Any]) -> int:
    """Run a data-changing statement; returns how many rows it changed."""
    return int(session.connection().execute(text(statement), params).rowcount)


def _count(session: Session, table: str) -> int:
    return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _insert(
    session: Session, statement: str, source: str, new_only: str | None, params: dict[str, Any]
) -> int:
    """Run ``statement``, an ``INSERT ... SELECT`` over ``s``: every row of ``source``, or only those
    passing ``new_only`` (found first, so that only they are joined further)."""
    if new_only is None:
        rows = f"s AS NOT MATERIALIZED (SELECT * FROM {source})"
    else:
        rows = f"s AS MATERIALIZED (SELECT * FROM {source} s WHERE {new_only})"
    return _changed(session, f"WITH {rows} {statement}", params)


def _drop_secondary_indexes(session: Session, table: str) -> list[str]:
    """Drop ``table``'s unique constraints and indexes except the primary key; returns the statements that
    recreate them exactly (names and definitions from the catalog)."""
    rows = session.execute(
        text(
            "SELECT quote_ident(c.conname), pg_get_constraintdef(c.oid), NULL FROM pg_constraint c "
            "WHERE c.conrelid = CAST(:t AS regclass) AND c.contype = 'u' "
            "UNION ALL SELECT quote_ident(i.relname), NULL, pg_get_indexdef(x.indexrelid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = CAST(:t AS regclass) "
            "AND NOT x.indisprimary AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
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


def retire(session: Session, kind: str, *, release_id: int, collections: Sequence[str] | None) -> int:
    """Retire rows of ``kind`` in ``collections`` (all when ``None``) last seen in an older IDC release."""
    scope = "" if collections is None else " AND t.collection_id = ANY(:collections)"
    return _changed(
        session,
        f"UPDATE {kind} t SET retired_release_id = :rel WHERE t.retired_release_id IS NULL "
        f"AND t.last_seen_release_id <> :rel{scope} AND t.last_seen_release_id IN "
        "(SELECT r.id FROM source_release r WHERE r.source = 'idc')",
        {"rel": release_id, "collections": list(collections or [])},
    )


def foreign_key_violations(session: Session, tables: Sequence[str]) -> list[str]:
    """Check the data foreign keys of ``tables`` set-based; returns ``"<constraint>: <n> values"`` per broken one.

    Per table, one scan collects the distinct values of its foreign key columns (``GROUPING SETS``), and
    each set is anti-joined to its parent, instead of a trigger query per row and constraint.
    """
    keys = session.execute(
        text(
            "SELECT c.conname, c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, "
            "quote_ident(fa.attname) FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1] "
            "WHERE c.contype = 'f' AND cardinality(c.conkey) = 1 AND c.conrelid = ANY(CAST(:tables AS regclass[])) "
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
                f"WITH v AS MATERIALIZED (SELECT {', '.join(columns)} FROM {child} GROUP BY GROUPING SETS ({sets})) "
                f"SELECT {checks}"
            )
        ).one()
        broken += [f"{name}: {n} values" for (name, *_), n in zip(fks, counts, strict=True) if n]
    return broken
