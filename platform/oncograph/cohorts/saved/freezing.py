"""Making saved cohorts: from a filter, from ids, from set operations; refreshing; freezing a version (its
members, member hash and the releases of its members' rows)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Select, Table, except_, intersect, literal, select, text, union
from sqlalchemy.orm import Session as OrmSession

from oncograph.access import Scope
from oncograph.access.policy import visible_patient
from oncograph.cohorts import index
from oncograph.cohorts.fields import PATIENT
from oncograph.cohorts.filters import parse
from oncograph.cohorts.query import member_ids
from oncograph.cohorts.saved.reading import diff, get, latest, own_cohort, visible_cohort
from oncograph.cohorts.saved.records import SET_OPS, CohortInfo, Diff, Version
from oncograph.db.models import Cohort, CohortMember, CohortVersion, Principal
from oncograph.db.triggers import restore_row_triggers, skip_row_triggers
from oncograph.errors import ValidationError
from oncograph.lineage.releases import member_releases, releases_by_id

_MEMBER: Table = CohortMember.__table__  # type: ignore[assignment]
_MAX_IDS = 200_000


def create_from_filter(
    session: OrmSession,
    *,
    name: str,
    filters: Any,
    owner: Principal,
    scope: Scope,
    description: str | None = None,
    shared: bool = False,
) -> CohortInfo:
    """A cohort of the visible patients matching a GDC filter (validated first: FilterError on problems)."""
    parse(filters)
    cohort = _new_cohort(session, name, description, owner, "filter", {"filters": filters or {}}, shared)
    _freeze(session, cohort, member_ids(session.connection(), filters, scope), scope, {})
    return get(session, cohort.id, owner, scope)


def create_from_ids(
    session: OrmSession,
    *,
    name: str,
    ids: Sequence[str],
    owner: Principal,
    scope: Scope,
    description: str | None = None,
    shared: bool = False,
    source: str | None = None,
) -> CohortInfo:
    """A fixed list of patients, named by GDC case UUID or submitter id (barcode). Ids that match no visible
    patient are reported in the version's ``details.unresolved``; none matching at all is an error."""
    cleaned = list(dict.fromkeys(i.strip() for i in ids if isinstance(i, str) and i.strip()))
    if any("\x00" in i for i in cleaned):
        raise ValidationError(
            "patient ids cannot contain NUL characters", hint="check the id list's encoding"
        )
    if not cleaned:
        raise ValidationError("no patient ids given", hint="give GDC case UUIDs or submitter ids (barcodes)")
    if len(cleaned) > _MAX_IDS:
        raise ValidationError(f"{len(cleaned)} ids is more than the {_MAX_IDS} a cohort list may hold")
    matched, unresolved = _resolve(session, cleaned, scope)
    if not matched:
        raise ValidationError(
            f"none of the {len(cleaned)} ids matches a patient you can see (first: {cleaned[0]!r})",
            hint="ids are GDC case UUIDs or submitter ids; controlled projects need a grant",
        )
    definition = {"ids": cleaned, "source": source}
    cohort = _new_cohort(session, name, description, owner, "ids", definition, shared)
    query = select(PATIENT.c.id).where(PATIENT.c.id.in_(matched))
    _freeze(session, cohort, query, scope, {"unresolved": unresolved, "requested": len(cleaned)})
    return get(session, cohort.id, owner, scope)


def set_operation(
    session: OrmSession,
    *,
    op: str,
    cohort_ids: Sequence[int],
    name: str,
    owner: Principal,
    scope: Scope,
    description: str | None = None,
    shared: bool = False,
) -> CohortInfo:
    """Union, intersection or difference (the first minus all others) of the latest versions of 2+ cohorts."""
    if op not in SET_OPS:
        raise ValidationError(f"unknown set operation {op!r}", hint=f"use one of {', '.join(SET_OPS)}")
    if len(cohort_ids) < 2:
        raise ValidationError("a set operation needs at least two cohorts")
    operands = [latest(session, visible_cohort(session, cid, owner, scope)) for cid in cohort_ids]
    definition = {
        "op": op,
        "operands": [{"cohort": v.cohort_id, "version": v.version} for v in operands],
    }
    cohort = _new_cohort(session, name, description, owner, "set", definition, shared)
    _freeze(session, cohort, _set_query(op, [v.version_id for v in operands]), scope, {})
    return get(session, cohort.id, owner, scope)


def _set_query(op: str, version_ids: Sequence[int]) -> Select[Any]:
    selects = [select(_MEMBER.c.patient_id).where(_MEMBER.c.cohort_version_id == v) for v in version_ids]
    combined = {"union": union, "intersection": intersect, "difference": except_}[op](*selects).subquery()
    return select(combined.c.patient_id)


def refresh(
    session: OrmSession, cohort_id: int, principal: Principal, scope: Scope
) -> tuple[CohortInfo, Diff]:
    """Recompute the cohort against current data (a set operation uses its operands' latest versions). A new
    version is made only when members or releases changed; the diff is against the previous latest."""
    cohort = own_cohort(session, cohort_id, principal, scope)
    previous = latest(session, cohort)
    query: Select[Any] | list[int]
    if cohort.kind == "filter":
        query = member_ids(session.connection(), cohort.definition.get("filters"), scope)
        details: dict[str, Any] = {}
    elif cohort.kind == "ids":
        ids = list(cohort.definition.get("ids", []))
        matched, unresolved = _resolve(session, ids, scope)
        query = select(PATIENT.c.id).where(PATIENT.c.id.in_(matched))
        details = {"unresolved": unresolved, "requested": len(ids)}
    else:
        operands = [
            latest(session, visible_cohort(session, int(o["cohort"]), principal, scope))
            for o in cohort.definition.get("operands", [])
        ]
        cohort.definition = {
            **cohort.definition,
            "operands": [{"cohort": v.cohort_id, "version": v.version} for v in operands],
        }
        query = _set_query(str(cohort.definition["op"]), [v.version_id for v in operands])
        details = {}
    new = _freeze(session, cohort, query, scope, details, previous=previous)
    return get(session, cohort.id, principal, scope), diff(
        session, cohort.id, principal, previous.version, new, scope=scope
    )


def _new_cohort(
    session: OrmSession,
    name: str,
    description: str | None,
    owner: Principal,
    kind: str,
    definition: dict[str, Any],
    shared: bool,
) -> Cohort:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationError("a cohort needs a name of 1 to 200 characters")
    cohort = Cohort(
        name=name, description=description, owner_id=owner.id, kind=kind, definition=definition, shared=shared
    )
    session.add(cohort)
    session.flush()
    return cohort


def _freeze(
    session: OrmSession,
    cohort: Cohort,
    members: Select[Any] | list[int],
    scope: Scope,
    details: dict[str, Any],
    *,
    previous: Version | None = None,
) -> int:
    """Write a new version with ``members`` (patient row ids, or a query of them) unless it is identical to
    ``previous``; returns the version number. Members go in as one array (no per-row statement); the member
    hash and the releases come from the cohort index when it holds them (ADR 0010), else from SQL."""
    ids = members if isinstance(members, list) else sorted({int(r[0]) for r in session.execute(members)})
    number = (previous.version if previous else 0) + 1
    version = CohortVersion(
        cohort_id=cohort.id,
        version=number,
        size=0,
        member_hash="",
        releases=[],
        scope=scope.to_json(),
        details=details,
    )
    session.add(version)
    session.flush()
    if ids:
        _copy_members(session, version.id, ids)
    facts = index.member_facts(session.connection(), ids)
    if facts is not None:
        size, digest = len(ids), facts[0]
        releases = releases_by_id(session, facts[1])
    else:
        size, digest = _hash(session, version.id)
        releases = member_releases(session, version.id)
    if previous is not None and digest == previous.member_hash and releases == previous.releases:
        session.execute(_MEMBER.delete().where(_MEMBER.c.cohort_version_id == version.id))
        session.delete(version)
        session.flush()
        return previous.version
    version.size = size
    version.member_hash = digest
    version.releases = releases
    session.flush()
    return number


_COPY_ROW = np.dtype([("n", ">i2"), ("l1", ">i4"), ("version", ">i8"), ("l2", ">i4"), ("patient", ">i8")])
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)


def _copy_members(session: OrmSession, version_id: int, ids: Sequence[int]) -> None:
    """``COPY`` the members in: one statement in PostgreSQL's binary format, built by numpy. The reference
    triggers are skipped when the role may (:mod:`oncograph.db.triggers`): every id was read from ``patient``
    in this transaction and the version was just inserted, so they would only check that again (~40% of a
    100k-member version's time)."""
    rows = np.empty(len(ids), _COPY_ROW)
    rows["n"], rows["l1"], rows["l2"] = 2, 8, 8
    rows["version"] = version_id
    rows["patient"] = np.asarray(ids, np.int64)
    skipped = skip_row_triggers(session)
    driver = session.connection().connection.driver_connection
    assert driver is not None
    with (
        driver.cursor() as cursor,
        cursor.copy("COPY cohort_member (cohort_version_id, patient_id) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.write(_COPY_HEADER + rows.tobytes() + b"\xff\xff")
    if skipped:
        restore_row_triggers(session)


def _hash(session: OrmSession, version_id: int) -> tuple[int, str]:
    row = session.execute(
        text(
            "SELECT count(*), encode(sha256(convert_to(coalesce(string_agg(p.case_id::text, E'\\n' "
            "ORDER BY p.case_id::text), ''), 'UTF8')), 'hex') "
            "FROM cohort_member m JOIN patient p ON p.id = m.patient_id WHERE m.cohort_version_id = :v"
        ),
        {"v": version_id},
    ).one()
    return int(row[0]), str(row[1])


def member_hash(case_ids: Sequence[str]) -> str:
    """The member hash of a list of case UUIDs, as stored on a version (for checking an export or a copy)."""
    return hashlib.sha256("\n".join(sorted(str(c).lower() for c in case_ids)).encode()).hexdigest()


def _resolve(session: OrmSession, ids: Sequence[str], scope: Scope) -> tuple[list[int], list[str]]:
    uuids = {}
    for i in ids:
        try:
            uuids[str(uuid.UUID(i))] = i
        except ValueError:
            continue
    barcodes = [i for i in ids if i not in uuids.values()]
    rows = session.execute(
        select(PATIENT.c.id, PATIENT.c.case_id, PATIENT.c.submitter_id).where(
            visible_patient(scope),
            (PATIENT.c.case_id.in_([uuid.UUID(u) for u in uuids]) if uuids else literal(False))
            | (PATIENT.c.submitter_id.in_(barcodes) if barcodes else literal(False)),
        )
    ).all()
    found: set[str] = set()
    matched: list[int] = []
    for pid, case_id, submitter in rows:
        matched.append(pid)
        found.add(str(case_id))
        if submitter:
            found.add(submitter)
    unresolved = [i for i in ids if (str(uuid.UUID(i)) if i in uuids.values() else i) not in found]
    return sorted(set(matched)), unresolved
