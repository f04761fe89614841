"""The set-based SQL of the IDC load (``oncograph.ingest.idc_import``): staging, merges, retirement.

Every function runs inside the caller's transaction and never commits. Identifiers in the generated SQL
come from the field lists of ``oncograph.sources.idc`` and the catalog, never from input; values are bound
parameters or come from the staging tables.

Staging is two ``COPY`` streams: the groups (one row per study, collection and patient: a few hundred
thousand rows), which become patients and studies, and the series. Into an empty ``imaging_series`` the
series are copied straight into the table with their study and patient ids (looked up per group on the
client); otherwise they go to a staging table and are merged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa
from sqlalchemy import text
from sqlalchemy.orm import Session

from oncograph.ingest import idc_bulk as bulk
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
_STUDY_COLUMNS: Final = ("study_date", "study_description", "patient_age", "patient_sex")
_SERIES: Final = tuple(f.name for f in SERIES_LEVEL)
_DIRECT_HEAD: Final = ("imaging_study_id", "idc_patient_id", "index_row", "row_hash", "source_document_id")
_SEEN: Final = "last_seen_release_id = :rel, retired_release_id = NULL"
_NOT_SEEN: Final = "(t.last_seen_release_id <> :rel OR t.retired_release_id IS NOT NULL)"


def stage_groups(session: Session, chunks: Iterable[memoryview]) -> None:
    """``COPY`` the groups in and derive the staged patients and studies from them."""
    session.execute(text(f"DROP TABLE IF EXISTS {_TEMP}"))
    columns = ", ".join(f"{n} {_PG_TYPE[_KIND[n]]}" for n in GROUP_FIELDS)
    session.execute(text(f"CREATE TEMP TABLE {STAGE}_group (group_id integer, {columns}) ON COMMIT DROP"))
    bulk.copy_binary(session, f"{STAGE}_group", chunks)
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
    """What a merge did to one table (``rebuilt``: its indexes were dropped and built again)."""

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


def _plan(session: Session, table: str, staged: int, params: dict[str, Any]) -> tuple[bool, bool]:
    empty = is_empty(session, table)
    return empty, bulk.rebuild_worthwhile(
        session, table, staged=staged, release_id=params["rel"], empty=empty
    )


def merge_patients(session: Session, params: dict[str, Any]) -> Merged:
    """Merge the staged patients (nothing to update but their lineage)."""
    staged = bulk.count(session, f"{STAGE}_patient")
    empty, rebuild = _plan(session, "idc_patient", staged, params)
    match = "t.collection_id = s.collection_id AND t.patient_id = s.patient_id"
    with bulk.without_indexes(session, "idc_patient", rebuild):
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
    staged = bulk.count(session, f"{STAGE}_study")
    empty, rebuild = _plan(session, "imaging_study", staged, params)
    values = ["collection_id", *_STUDY_COLUMNS]
    patient = "JOIN idc_patient p ON p.collection_id = s.collection_id AND p.patient_id = s.patient_id"
    updated = 0
    with bulk.without_indexes(session, "imaging_study", rebuild):
        if not empty:
            changed = "(t.idc_patient_id, {}) IS DISTINCT FROM (p.id, {})".format(
                ", ".join(f"t.{c}" for c in values), ", ".join(f"s.{c}" for c in values)
            )
            updated = bulk.changed(
                session,
                "UPDATE imaging_study t SET idc_patient_id = p.id, "
                f"{', '.join(f'{c} = s.{c}' for c in values)}, "
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
            else "NOT EXISTS (SELECT 1 FROM imaging_study t "
            "WHERE t.study_instance_uid = s.study_instance_uid)",
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
    rebuild = bulk.rebuild_worthwhile(
        session, "imaging_series", staged=rows, release_id=params["rel"], empty=True
    )
    columns = [*_DIRECT_HEAD, "first_seen_release_id", "last_seen_release_id", *_SERIES]
    with bulk.without_indexes(session, "imaging_series", rebuild):
        inserted = bulk.copy_binary(session, f"imaging_series ({', '.join(columns)})", chunks)
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
    staged = bulk.copy_binary(session, STAGE, chunks)
    session.execute(text("SET LOCAL default_statistics_target = 10"))  # a small sample is plenty
    session.execute(text(f"ANALYZE {STAGE}"))
    session.execute(text("SET LOCAL default_statistics_target = DEFAULT"))
    return staged


def merge_series(session: Session, params: dict[str, Any], *, staged: int) -> Merged:
    """Merge the staged series into a non-empty ``imaging_series``: rows whose ``row_hash`` changed are
    updated, rows seen again move ``last_seen``, new rows are inserted."""
    rebuild = bulk.rebuild_worthwhile(
        session, "imaging_series", staged=staged, release_id=params["rel"], empty=False
    )
    # A million staged rows join their table on the key: hash joins, always (the planner's estimate of the
    # staged join is far too low and it would choose nested loops).
    session.execute(text("SET LOCAL enable_nestloop = off"))
    sets = ", ".join(f"{c} = s.{c}" for c in ("index_row", "row_hash", *_SERIES))
    link = f"JOIN {STAGE}_link l ON l.group_id = s.group_id"
    with bulk.without_indexes(session, "imaging_series", rebuild):
        updated = bulk.changed(
            session,
            f"WITH s AS MATERIALIZED (SELECT s.* FROM {STAGE} s JOIN imaging_series t "
            "ON t.series_instance_uid = s.series_instance_uid WHERE t.row_hash IS DISTINCT FROM s.row_hash) "
            "UPDATE imaging_series t SET imaging_study_id = l.imaging_study_id, "
            f"idc_patient_id = l.idc_patient_id, {sets}, source_document_id = :doc, updated_at = now(), "
            f"{_SEEN} "
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


def _insert(
    session: Session, statement: str, source: str, new_only: str | None, params: dict[str, Any]
) -> int:
    """Run ``statement``, an ``INSERT ... SELECT`` over ``s``: every row of ``source``, or only those
    passing ``new_only`` (found first, so that only they are joined further)."""
    if new_only is None:
        rows = f"s AS NOT MATERIALIZED (SELECT * FROM {source})"
    else:
        rows = f"s AS MATERIALIZED (SELECT * FROM {source} s WHERE {new_only})"
    return bulk.changed(session, f"WITH {rows} {statement}", params)


def retire(session: Session, kind: str, *, release_id: int, collections: Sequence[str] | None) -> int:
    """Retire rows of ``kind`` in ``collections`` (all when ``None``) last seen in an older IDC release."""
    scope = "" if collections is None else " AND t.collection_id = ANY(:collections)"
    return bulk.changed(
        session,
        f"UPDATE {kind} t SET retired_release_id = :rel WHERE t.retired_release_id IS NULL "
        f"AND t.last_seen_release_id <> :rel{scope} AND t.last_seen_release_id IN "
        "(SELECT r.id FROM source_release r WHERE r.source = 'idc')",
        {"rel": release_id, "collections": list(collections or [])},
    )


def drop_staging(session: Session) -> None:
    """Drop the staging tables (they would go at commit; a test's transaction goes on)."""
    session.execute(text(f"DROP TABLE IF EXISTS {_TEMP}"))
