"""Patients under an access scope: keyset-paged listings, project counts, resolving ids, grouping by a field.

Invisible means absent: a patient of a controlled project without a grant is never listed, counted or shown,
and asking for it by id is a :class:`~oncograph.errors.NotFoundError` (the same answer as for an id that does
not exist), so nothing reveals that it exists (the rule: :mod:`oncograph.access.policy`). One patient's whole
graph is :mod:`oncograph.cohorts.patient_detail`; lineage under a scope is :mod:`oncograph.cohorts.provenance`.

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
    and_,
    func,
    not_,
    or_,
    select,
)

from oncograph.access import Scope
from oncograph.access.policy import hidden_project, patient_project_visible, visible_patient
from oncograph.cohorts.fields import PATIENT, PROJECT, get_field, live
from oncograph.cohorts.filters import FilterError, Problem, compile_filter, parse
from oncograph.db.models import Base
from oncograph.errors import NotFoundError, ValidationError

MAX_LIMIT = 1000
_T: Callable[[str], Table] = Base.metadata.tables.__getitem__


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
    page = [{k: jsonable(v) for k, v in row.items() if k not in ("id", "sort_value")} for row in rows[:limit]]
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


def jsonable(value: Any) -> Any:
    """A database value as JSON (UUIDs and dates as text, decimals as floats, bytes as hex)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value
