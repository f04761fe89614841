"""Patients under an access scope: keyset-paged listings, one patient's whole graph with lineage, project counts.

Invisible means absent: a patient of a controlled project without a grant is never listed, counted or shown,
and asking for it by id is a :class:`~oncograph.errors.NotFoundError` (the same answer as for an id that does
not exist), so nothing reveals that it exists. Controlled files without a grant are left out the same way.

Listings page by keyset (the sort value and the row id of the last row, in an opaque cursor), so page 500 costs
what page 1 costs and rows inserted meanwhile never shift a page. Sorting puts patients without a value last.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    Text,
    and_,
    cast,
    func,
    not_,
    or_,
    select,
)
from sqlalchemy.orm import Session

from oncograph.access import Scope
from oncograph.access.policy import hidden_project, patient_project_visible, visible_file, visible_patient
from oncograph.cohorts.fields import PATIENT, PROJECT, get_field, live
from oncograph.cohorts.filters import FilterError, Problem, compile_filter, parse
from oncograph.db.models import Base
from oncograph.errors import NotFoundError, ValidationError
from oncograph.lineage import lineage_of

MAX_LIMIT = 1000
_T: Callable[[str], Table] = Base.metadata.tables.__getitem__


# -- listing ------------------------------------------------------------------------------------------------

_DEMOGRAPHIC = _T("demographic").alias("ld")
_LIST_PROJECT = PROJECT.alias("lp")
_DIAGNOSIS = _T("diagnosis")
_AGE_AT_DIAGNOSIS = (
    select(func.min(_DIAGNOSIS.c.age_at_diagnosis))
    .where(_DIAGNOSIS.c.patient_id == PATIENT.c.id, live(_DIAGNOSIS))
    .scalar_subquery()
)

SORTS: dict[str, ColumnElement[Any]] = {
    "submitter_id": PATIENT.c.submitter_id,
    "case_id": PATIENT.c.case_id,
    "project": _LIST_PROJECT.c.project_id,
    "primary_site": PATIENT.c.primary_site,
    "disease_type": PATIENT.c.disease_type,
    "age_at_diagnosis": _AGE_AT_DIAGNOSIS,
    "age_at_index": _DEMOGRAPHIC.c.age_at_index,
    "sex": _DEMOGRAPHIC.c.sex,
    "vital_status": _DEMOGRAPHIC.c.vital_status,
}
"""Sortable fields: ``age_at_diagnosis`` is the patient's smallest (first diagnosis), in days."""


@dataclass(frozen=True, slots=True)
class PatientPage:
    patients: list[dict[str, Any]]
    total: int
    """Visible patients matching the filter (all pages)."""
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; None on the last page."""
    sort: str


def _query_hash(filters: Any, sort: str) -> str:
    canonical = json.dumps([filters or {}, sort], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _encode_cursor(value: Any, row_id: int, query: str) -> str:
    payload = {"v": str(value) if isinstance(value, uuid.UUID) else value, "i": row_id, "q": query}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, query: str, sort_name: str) -> tuple[Any, int]:
    problem = ValidationError(
        "the cursor is not one this listing returned", hint="pass next_cursor of the previous page unchanged"
    )
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value, row_id, owner = raw["v"], raw["i"], raw["q"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise problem from None
    if not isinstance(row_id, int) or isinstance(row_id, bool) or owner != query:
        raise ValidationError(
            "the cursor belongs to another query",
            hint="a cursor is valid only with the filters and sort it was made with; start without one",
        )
    if value is not None and sort_name == "case_id":
        try:
            value = uuid.UUID(str(value))
        except ValueError:
            raise problem from None
    expected = int if sort_name.startswith("age_") else str
    if value is not None and not isinstance(value, uuid.UUID | expected):
        raise problem
    return value, row_id


def parse_sort(sort: str) -> tuple[str, bool]:
    """``"-age_at_diagnosis"`` -> (``"age_at_diagnosis"``, descending)."""
    name = sort.strip()
    descending = name.startswith("-")
    name = name.lstrip("+-")
    if name == "project.project_id":
        name = "project"
    if name not in SORTS:
        raise ValidationError(f"cannot sort by {sort!r}", hint=f"sort by one of {', '.join(SORTS)}")
    return name, descending


def list_patients(
    conn: Connection,
    scope: Scope,
    *,
    filters: Any = None,
    sort: str = "submitter_id",
    cursor: str | None = None,
    limit: int = 100,
) -> PatientPage:
    """One page of the visible live patients matching a GDC filter, in ``sort`` order (``-`` prefix:
    descending; ties and then the row id break ties), patients without the sort value last.

    Raises:
        FilterError: the filter is invalid. ValidationError: unknown sort, or a cursor of another query.
    """
    node = parse(filters)
    name, descending = parse_sort(sort)
    canonical_sort = ("-" if descending else "") + name
    query = _query_hash(filters, canonical_sort)
    limit = max(1, min(int(limit), MAX_LIMIT))
    p, pr, d = PATIENT, _LIST_PROJECT, _DEMOGRAPHIC
    inner = (
        select(
            p.c.id,
            p.c.case_id,
            p.c.submitter_id,
            pr.c.project_id,
            p.c.primary_site,
            p.c.disease_type,
            d.c.sex,
            d.c.vital_status,
            d.c.age_at_index,
            _AGE_AT_DIAGNOSIS.label("age_at_diagnosis"),
            SORTS[name].label("sort_value"),
        )
        .select_from(
            p.outerjoin(pr, pr.c.id == p.c.project_id).outerjoin(d, and_(d.c.patient_id == p.c.id, live(d)))
        )
        .where(visible_patient(scope, p), compile_filter(node, scope, p))
        .subquery("listing")
    )
    total = int(conn.execute(select(func.count()).select_from(inner)).scalar_one())
    key = inner.c.sort_value
    q = select(inner).order_by((key.desc() if descending else key.asc()).nulls_last(), inner.c.id.asc())
    if cursor:
        value, row_id = _decode_cursor(cursor, query, name)
        if value is None:
            q = q.where(key.is_(None), inner.c.id > row_id)
        else:
            beyond = key < value if descending else key > value
            q = q.where(or_(beyond, and_(key == value, inner.c.id > row_id), key.is_(None)))
    rows = conn.execute(q.limit(limit + 1)).mappings().all()
    page = [
        {k: _jsonable(v) for k, v in row.items() if k not in ("id", "sort_value")} for row in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = _encode_cursor(last["sort_value"], int(last["id"]), query)
    return PatientPage(page, total, next_cursor, canonical_sort)


def project_counts(conn: Connection, scope: Scope) -> list[dict[str, Any]]:
    """Every live project the scope may see, with its number of live patients (controlled projects without
    a grant are left out altogether)."""
    pr = PROJECT.alias("cp")
    pg = _T("program").alias("cpg")
    p = PATIENT.alias("cpp")
    rows = conn.execute(
        select(
            pr.c.project_id,
            pr.c.name,
            pg.c.name.label("program"),
            pr.c.primary_site,
            pr.c.disease_type,
            pr.c.controlled,
            func.count(p.c.id).label("patients"),
        )
        .select_from(
            pr.outerjoin(pg, pg.c.id == pr.c.program_id).outerjoin(
                p, and_(p.c.project_id == pr.c.id, live(p))
            )
        )
        .where(live(pr), not_(hidden_project(scope, pr)))
        .group_by(pr.c.id, pg.c.name)
        .order_by(pr.c.project_id)
    ).mappings()
    return [dict(r) for r in rows]


# -- resolving ids and visibility ---------------------------------------------------------------------------


def resolve_patient(conn: Connection, key: str, scope: Scope, *, live_only: bool = True) -> int:
    """The row id of the patient named by a GDC case UUID or a submitter id (barcode), if the scope may see it.

    Raises:
        NotFoundError: no such patient, or one the scope may not see (the same answer, on purpose).
        ValidationError: a submitter id that names several visible patients.
    """
    text_key = key.strip()
    try:
        match = PATIENT.c.case_id == uuid.UUID(text_key)
    except ValueError:
        match = PATIENT.c.submitter_id == text_key
    q = select(PATIENT.c.id, PATIENT.c.case_id, live(PATIENT).label("live")).where(
        match, patient_project_visible(scope, PATIENT)
    )
    if live_only:
        q = q.where(live(PATIENT))
    rows = conn.execute(q.order_by(PATIENT.c.id)).all()
    current = [r for r in rows if r.live] or rows
    if not current:
        raise NotFoundError(
            f"no patient {text_key[:100]!r}",
            hint="use a GDC case UUID or a submitter id such as TCGA-BH-A0EA",
        )
    if len(current) > 1:
        raise ValidationError(
            f"{text_key!r} names {len(current)} patients",
            hint="use the case UUID: " + ", ".join(str(r.case_id) for r in current[:5]),
        )
    return int(current[0].id)


def visible_patient_ids(conn: Connection, patient_ids: Iterable[int], scope: Scope) -> list[int]:
    """The ids (sorted) among ``patient_ids`` whose patient the scope may see (e.g. members of a cohort that
    someone with more grants shared)."""
    ids = sorted({int(i) for i in patient_ids})
    if not ids or scope.unrestricted:
        return ids
    q = (
        select(PATIENT.c.id)
        .where(PATIENT.c.id.in_(ids), patient_project_visible(scope, PATIENT))
        .order_by(PATIENT.c.id)
    )
    return [int(r) for r in conn.execute(q).scalars()]


def visible_case_ids(conn: Connection, case_ids: Iterable[str], scope: Scope) -> set[str]:
    """The GDC case UUIDs (as text) among ``case_ids`` whose patient the scope may see."""
    wanted = sorted({uuid.UUID(str(c)) for c in case_ids})
    if not wanted:
        return set()
    q = select(PATIENT.c.case_id).where(
        PATIENT.c.case_id.in_(wanted), patient_project_visible(scope, PATIENT)
    )
    return {str(c) for c in conn.execute(q).scalars()}


def group_by_field(
    conn: Connection, patient_ids: Sequence[int], field_name: str, scope: Scope
) -> tuple[dict[str, list[int]], list[int]]:
    """Split patients by the values of a categorical field: each patient goes into the group of **every**
    value it has (a patient with a Stage I and a Stage III diagnosis is in both), patients without a value
    into the second result. Groups are ordered by size (largest first), then by value.

    Raises:
        FilterError: an unknown or numeric field (the problem's ``loc`` is ``group_by``).
    """
    field = get_field(field_name)
    if field is None or field.facet != "terms":
        why = "unknown field" if field is None else "a numeric field cannot split patients into groups"
        raise FilterError([Problem("group_by", f"{why}: {field_name[:100]!r}; use a categorical field")])
    ids = sorted({int(i) for i in patient_ids})
    src = field.source(scope)
    values = src.select(src.pid.in_(ids), src.value.is_not(None)).distinct().subquery("gv")
    groups: dict[str, set[int]] = {}
    for pid, value in conn.execute(select(values.c.pid, values.c.value)):
        label = ("true" if value else "false") if isinstance(value, bool) else str(value)
        groups.setdefault(label, set()).add(int(pid))
    grouped = set().union(*groups.values()) if groups else set()
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return {k: sorted(v) for k, v in ordered}, [i for i in ids if i not in grouped]


# -- one patient's graph ------------------------------------------------------------------------------------

_LINEAGE_COLUMNS = frozenset(
    {"id", "source_document_id", "first_seen_release_id", "last_seen_release_id", "retired_release_id"}
)
_NOT_SHOWN = _LINEAGE_COLUMNS | {"created_at", "updated_at", "row_hash", "index_row", "vector"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value


class _Lineage:
    """Collects the lineage ids of records and fills in names of documents and releases in two queries."""

    def __init__(self) -> None:
        self.pending: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def record(self, table: Table, row: Any) -> dict[str, Any]:
        """A record's columns as JSON (foreign keys and lineage columns left out) plus ``lineage``."""
        shown = {
            c.name: _jsonable(row[c.name])
            for c in table.columns
            if c.name not in _NOT_SHOWN and not c.foreign_keys
        }
        if "source_document_id" in table.c:
            lineage = {k: row[k] for k in _LINEAGE_COLUMNS if k != "id"}
            if "index_row" in table.c:
                lineage["index_row"] = row["index_row"]
            shown["lineage"] = lineage
            self.pending.append((shown, lineage))
        else:
            shown["lineage"] = {"run_id": row["run_id"], "created_at": _jsonable(row["created_at"])}
        return shown

    def resolve(self, conn: Connection) -> None:
        docs = {int(p[1]["source_document_id"]) for p in self.pending}
        if not docs:
            return
        d, r = _T("source_document"), _T("source_release")
        doc_rows = {
            row.id: row
            for row in conn.execute(
                select(d.c.id, d.c.source, d.c.entity_type, d.c.entity_id, d.c.release_id, d.c.run_id).where(
                    d.c.id.in_(sorted(docs))
                )
            )
        }
        release_ids = {row.release_id for row in doc_rows.values()}
        for _, lin in self.pending:
            release_ids |= {lin[k] for k in ("first_seen_release_id", "last_seen_release_id")}
            if lin["retired_release_id"] is not None:
                release_ids.add(lin["retired_release_id"])
        releases = {
            row.id: row.release
            for row in conn.execute(select(r.c.id, r.c.release).where(r.c.id.in_(release_ids)))
        }
        for _, lin in self.pending:
            doc = doc_rows[lin["source_document_id"]]
            retired = lin.pop("retired_release_id")
            lin.update(
                source=doc.source,
                entity_type=doc.entity_type,
                entity_id=doc.entity_id,
                release=releases.get(doc.release_id),
                run_id=doc.run_id,
                first_seen=releases.get(lin.pop("first_seen_release_id")),
                last_seen=releases.get(lin.pop("last_seen_release_id")),
                retired=releases.get(retired) if retired is not None else None,
            )


def _rows(
    conn: Connection,
    table: Table,
    *where: ColumnElement[bool],
    include_retired: bool,
    order: Sequence[str] = (),
) -> list[Any]:
    q = select(table).where(*where)
    if not include_retired and "retired_release_id" in table.c:
        q = q.where(live(table))
    q = q.order_by(*[table.c[o] for o in order], table.c.id)
    return list(conn.execute(q).mappings())


Pairs = Callable[..., list[tuple[Any, dict[str, Any]]]]
"""``pairs(table_name, *where, order=[...])`` -> (row, record) of the matching rows."""


def patient_detail(
    conn: Connection, key: str, scope: Scope, *, include_retired: bool = False
) -> dict[str, Any]:
    """The whole graph of one patient: project, demographic, diagnoses (with treatments and pathology
    details), follow-ups, exposures, family histories, samples (portions, analytes, aliquots, slides), the
    visible files, IDC imaging (studies with their series), PDC proteomics (cases, studies, file counts),
    identity links and embeddings (not the vectors).

    Every graph record carries ``lineage``: the source document its values came from (source, entity,
    release, run), the first and last release it was seen in and the release that retired it. Links and
    embeddings carry the run that made them. Records retired from their source are left out unless
    ``include_retired``.

    Raises:
        NotFoundError: no such patient, or one the scope may not see.
    """
    pid = resolve_patient(conn, key, scope, live_only=False)
    lin = _Lineage()

    def pairs(
        name: str, *where: ColumnElement[bool], order: Sequence[str] = ()
    ) -> list[tuple[Any, dict[str, Any]]]:
        table = _T(name)
        rows = _rows(conn, table, *where, include_retired=include_retired, order=order)
        return [(r, lin.record(table, r)) for r in rows]

    def mine(name: str, order: Sequence[str] = ()) -> list[tuple[Any, dict[str, Any]]]:
        return pairs(name, _T(name).c.patient_id == pid, order=order)

    patient_row = conn.execute(select(PATIENT).where(PATIENT.c.id == pid)).mappings().one()
    out: dict[str, Any] = {"patient": lin.record(PATIENT, patient_row)}
    out["project"] = _project(conn, patient_row["project_id"], pairs)
    demographic = mine("demographic")
    out["demographic"] = demographic[0][1] if demographic else None
    treatments = mine("treatment", ["days_to_treatment_start"])
    pathology = mine("pathology_detail")
    diagnoses = mine("diagnosis", ["days_to_diagnosis"])
    for row, rec in diagnoses:
        rec["treatments"] = [tr for r, tr in treatments if r["diagnosis_id"] == row["id"]]
        rec["pathology_details"] = [pd for r, pd in pathology if r["diagnosis_id"] == row["id"]]
    shown = {row["id"] for row, _ in diagnoses}
    out["diagnoses"] = [rec for _, rec in diagnoses]
    out["treatments_without_diagnosis"] = [tr for r, tr in treatments if r["diagnosis_id"] not in shown]
    out["follow_ups"] = [rec for _, rec in mine("follow_up", ["days_to_follow_up"])]
    out["exposures"] = [rec for _, rec in mine("exposure")]
    out["family_histories"] = [rec for _, rec in mine("family_history")]
    out["samples"] = _samples(mine)
    out["files"] = _files(conn, pid, scope, lin)
    out["imaging"] = _imaging(conn, pid, pairs)
    out["proteomics"] = _proteomics(conn, pid, pairs)
    links = _T("identity_link")
    out["identity_links"] = [
        lin.record(links, r)
        for r in conn.execute(
            select(links).where(links.c.patient_id == pid).order_by(links.c.commons, links.c.external_id)
        ).mappings()
    ]
    emb = _T("embedding")
    out["embeddings"] = [
        lin.record(emb, r)
        for r in conn.execute(
            select(*[c for c in emb.c if c.name != "vector"])
            .where(emb.c.patient_id == pid)
            .order_by(emb.c.model, emb.c.object_kind, emb.c.object_id)
        ).mappings()
    ]
    lin.resolve(conn)
    return out


def _project(conn: Connection, project_row_id: int | None, pairs: Pairs) -> dict[str, Any] | None:
    if project_row_id is None:
        return None
    found = pairs("project", PROJECT.c.id == project_row_id)
    if not found:
        return None
    row, rec = found[0]
    program = _T("program")
    rec["program"] = (
        conn.execute(select(program.c.name).where(program.c.id == row["program_id"])).scalar_one_or_none()
        if row["program_id"] is not None
        else None
    )
    return rec


def _samples(mine: Pairs) -> list[dict[str, Any]]:
    portions = mine("portion")
    analytes = mine("analyte")
    aliquots = mine("aliquot")
    slides = mine("slide")
    out = []
    for s_row, sample in mine("sample", ["submitter_id"]):
        sample["portions"] = []
        for p_row, portion in portions:
            if p_row["sample_id"] != s_row["id"]:
                continue
            portion["analytes"] = []
            for a_row, analyte in analytes:
                if a_row["portion_id"] == p_row["id"]:
                    analyte["aliquots"] = [al for r, al in aliquots if r["analyte_id"] == a_row["id"]]
                    portion["analytes"].append(analyte)
            portion["slides"] = [sl for r, sl in slides if r["portion_id"] == p_row["id"]]
            sample["portions"].append(portion)
        out.append(sample)
    return out


def _files(conn: Connection, pid: int, scope: Scope, lin: _Lineage) -> list[dict[str, Any]]:
    """The patient's live files that the scope may see, each with the GDC ids of its samples."""
    f, fp, fs, s = _T("data_file"), _T("file_patient"), _T("file_sample"), _T("sample")
    rows = conn.execute(
        select(f)
        .join(fp, fp.c.file_id == f.c.id)
        .where(fp.c.patient_id == pid, visible_file(scope, f, fp.c.patient_id))
        .order_by(f.c.data_category, f.c.data_type, f.c.file_name, f.c.id)
    ).mappings()
    files = [(int(r["id"]), lin.record(f, r)) for r in rows]
    samples: dict[int, list[str]] = {}
    if files:
        for file_id, sample_id in conn.execute(
            select(fs.c.file_id, s.c.sample_id)
            .join(s, s.c.id == fs.c.sample_id)
            .where(fs.c.file_id.in_([i for i, _ in files]), s.c.patient_id == pid)
            .order_by(s.c.sample_id)
        ):
            samples.setdefault(int(file_id), []).append(str(sample_id))
    for file_id, rec in files:
        rec["sample_ids"] = samples.get(file_id, [])
    return [rec for _, rec in files]


def _imaging(conn: Connection, pid: int, pairs: Pairs) -> list[dict[str, Any]]:
    """IDC patients linked to the patient, each with its studies and, per study, the series list."""
    links, ip = _T("identity_link"), _T("idc_patient")
    study, series = _T("imaging_study"), _T("imaging_series")
    linked = (
        select(ip.c.id)
        .join(links, and_(links.c.namespace == ip.c.collection_id, links.c.external_id == ip.c.patient_id))
        .where(links.c.patient_id == pid, links.c.commons == "idc")
    )
    out = []
    for ip_row, idc_patient in pairs(
        "idc_patient", ip.c.id.in_(linked), order=["collection_id", "patient_id"]
    ):
        all_series = pairs(
            "imaging_series", series.c.idc_patient_id == ip_row["id"], order=["series_date", "series_number"]
        )
        studies = []
        for st_row, rec in pairs(
            "imaging_study", study.c.idc_patient_id == ip_row["id"], order=["study_date"]
        ):
            rec["series"] = [s for r, s in all_series if r["imaging_study_id"] == st_row["id"]]
            rec["series_count"] = len(rec["series"])
            rec["modalities"] = sorted({s["modality"] for s in rec["series"] if s.get("modality")})
            studies.append(rec)
        idc_patient["studies"] = studies
        out.append(idc_patient)
    return out


def _proteomics(conn: Connection, pid: int, pairs: Pairs) -> list[dict[str, Any]]:
    """PDC cases linked to the patient, each with its studies and the studies' files counted by type (PDC
    files belong to studies, not to cases)."""
    links, case, study_case = _T("identity_link"), _T("pdc_case"), _T("pdc_study_case")
    study, pdc_file = _T("pdc_study"), _T("pdc_file")
    external = select(links.c.external_id).where(links.c.patient_id == pid, links.c.commons == "pdc")
    out = []
    for c_row, pdc_case in pairs("pdc_case", cast(case.c.case_id, Text).in_(external), order=["case_id"]):
        in_study = select(study_case.c.study_row_id).where(
            study_case.c.case_row_id == c_row["id"], live(study_case)
        )
        studies = []
        for s_row, rec in pairs("pdc_study", study.c.id.in_(in_study), order=["pdc_study_id"]):
            counts = conn.execute(
                select(pdc_file.c.data_category, pdc_file.c.file_type, func.count())
                .where(pdc_file.c.study_row_id == s_row["id"], live(pdc_file))
                .group_by(pdc_file.c.data_category, pdc_file.c.file_type)
                .order_by(pdc_file.c.data_category, pdc_file.c.file_type)
            ).all()
            rec["files"] = {
                "count": sum(int(n) for _, _, n in counts),
                "by_type": [{"data_category": c, "file_type": t, "count": int(n)} for c, t, n in counts],
            }
            studies.append(rec)
        pdc_case["studies"] = studies
        out.append(pdc_case)
    return out


# -- lineage under a scope ----------------------------------------------------------------------------------


def visible_lineage(session: Session, entity_id: str, scope: Scope) -> dict[str, Any]:
    """:func:`oncograph.lineage.lineage_of` without the records the scope may not see (rows of controlled
    projects without a grant, controlled files without one) and without their documents.

    Raises:
        NotFoundError: nothing visible has that id (whether or not something invisible has).
    """
    info = lineage_of(session, entity_id)
    if scope.unrestricted:
        return info
    conn = session.connection()
    by_kind: dict[str, set[int]] = {}
    for rec in info["records"]:
        by_kind.setdefault(rec["kind"], set()).add(int(rec["id"]))
    allowed: set[tuple[str, int]] = set()
    for kind, ids in by_kind.items():
        allowed |= {(kind, i) for i in _visible_rows(conn, kind, sorted(ids), scope)}
    records = [r for r in info["records"] if (r["kind"], int(r["id"])) in allowed]
    if not records:
        raise NotFoundError(
            f"no graph record has id {entity_id!r}",
            hint="pass a GDC UUID (case_id, file_id, sample_id, ...), a project id or a submitter id",
        )
    current = {int(r["source_document_id"]) for r in records}
    entities = {
        (d["source"], d["entity_type"], d["entity_id"]) for d in info["documents"] if int(d["id"]) in current
    }
    documents = [d for d in info["documents"] if (d["source"], d["entity_type"], d["entity_id"]) in entities]
    return {**info, "records": records, "documents": documents}


def _visible_rows(conn: Connection, kind: str, ids: list[int], scope: Scope) -> list[int]:
    table = _T(kind)
    if kind == "program":
        return ids
    if kind == "project":
        q = select(table.c.id).where(table.c.id.in_(ids), not_(hidden_project(scope, table)))
    elif kind == "data_file":
        fp, p = _T("file_patient"), PATIENT.alias("lfp")
        patients = select(p.c.id).join(fp, fp.c.patient_id == p.c.id).where(fp.c.file_id == table.c.id)
        q = select(table.c.id).where(
            table.c.id.in_(ids),
            or_(
                ~patients.exists(),
                patients.where(
                    patient_project_visible(scope, p), visible_file(scope, table, p.c.id)
                ).exists(),
            ),
        )
    else:
        patient = PATIENT.alias("lpt")
        match = patient.c.id == (table.c.id if kind == "patient" else table.c.patient_id)
        q = (
            select(table.c.id)
            .join(patient, match)
            .where(table.c.id.in_(ids), patient_project_visible(scope, patient))
        )
    return [int(i) for i in conn.execute(q).scalars()]
