"""The export's one-row-per-patient table, every fact of it computed in PostgreSQL.

One ``COPY`` gives each member's clinical columns, its overall-survival target (``SURVIVAL_RULES``, the
cohort engine's own SQL), its ``has_<modality>`` flags (the live modality definition, under the export's
scope) and its ``has_emb_<model>`` flags (the embeddings the export ships), ordered by case UUID. Nothing
per patient is held in Python: the table streams batch by batch, and only the split column is added on the
way out, by position (the splits are ordered by case id too; :mod:`oncograph.export.splits`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql
from sqlalchemy import Connection, Table, literal, select, union_all
from sqlalchemy.dialects import postgresql

from oncograph.access import Scope
from oncograph.cohorts.fields import MODALITIES
from oncograph.cohorts.modalities import live_modalities
from oncograph.cohorts.survival import outcomes_sql
from oncograph.db.models import CohortMember
from oncograph.export import vectors
from oncograph.export.schema import BOOL, CAT, I32, STR, embedding_column
from oncograph.export.tables import Query, copy_batches

#: The clinical columns, in the order of ``patients_schema`` (``patient_row`` is internal: it is dropped).
CLINICAL_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("patient_row", pa.int64()),
    ("case_id", STR),
    ("submitter_id", STR),
    ("project_id", CAT),
    ("program", CAT),
    ("primary_site", CAT),
    ("disease_type", CAT),
    ("idc_patient_ids", pa.list_(STR)),
    ("pdc_case_ids", pa.list_(STR)),
    ("sex", CAT),
    ("race", CAT),
    ("ethnicity", CAT),
    ("vital_status", CAT),
    ("age_at_index", I32),
    ("days_to_birth", I32),
    ("days_to_death", I32),
    ("primary_diagnosis", CAT),
    ("stage", CAT),
    ("ajcc_pathologic_stage", CAT),
    ("tumor_grade", CAT),
    ("age_at_diagnosis_days", I32),
)
_SURVIVAL_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("os_time_days", I32),
    ("os_event", BOOL),
    ("os_excluded_reason", CAT),
)
_DIALECT = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]


def columns(models: Sequence[str]) -> list[tuple[str, pa.DataType]]:
    """The columns :func:`patients_query` returns for an export shipping embeddings of ``models``."""
    return [
        *CLINICAL_COLUMNS,
        *_SURVIVAL_COLUMNS,
        *[(f"has_{m}", BOOL) for m in MODALITIES],
        *[(embedding_column(m), BOOL) for m in sorted(models)],
    ]


def _facts(version_id: int, scope: Scope) -> tuple[sql.Composable, dict[str, Any]]:
    """``(pid, kind, value)``: each member's modality labels (kind ``m``) and the models of the embeddings the
    export ships (kind ``e``), as one compiled statement (so its bound parameters have distinct names)."""
    member: Table = CohortMember.__table__  # type: ignore[assignment]
    members = select(member.c.patient_id).where(member.c.cohort_version_id == version_id)
    src = live_modalities(scope)
    emb = vectors.member_embeddings(version_id, scope)
    statement = union_all(
        select(src.pid.label("pid"), literal("m").label("kind"), src.value.label("value"))
        .select_from(*src.froms)
        .where(*src.where, src.pid.in_(members)),
        select(emb.c.patient_row, literal("e"), emb.c.model).distinct(),
    )
    compiled = statement.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
    return sql.SQL(str(compiled)), dict(compiled.params)


def patients_query(version_id: int, scope: Scope, models: Sequence[str]) -> Query:
    """Every member's row of ``patients.parquet`` (less ``split``), ordered by case UUID."""
    facts, params = _facts(version_id, scope)
    mine: dict[str, Any] = {"x_version": version_id}
    flags: list[sql.Composable] = []
    for i, m in enumerate(MODALITIES):
        mine[f"x_mod_{i}"] = m
        flag = sql.SQL("coalesce({} = ANY(fa.labels), false)").format(sql.Placeholder(f"x_mod_{i}"))
        if m == "embedding":  # a shipped embedding is an embedding modality, whatever the view says
            flag = sql.SQL("({} OR fa.models IS NOT NULL)").format(flag)
        flags.append(flag)
    for i, model in enumerate(sorted(models)):
        mine[f"x_model_{i}"] = model
        flags.append(sql.SQL("coalesce({} = ANY(fa.models), false)").format(sql.Placeholder(f"x_model_{i}")))
    clash = mine.keys() & params.keys()
    if clash:  # pragma: no cover - the compiler names parameters after columns, never x_*
        raise RuntimeError(f"parameter names clash: {sorted(clash)}")
    survival = outcomes_sql(
        "SELECT patient_id AS id FROM cohort_member WHERE cohort_version_id = %(x_version)s"
    )
    statement = sql.SQL(
        """
        WITH surv AS ({survival}),
        fa AS (
          SELECT pid,
                 array_agg(DISTINCT value) FILTER (WHERE kind = 'm') AS labels,
                 array_agg(DISTINCT value) FILTER (WHERE kind = 'e') AS models
          FROM ({facts}) AS facts GROUP BY pid)
        SELECT p.id, p.case_id::text, p.submitter_id, pr.project_id, pg.name, p.primary_site, p.disease_type,
          (SELECT string_agg(l.namespace || '/' || l.external_id, E'\\x1f' ORDER BY l.namespace, l.external_id)
             FROM identity_link l WHERE l.patient_id = p.id AND l.commons = 'idc'),
          (SELECT string_agg(l.external_id, E'\\x1f' ORDER BY l.external_id)
             FROM identity_link l WHERE l.patient_id = p.id AND l.commons = 'pdc'),
          d.sex, d.race, d.ethnicity, d.vital_status, d.age_at_index, d.days_to_birth, d.days_to_death,
          pd.primary_diagnosis, pd.stage, pd.ajcc_pathologic_stage, pd.tumor_grade, pd.age_at_diagnosis,
          CASE WHEN s.excluded IS NULL THEN s.time_days END,
          CASE WHEN s.excluded IS NULL THEN s.event END,
          CASE WHEN s.id IS NULL THEN 'patient_not_found' ELSE s.excluded END,
          {flags}
        FROM cohort_member m
        JOIN patient p ON p.id = m.patient_id
        LEFT JOIN project pr ON pr.id = p.project_id
        LEFT JOIN program pg ON pg.id = pr.program_id
        LEFT JOIN demographic d ON d.patient_id = p.id AND d.retired_release_id IS NULL
        LEFT JOIN LATERAL (
          SELECT x.primary_diagnosis, x.stage, x.ajcc_pathologic_stage, x.tumor_grade, x.age_at_diagnosis
          FROM diagnosis x WHERE x.patient_id = p.id AND x.retired_release_id IS NULL
          ORDER BY x.diagnosis_is_primary_disease IS TRUE DESC, x.days_to_diagnosis NULLS LAST,
                   x.age_at_diagnosis NULLS LAST, x.diagnosis_id
          LIMIT 1) pd ON true
        LEFT JOIN surv s ON s.id = p.id
        LEFT JOIN fa ON fa.pid = p.id
        WHERE m.cohort_version_id = %(x_version)s
        ORDER BY p.case_id
        """
    ).format(survival=sql.SQL(survival), facts=facts, flags=sql.SQL(",\n          ").join(flags))
    return Query(statement, {**params, **mine})


def strata_query(
    version_id: int, scope: Scope, fields: Sequence[str]
) -> tuple[Query, list[tuple[str, pa.DataType]]]:
    """``(patient_row, case_id, *fields)`` of every member, ordered by case UUID: the split's inputs. The
    same query as the table's (PostgreSQL computes only the columns asked for), so the strata are the
    table's values."""
    wanted = ["patient_row", "case_id", *fields]
    types = dict(columns(()))
    full = patients_query(version_id, scope, ())
    names = [n for n, _ in columns(())]
    statement = sql.SQL("SELECT {} FROM ({}) AS q({}) ORDER BY q.case_id::uuid").format(
        sql.SQL(", ").join(sql.Identifier("q", n) for n in wanted),
        full.statement,
        sql.SQL(", ").join(sql.Identifier(n) for n in names),
    )
    return Query(statement, full.params), [(n, types[n]) for n in wanted]


def strata_labels(batch: pa.RecordBatch, fields: Sequence[str]) -> pa.Array:
    """The stratum label of each row: the fields' values as Python would print them (``None``, ``True``),
    joined by `` × ``."""
    parts = []
    for f in fields:
        col = batch.column(f)
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        if pa.types.is_boolean(col.type):
            text = pc.if_else(col, "True", "False")
        else:
            text = pc.cast(col, pa.string())
        parts.append(pc.fill_null(text, "None"))
    if not parts:
        return pa.array([""] * batch.num_rows, pa.string())
    return pc.binary_join_element_wise(*parts, " × ")


def patient_batches(
    conn: Connection,
    version_id: int,
    scope: Scope,
    models: Sequence[str],
    schema: pa.Schema,
    split: pa.Array,
    case_ids: pa.Array,
) -> Iterator[pa.RecordBatch]:
    """``patients.parquet``'s batches: the query's columns plus ``split``, one value per member of
    ``case_ids`` (the members in case-id order, as :func:`strata_query` read them)."""
    offset = 0
    for batch in copy_batches(conn, patients_query(version_id, scope, models), columns(models)):
        if not batch.column("case_id").equals(case_ids.slice(offset, batch.num_rows)):
            raise RuntimeError(
                "the patients query and the splits disagree on the members: the snapshot moved"
            )
        part = split.slice(offset, batch.num_rows)
        offset += batch.num_rows
        arrays = {f.name: batch.column(f.name) for f in batch.schema}
        arrays["split"] = part
        yield pa.RecordBatch.from_arrays([arrays[f.name] for f in schema], schema=schema)
    if offset != len(split):
        raise RuntimeError(
            f"the patients query gave {offset} rows, the splits {len(split)}: the snapshot moved"
        )
