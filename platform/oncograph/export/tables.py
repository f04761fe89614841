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
    FromClause,
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
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, distinct_on
from sqlalchemy.engine import Dialect

from oncograph.access import Scope
from oncograph.access.policy import visible_file
from oncograph.db.columns import ColumnType, column_type
from oncograph.db.copy_out import copy_out
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

#: Every read of an export runs without parallel workers (``SET LOCAL``, on each of its connections): each
#: query feeds one COPY stream that the client parses as it arrives, and on the 100k benchmark the workers
#: cost a third more server CPU for no shorter wall time (the files query: 8.5 s of CPU with two workers,
#: 6.4 s without, 6.4-6.8 s of wall time either way), CPU the client then lacks.
SERIAL_READS = "SET LOCAL max_parallel_workers_per_gather = 0"

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


class _BlockReader(io.RawIOBase):
    """A read-only file over blocks of bytes (:func:`oncograph.db.copy_out.copy_out`)."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._block = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._block:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._block = memoryview(block)
        n = min(len(b), len(self._block))
        b[:n] = self._block[:n]
        self._block = self._block[n:]
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
    blocks = copy_out(raw, statement, params)
    try:
        source = io.BufferedReader(_BlockReader(blocks), buffer_size=1 << 20)
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
        try:
            for batch in reader:
                yield _finish(batch, columns)
        finally:
            reader.close()  # its read-ahead stops before the stream below is closed
    finally:
        blocks.close()  # a stream left early is cancelled (copy_out)


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


def _file_rows(version_id: int, scope: Scope, name: str = "rows", *, holders: bool = False) -> Subquery:
    """GDC files (visible ones), IDC series and PDC files of every member: a row per way a member reaches a
    file (``patient_row`` is internal). With ``holders``, each row also has ``n``: how many members hold its
    file, counted per source by internal key (a GDC file: its visible ``file_patient`` rows of members; an
    IDC series: the members' links to its IDC patient, one each; a PDC file: the distinct members of its
    rows), so the wide rows are read once and no text key is aggregated."""
    m, p = _t(CohortMember).alias("m"), _t(Patient).alias("p")
    fp, f = _t(FilePatient).alias("fp"), _t(DataFile).alias("f")
    members = m.join(p, p.c.id == m.c.patient_id)
    of_version = m.c.cohort_version_id == version_id
    text_null = cast(null(), Text())
    gdc_from = members.join(fp, fp.c.patient_id == p.c.id).join(f, f.c.id == fp.c.file_id)
    gdc_visible = visible_file(scope, f, fp.c.patient_id)
    gdc_columns: list[Any] = [
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
    ]
    if holders:
        m2, fp2, f2 = _t(CohortMember).alias("m2"), _t(FilePatient).alias("fp2"), _t(DataFile).alias("f2")
        gdc_n = (
            select(fp2.c.file_id.label("key"), func.count().label("n"))
            .select_from(m2.join(fp2, fp2.c.patient_id == m2.c.patient_id).join(f2, f2.c.id == fp2.c.file_id))
            .where(m2.c.cohort_version_id == version_id, visible_file(scope, f2, fp2.c.patient_id))
            .group_by(fp2.c.file_id)
            .subquery("gdc_n")
        )
        gdc_from = gdc_from.join(gdc_n, gdc_n.c.key == f.c.id)
        gdc_columns.append(gdc_n.c.n)
    gdc = select(*gdc_columns).select_from(gdc_from).where(of_version, gdc_visible)

    link, ip = _t(IdentityLink).alias("l"), _t(IdcPatient).alias("ip")
    series, study = _t(ImagingSeries).alias("s"), _t(ImagingStudy).alias("st")

    def idc_patients(mm: Any, patient_id: Any, ll: FromClause, pp: FromClause) -> Any:
        return mm.join(ll, and_(ll.c.patient_id == patient_id, ll.c.commons == "idc")).join(
            pp,
            and_(
                pp.c.collection_id == ll.c.namespace,
                pp.c.patient_id == ll.c.external_id,
                pp.c.retired_release_id.is_(None),
            ),
        )

    idc_from = (
        idc_patients(members, p.c.id, link, ip)
        .join(series, and_(series.c.idc_patient_id == ip.c.id, series.c.retired_release_id.is_(None)))
        .join(study, study.c.id == series.c.imaging_study_id)
    )
    idc_columns: list[Any] = [
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
    ]
    if holders:  # a series has one IDC patient: the rows reaching it are the members' links to that patient
        m2, l2, ip2 = _t(CohortMember).alias("m2"), _t(IdentityLink).alias("l2"), _t(IdcPatient).alias("ip2")
        idc_n = (
            select(ip2.c.id.label("key"), func.count().label("n"))
            .select_from(idc_patients(m2, m2.c.patient_id, l2, ip2))
            .where(m2.c.cohort_version_id == version_id)
            .group_by(ip2.c.id)
            .subquery("idc_n")
        )
        idc_from = idc_from.join(idc_n, idc_n.c.key == ip.c.id)
        idc_columns.append(idc_n.c.n)
    idc = select(*idc_columns).select_from(idc_from).where(of_version)

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
            *([pf.c.id.label("key")] if holders else []),
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
    if holders:  # a member may reach a PDC file through two of its linked cases: count members, not rows
        rows = pdc.subquery("pdc_rows")
        pdc_n = (
            select(rows.c.key, func.count(rows.c.id.distinct()).label("n"))
            .group_by(rows.c.key)
            .subquery("pdc_n")
        )
        pdc = select(*[c for c in rows.c if c.name != "key"], pdc_n.c.n).join_from(
            rows, pdc_n, pdc_n.c.key == rows.c.key
        )
    return union_all(gdc, idc, pdc).subquery(name)


def files_query(version_id: int, scope: Scope) -> Query:
    """``files.parquet``: one row per (member, file), with how many members hold the file."""
    r = _file_rows(version_id, scope, holders=True).c
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
            r.n,
        )
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


def gdc_manifest_query(version_id: int, scope: Scope) -> Query:
    """gdc-client's manifest lines (``id filename md5 size state``, tab-separated) of the distinct visible GDC
    files of the members, ordered by id: one text column, for :func:`manifest_lines`."""
    m, fp, f = _t(CohortMember).alias("m"), _t(FilePatient).alias("fp"), _t(DataFile).alias("f")
    empty = literal("")
    files = (
        select(
            cast(f.c.file_id, Text()).label("id"),
            func.coalesce(f.c.file_name, empty).label("filename"),
            func.coalesce(f.c.md5sum, empty).label("md5"),
            func.coalesce(cast(f.c.file_size, Text()), empty).label("size"),
            func.coalesce(f.c.state, empty).label("state"),
        )
        .distinct()
        .select_from(m.join(fp, fp.c.patient_id == m.c.patient_id).join(f, f.c.id == fp.c.file_id))
        .where(m.c.cohort_version_id == version_id, visible_file(scope, f, fp.c.patient_id))
        .subquery("files")
    )
    c = files.c
    return Query(select(func.concat_ws("\t", c.id, c.filename, c.md5, c.size, c.state)).order_by(c.id))


def manifest_lines(conn: Connection, query: Query) -> Iterator[bytes]:
    """The lines of a one-text-column ``query``, each ended by a newline, in blocks: COPY's CSV format with
    a delimiter and a quote no sane value holds (\x02, \x01), so every line travels exactly as it is."""
    raw = conn.connection.driver_connection
    assert raw is not None
    statement, params = query.copy(conn, "csv, DELIMITER E'\\x02', QUOTE E'\\x01'")
    # closed with this generator (a stream left early is cancelled)
    yield from copy_out(raw, statement, params)


def idc_manifest_query(version_id: int) -> Query:
    """s5cmd's lines (``cp URL .``) for the distinct S3 URLs of the members' live IDC series, ordered by URL:
    one text column, for :func:`manifest_lines`."""
    statement = sql.SQL(
        "SELECT 'cp ' || u.url || ' .' FROM (SELECT DISTINCT s.series_aws_url AS url FROM cohort_member m "
        "JOIN identity_link l ON l.patient_id = m.patient_id AND l.commons = 'idc' "
        "JOIN idc_patient ip ON ip.collection_id = l.namespace AND ip.patient_id = l.external_id "
        "AND ip.retired_release_id IS NULL "
        "JOIN imaging_series s ON s.idc_patient_id = ip.id AND s.retired_release_id IS NULL "
        "WHERE m.cohort_version_id = %(v)s AND s.series_aws_url IS NOT NULL) AS u ORDER BY u.url"
    )
    return Query(statement, {"v": version_id})


def files_columns() -> list[tuple[str, pa.DataType]]:
    return [(f.name, f.type) for f in FILES_SCHEMA]
