"""Read a cohort version's tables out of PostgreSQL as streams of Arrow record batches.

Each table is one ``COPY (SELECT ...) TO STDOUT (FORMAT csv)`` ordered by a stable key (case UUID, then the
record's own UUID), parsed by Arrow's streaming CSV reader with explicit column types: PostgreSQL does the
joins and sorting, Arrow's C++ parser does the conversion, and memory stays at a few blocks whatever the size
of the cohort. Every query is either a SQLAlchemy Core statement (compiled with bound parameters, never with
literal values) or psycopg ``sql.SQL`` with named placeholders; values always travel as parameters. Table and
column names come from the models. The access predicates come from :mod:`oncograph.access.policy`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql
from sqlalchemy import (
    BigInteger,
    ClauseElement,
    Connection,
    Executable,
    Select,
    Subquery,
    Table,
    Text,
    and_,
    cast,
    func,
    literal,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, distinct_on
from sqlalchemy.engine import Dialect

from oncograph.access import Scope
from oncograph.access.policy import visible_file
from oncograph.db.columns import ColumnType, column_type
from oncograph.db.models import (
    CohortMember,
    DataFile,
    Diagnosis,
    Exposure,
    FilePatient,
    FollowUp,
    IdentityLink,
    Patient,
    Sample,
    Treatment,
)
from oncograph.db.models.base import LINEAGE_COLUMNS
from oncograph.db.models.imaging import IdcPatient, ImagingSeries, ImagingStudy
from oncograph.db.models.proteomics import PdcCase, PdcFile, PdcStudy, PdcStudyCase
from oncograph.export.schema import CAT, FILES_SCHEMA, STR, child_schema

#: Arrow's CSV reader block size (bytes of CSV per batch). The reader holds a few blocks in flight outside Arrow's
#: memory pool: 4 MiB blocks cost ~250 MB of RSS on 1.1M file rows, 1 MiB ~100 MB, at the same speed.
BLOCK_SIZE = 1 << 20

#: Long clinical tables: file stem -> model.
CHILD_TABLES: dict[str, type[Any]] = {
    "diagnoses": Diagnosis,
    "treatments": Treatment,
    "follow_ups": FollowUp,
    "exposures": Exposure,
    "samples": Sample,
}
_INTERNAL = {"id", "patient_id", "created_at", "updated_at", *LINEAGE_COLUMNS}
#: The Arrow type of a stored column type (:func:`oncograph.db.columns.column_type`); text is categorical or
#: an identifier string.
_ARROW: dict[ColumnType, pa.DataType] = {
    "bool": pa.bool_(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "float": pa.float64(),
}
_IDENTIFIERS = ("_id", "submitter_id", "therapeutic_agents", "icd_10_code", "morphology")


class _CopyReader(io.RawIOBase):
    """A read-only file over a psycopg COPY ... TO STDOUT stream."""

    def __init__(self, copy: Any) -> None:
        self._copy = copy
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buffer:
            chunk = self._copy.read()
            if not chunk:
                return 0
            self._buffer = bytes(chunk)
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


@dataclass(frozen=True)
class Query:
    """A query for COPY: psycopg ``sql`` with ``%(name)s`` placeholders and its ``params``, or a SQLAlchemy
    Core statement (its parameters stay bound)."""

    statement: sql.Composable | ClauseElement
    params: Mapping[str, Any] = field(default_factory=dict)

    def composed(self, dialect: Dialect) -> tuple[sql.Composable, Mapping[str, Any]]:
        """The query as psycopg ``sql`` and its parameters (a Core statement compiled for ``dialect``)."""
        if isinstance(self.statement, sql.Composable):
            return self.statement, self.params
        compiled = self.statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        # the compiled text keeps its %(name)s placeholders: values are bound by psycopg, never inlined
        return sql.SQL(str(compiled)), {**compiled.params, **self.params}

    def copy(self, conn: Connection, fmt: str) -> tuple[sql.Composable, Mapping[str, Any]]:
        """``COPY (query) TO STDOUT (FORMAT fmt)`` and its parameters, for psycopg's ``cursor.copy``."""
        inner, params = self.composed(conn.dialect)
        return sql.SQL("COPY ({}) TO STDOUT (FORMAT {})").format(inner, sql.SQL(fmt)), params


def copy_batches(
    conn: Connection, query: Query, columns: Sequence[tuple[str, pa.DataType]]
) -> Iterator[pa.RecordBatch]:
    """Stream ``query`` through COPY as record batches with exactly ``columns`` (names and types)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    names = [n for n, _ in columns]
    read_types = {n: (STR if _is_list(t) or pa.types.is_fixed_size_list(t) else t) for n, t in columns}
    statement, params = query.copy(conn, "csv")
    with raw.cursor() as cur, cur.copy(statement, params) as copy:
        source = io.BufferedReader(_CopyReader(copy), buffer_size=1 << 20)
        if not source.peek(1):
            return  # no rows: Arrow's reader refuses an empty stream
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_SIZE, use_threads=True),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=read_types,
                true_values=["t"],
                false_values=["f"],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        for batch in reader:
            yield _finish(batch, columns)


def _is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t))


def _finish(batch: pa.RecordBatch, columns: Sequence[tuple[str, pa.DataType]]) -> pa.RecordBatch:
    arrays = []
    for i, (_, t) in enumerate(columns):
        col = batch.column(i)
        if pa.types.is_fixed_size_list(t):
            inner = pc.utf8_slice_codeunits(col, 1, -1)  # "[1,2,3]" -> "1,2,3"
            parts = pc.split_pattern(inner, ",")
            flat = pc.cast(pc.list_flatten(parts), t.value_type)
            col = pa.FixedSizeListArray.from_arrays(flat, t.list_size)
        elif _is_list(t):
            parts = pc.split_pattern(pc.fill_null(col, ""), "\x1f")
            col = pc.if_else(pc.is_null(batch.column(i)), pa.scalar([], t), parts).cast(t)
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, names=[n for n, _ in columns])


def child_columns(model: type[Any]) -> list[tuple[str, pa.DataType, str]]:
    """(column, Arrow type, SQL select expression) of a clinical table, internal keys left out; a foreign key
    to a diagnosis becomes the diagnosis' GDC UUID."""
    table: Table = model.__table__
    out: list[tuple[str, pa.DataType, str]] = []
    for col in table.columns:
        if col.name in _INTERNAL:
            continue
        if col.name == "diagnosis_id" and isinstance(col.type, BigInteger):
            out.append(
                (
                    "diagnosis_id",
                    STR,
                    "(SELECT dx.diagnosis_id::text FROM diagnosis dx WHERE dx.id = t.diagnosis_id)",
                )
            )
            continue
        stored = column_type(col.type)
        t = _ARROW.get(stored) or (STR if stored == "uuid" or col.name.endswith(_IDENTIFIERS) else CAT)
        expr = f"t.{col.name}::text" if stored == "uuid" else f"t.{col.name}"
        out.append((col.name, t, expr))
    return out


def child_schema_of(name: str) -> pa.Schema:
    return child_schema(name, [(c, t) for c, t, _ in child_columns(CHILD_TABLES[name])])


def child_query(name: str, version_id: int) -> Query:
    model = CHILD_TABLES[name]
    cols = child_columns(model)
    key = next(c for c, _, _ in cols if c == f"{model.__tablename__}_id")
    statement = sql.SQL(
        "SELECT p.case_id::text, {cols} FROM cohort_member m JOIN patient p ON p.id = m.patient_id "
        "JOIN {table} t ON t.patient_id = p.id AND t.retired_release_id IS NULL "
        "WHERE m.cohort_version_id = %(version)s ORDER BY p.case_id, t.{key}"
    ).format(
        cols=sql.SQL(", ").join(sql.SQL(e) for _, _, e in cols),
        table=sql.Identifier(model.__tablename__),
        key=sql.Identifier(key),
    )
    return Query(statement, {"version": version_id})


def _t(model: type[Any]) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def _file_rows(version_id: int, scope: Scope, name: str = "rows") -> Subquery:
    """GDC files (visible ones), IDC series and PDC files of every member: a row per way a member reaches a
    file (``patient_row`` is internal)."""
    m, p = _t(CohortMember).alias("m"), _t(Patient).alias("p")
    fp, f = _t(FilePatient).alias("fp"), _t(DataFile).alias("f")
    members = m.join(p, p.c.id == m.c.patient_id)
    of_version = m.c.cohort_version_id == version_id
    text_null = cast(null(), Text())
    gdc = (
        select(
            p.c.id.label("patient_row"),
            p.c.case_id.label("case_id"),
            literal("gdc").label("source"),
            cast(f.c.file_id, Text()).label("file_id"),
            f.c.file_name,
            f.c.data_category,
            f.c.data_type,
            f.c.experimental_strategy,
            f.c.data_format,
            f.c.access,
            f.c.file_size,
            f.c.md5sum,
            (literal("https://api.gdc.cancer.gov/data/") + cast(f.c.file_id, Text())).label("url"),
            text_null.label("modality"),
            text_null.label("collection_id"),
            text_null.label("study_id"),
        )
        .select_from(members.join(fp, fp.c.patient_id == p.c.id).join(f, f.c.id == fp.c.file_id))
        .where(of_version, visible_file(scope, f, fp.c.patient_id))
    )
    link, ip = _t(IdentityLink).alias("l"), _t(IdcPatient).alias("ip")
    series, study = _t(ImagingSeries).alias("s"), _t(ImagingStudy).alias("st")
    idc = (
        select(
            p.c.id,
            p.c.case_id,
            literal("idc"),
            series.c.series_instance_uid,
            text_null,
            literal("Imaging"),
            series.c.sop_class_name,
            text_null,
            literal("DICOM"),
            literal("open"),
            cast(func.round(series.c.series_size_mb * 1000000), BigInteger),
            text_null,
            series.c.series_aws_url,
            series.c.modality,
            series.c.collection_id,
            study.c.study_instance_uid,
        )
        .select_from(
            members.join(link, and_(link.c.patient_id == p.c.id, link.c.commons == "idc"))
            .join(
                ip,
                and_(
                    ip.c.collection_id == link.c.namespace,
                    ip.c.patient_id == link.c.external_id,
                    ip.c.retired_release_id.is_(None),
                ),
            )
            .join(series, and_(series.c.idc_patient_id == ip.c.id, series.c.retired_release_id.is_(None)))
            .join(study, study.c.id == series.c.imaging_study_id)
        )
        .where(of_version)
    )
    plink = _t(IdentityLink).alias("pl")
    pc_, sc = _t(PdcCase).alias("pc"), _t(PdcStudyCase).alias("sc")
    ps, pf = _t(PdcStudy).alias("ps"), _t(PdcFile).alias("pf")
    pdc = (
        select(
            p.c.id,
            p.c.case_id,
            literal("pdc"),
            cast(pf.c.file_id, Text()),
            pf.c.file_name,
            pf.c.data_category,
            pf.c.file_type,
            text_null,
            pf.c.file_format,
            literal("open"),
            pf.c.file_size,
            pf.c.md5sum,
            pf.c.file_location,
            text_null,
            text_null,
            ps.c.pdc_study_id,
        )
        .select_from(
            members.join(plink, and_(plink.c.patient_id == p.c.id, plink.c.commons == "pdc"))
            .join(
                pc_,
                and_(
                    cast(pc_.c.case_id, Text()) == plink.c.external_id,
                    pc_.c.retired_release_id.is_(None),
                ),
            )
            .join(sc, and_(sc.c.case_row_id == pc_.c.id, sc.c.retired_release_id.is_(None)))
            .join(ps, and_(ps.c.id == sc.c.study_row_id, ps.c.retired_release_id.is_(None)))
            .join(pf, and_(pf.c.study_row_id == ps.c.id, pf.c.retired_release_id.is_(None)))
        )
        .where(of_version)
    )
    return union_all(gdc, idc, pdc).subquery(name)


def files_query(version_id: int, scope: Scope) -> Query:
    """``files.parquet``: one row per (member, file), with how many members hold the file."""
    rows = _file_rows(version_id, scope)
    r = rows.c
    k = _file_rows(version_id, scope, "keys").c
    holders = (
        select(k.source, k.file_id, func.count().label("n")).group_by(k.source, k.file_id).subquery("holders")
    )
    statement = (
        select(
            cast(r.case_id, Text()),
            r.source,
            r.file_id,
            r.file_name,
            r.data_category,
            r.data_type,
            r.experimental_strategy,
            r.data_format,
            r.access,
            r.file_size,
            r.md5sum,
            r.url,
            r.modality,
            r.collection_id,
            r.study_id,
            holders.c.n,
        )
        .join_from(rows, holders, and_(holders.c.source == r.source, holders.c.file_id == r.file_id))
        .ext(distinct_on(r.case_id, r.source, r.file_id))
        .order_by(r.case_id, r.source, r.file_id)
    )
    return Query(statement)


def shared_sets_query(version_id: int, scope: Scope) -> Select[Any]:
    """``(ids, files)``: each distinct set (a sorted ``patient.id`` array) of two or more members that hold one
    file, and how many files it holds: the edges of the split groups (:func:`oncograph.export.splits.groups`),
    computed in PostgreSQL."""
    r = _file_rows(version_id, scope).c
    holders = (
        select(func.array_agg(aggregate_order_by(r.patient_row.distinct(), r.patient_row)).label("ids"))
        .group_by(r.source, r.file_id)
        .having(func.count(r.patient_row.distinct()) > 1)
        .subquery("holders")
    )
    return select(holders.c.ids, func.count()).group_by(holders.c.ids).order_by(holders.c.ids)


def gdc_manifest_query(version_id: int, scope: Scope) -> Executable:
    """Distinct visible GDC files of the members, for gdc-client's manifest (id filename md5 size state)."""
    m, fp, f = _t(CohortMember).alias("m"), _t(FilePatient).alias("fp"), _t(DataFile).alias("f")
    empty = literal("")
    return (
        select(
            cast(f.c.file_id, Text()),
            func.coalesce(f.c.file_name, empty),
            func.coalesce(f.c.md5sum, empty),
            func.coalesce(cast(f.c.file_size, Text()), empty),
            func.coalesce(f.c.state, empty),
        )
        .distinct()
        .select_from(m.join(fp, fp.c.patient_id == m.c.patient_id).join(f, f.c.id == fp.c.file_id))
        .where(m.c.cohort_version_id == version_id, visible_file(scope, f, fp.c.patient_id))
        .order_by(cast(f.c.file_id, Text()))
    )


def idc_manifest_query(version_id: int) -> Executable:
    """Distinct S3 URLs of the members' IDC series (live), for s5cmd (bound parameter ``v``)."""
    return text(
        "SELECT DISTINCT s.series_aws_url FROM cohort_member m "
        "JOIN identity_link l ON l.patient_id = m.patient_id AND l.commons = 'idc' "
        "JOIN idc_patient ip ON ip.collection_id = l.namespace AND ip.patient_id = l.external_id "
        "AND ip.retired_release_id IS NULL "
        "JOIN imaging_series s ON s.idc_patient_id = ip.id AND s.retired_release_id IS NULL "
        "WHERE m.cohort_version_id = :v AND s.series_aws_url IS NOT NULL ORDER BY 1"
    )


def files_columns() -> list[tuple[str, pa.DataType]]:
    return [(f.name, f.type) for f in FILES_SCHEMA]
