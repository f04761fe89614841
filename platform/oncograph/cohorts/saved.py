"""Saved cohorts: frozen, reproducible member lists with the releases and access scope they were made under.

A cohort is a definition — a GDC filter, a fixed list of patient ids, or a set operation over other cohorts —
and numbered versions. A version is frozen: its member list, ``member_hash`` (SHA-256 of the sorted member
case UUIDs, one per line), the source releases its members' rows were last seen in
(:func:`oncograph.lineage.releases.member_releases`) and the scope (principal and grants) it was computed
under. Re-harvests never change a version: graph rows are never deleted, only retired. ``refresh`` computes a new version against current data and reports
the diff; any two versions can be compared.

Visibility: a cohort is visible to its owner, to everyone when ``shared``, and to admins; only its owner (or
an admin) changes it. Deleting is soft.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Select, Table, except_, func, insert, intersect, literal, select, text, union
from sqlalchemy.orm import Session as OrmSession

from oncograph.access import Scope
from oncograph.access.policy import cohort_hides_members, visible_patient
from oncograph.cohorts.fields import PATIENT, PROJECT
from oncograph.cohorts.filters import parse
from oncograph.cohorts.query import cohort_select
from oncograph.db.models import Cohort, CohortMember, CohortVersion, Principal
from oncograph.errors import NotFoundError, PermissionDeniedError, ValidationError
from oncograph.lineage.releases import member_releases

SetOp = Literal["union", "intersection", "difference"]
SET_OPS: tuple[SetOp, ...] = ("union", "intersection", "difference")
_MEMBER: Table = CohortMember.__table__  # type: ignore[assignment]
_MAX_IDS = 200_000


@dataclass(slots=True)
class Version:
    cohort_id: int
    version: int
    size: int
    member_hash: str
    releases: list[dict[str, Any]]
    scope: dict[str, Any]
    details: dict[str, Any]
    created_at: dt.datetime
    version_id: int

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "size": self.size,
            "member_hash": self.member_hash,
            "releases": self.releases,
            "scope": self.scope,
            "details": self.details,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(slots=True)
class CohortInfo:
    id: int
    name: str
    description: str | None
    owner: str
    kind: str
    definition: dict[str, Any]
    shared: bool
    created_at: dt.datetime
    deleted_at: dt.datetime | None
    latest: Version
    versions: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "kind": self.kind,
            "definition": self.definition,
            "shared": self.shared,
            "created_at": self.created_at.isoformat(),
            "deleted": self.deleted_at is not None,
            "versions": self.versions,
            "latest": self.latest.to_json(),
            # the CLI's compact contract: id, size, member_hash, releases
            "size": self.latest.size,
            "member_hash": self.latest.member_hash,
            "releases": self.latest.releases,
        }


@dataclass(slots=True)
class Diff:
    cohort_id: int
    from_version: int
    to_version: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "cohort_id": self.cohort_id,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "added": self.added,
            "removed": self.removed,
            "added_count": len(self.added),
            "removed_count": len(self.removed),
            "unchanged": self.unchanged,
        }


# -- creation -----------------------------------------------------------------------------------------------


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
    node = parse(filters)
    cohort = _new_cohort(session, name, description, owner, "filter", {"filters": filters or {}}, shared)
    _freeze(session, cohort, cohort_select(node, scope), scope, {})
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
    operands = [_latest(session, _visible_cohort(session, cid, owner, scope)) for cid in cohort_ids]
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
    cohort = _own_cohort(session, cohort_id, principal, scope)
    previous = _latest(session, cohort)
    if cohort.kind == "filter":
        query = cohort_select(parse(cohort.definition.get("filters")), scope)
        details: dict[str, Any] = {}
    elif cohort.kind == "ids":
        ids = list(cohort.definition.get("ids", []))
        matched, unresolved = _resolve(session, ids, scope)
        query = select(PATIENT.c.id).where(PATIENT.c.id.in_(matched))
        details = {"unresolved": unresolved, "requested": len(ids)}
    else:
        operands = [
            _latest(session, _visible_cohort(session, int(o["cohort"]), principal, scope))
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
    members: Select[Any],
    scope: Scope,
    details: dict[str, Any],
    *,
    previous: Version | None = None,
) -> int:
    """Write a new version with ``members`` (unless identical to ``previous``); returns the version number."""
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
    sub = members.subquery("m")
    session.execute(
        insert(_MEMBER).from_select(
            ["cohort_version_id", "patient_id"], select(literal(version.id), sub.c[0]).distinct()
        )
    )
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


# -- reading ------------------------------------------------------------------------------------------------


def _visible_cohort(session: OrmSession, cohort_id: int, principal: Principal, scope: Scope) -> Cohort:
    """The cohort if the principal may read it: owner, shared or admin — and only when no version holds a
    patient the scope may not see (:func:`oncograph.access.policy.cohort_hides_members`)."""
    cohort = session.get(Cohort, cohort_id)
    if (
        cohort is None
        or cohort.deleted_at is not None
        or not (cohort.owner_id == principal.id or cohort.shared or principal.role == "admin")
        or cohort_hides_members(session, cohort_id, scope)
    ):
        raise NotFoundError(f"no cohort {cohort_id}", hint="GET /cohorts lists the cohorts you can see")
    return cohort


hides_members = cohort_hides_members
"""Whether a version of the cohort holds a patient the scope may not see (:mod:`oncograph.access.policy`)."""


def _own_cohort(session: OrmSession, cohort_id: int, principal: Principal, scope: Scope) -> Cohort:
    cohort = _visible_cohort(session, cohort_id, principal, scope)
    if cohort.owner_id != principal.id and principal.role != "admin":
        raise PermissionDeniedError(f"cohort {cohort_id} belongs to someone else", hint="ask its owner")
    return cohort


def _version_row(session: OrmSession, cohort_id: int, version: int | None) -> CohortVersion:
    q = select(CohortVersion).where(CohortVersion.cohort_id == cohort_id)
    q = (
        q.where(CohortVersion.version == version)
        if version is not None
        else q.order_by(CohortVersion.version.desc())
    )
    row = session.execute(q.limit(1)).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"cohort {cohort_id} has no version {version}")
    return row


def _to_version(row: CohortVersion) -> Version:
    return Version(
        cohort_id=row.cohort_id,
        version=row.version,
        size=row.size,
        member_hash=row.member_hash,
        releases=list(row.releases),
        scope=dict(row.scope),
        details=dict(row.details),
        created_at=row.created_at,
        version_id=row.id,
    )


def _latest(session: OrmSession, cohort: Cohort) -> Version:
    return _to_version(_version_row(session, cohort.id, None))


def _info(session: OrmSession, cohort: Cohort) -> CohortInfo:
    owner = session.get(Principal, cohort.owner_id)
    versions = session.execute(
        select(func.count()).select_from(CohortVersion).where(CohortVersion.cohort_id == cohort.id)
    ).scalar_one()
    return CohortInfo(
        id=cohort.id,
        name=cohort.name,
        description=cohort.description,
        owner=owner.name if owner else "?",
        kind=cohort.kind,
        definition=dict(cohort.definition),
        shared=cohort.shared,
        created_at=cohort.created_at,
        deleted_at=cohort.deleted_at,
        latest=_latest(session, cohort),
        versions=int(versions),
    )


def get(session: OrmSession, cohort_id: int, principal: Principal, scope: Scope) -> CohortInfo:
    return _info(session, _visible_cohort(session, cohort_id, principal, scope))


def version(
    session: OrmSession,
    cohort_id: int,
    principal: Principal,
    number: int | None = None,
    *,
    scope: Scope,
) -> Version:
    cohort = _visible_cohort(session, cohort_id, principal, scope)
    return _to_version(_version_row(session, cohort.id, number))


def list_cohorts(session: OrmSession, principal: Principal, scope: Scope) -> list[CohortInfo]:
    q = select(Cohort).where(Cohort.deleted_at.is_(None))
    if principal.role != "admin":
        q = q.where((Cohort.owner_id == principal.id) | Cohort.shared.is_(True))
    cohorts = session.execute(q.order_by(Cohort.id)).scalars().all()
    return [_info(session, c) for c in cohorts if not cohort_hides_members(session, c.id, scope)]


def delete(session: OrmSession, cohort_id: int, principal: Principal, scope: Scope) -> None:
    cohort = _own_cohort(session, cohort_id, principal, scope)
    cohort.deleted_at = dt.datetime.now(dt.UTC)
    session.flush()


def set_shared(
    session: OrmSession, cohort_id: int, principal: Principal, shared: bool, scope: Scope
) -> CohortInfo:
    cohort = _own_cohort(session, cohort_id, principal, scope)
    cohort.shared = shared
    session.flush()
    return _info(session, cohort)


def diff(
    session: OrmSession,
    cohort_id: int,
    principal: Principal,
    a: int,
    b: int | None = None,
    *,
    scope: Scope,
) -> Diff:
    """Members added and removed from version ``a`` to version ``b`` (default: the latest), as case UUIDs."""
    cohort = _visible_cohort(session, cohort_id, principal, scope)
    va = _version_row(session, cohort.id, a)
    vb = _version_row(session, cohort.id, b)
    rows = session.execute(
        text(
            "SELECT p.case_id::text, bool_or(m.cohort_version_id = :a), bool_or(m.cohort_version_id = :b) "
            "FROM cohort_member m JOIN patient p ON p.id = m.patient_id "
            "WHERE m.cohort_version_id IN (:a, :b) GROUP BY p.case_id ORDER BY p.case_id::text"
        ),
        {"a": va.id, "b": vb.id},
    ).all()
    out = Diff(cohort.id, va.version, vb.version)
    for case_id, in_a, in_b in rows:
        if in_a and not in_b:
            out.removed.append(case_id)
        elif in_b and not in_a:
            out.added.append(case_id)
        else:
            out.unchanged += 1
    return out


@dataclass(slots=True)
class MemberPage:
    members: list[dict[str, Any]]
    next_after: int | None
    """Pass as ``after`` for the next page; None on the last page."""
    total: int


def members(
    session: OrmSession,
    cohort_id: int,
    principal: Principal,
    *,
    version_number: int | None = None,
    after: int | None = None,
    limit: int = 100,
    scope: Scope,
) -> MemberPage:
    """A page of a version's members in patient order (keyset on the patient row id: stable past any depth)."""
    cohort = _visible_cohort(session, cohort_id, principal, scope)
    v = _version_row(session, cohort.id, version_number)
    limit = max(1, min(limit, 10_000))
    q = (
        select(
            PATIENT.c.id,
            PATIENT.c.case_id,
            PATIENT.c.submitter_id,
            PROJECT.c.project_id,
            PATIENT.c.primary_site,
            PATIENT.c.disease_type,
        )
        .select_from(_MEMBER.join(PATIENT, PATIENT.c.id == _MEMBER.c.patient_id))
        .outerjoin(PROJECT, PROJECT.c.id == PATIENT.c.project_id)
        .where(_MEMBER.c.cohort_version_id == v.id)
        .order_by(PATIENT.c.id)
        .limit(limit + 1)
    )
    if after is not None:
        q = q.where(PATIENT.c.id > after)
    rows = session.execute(q).all()
    page = [
        {
            "case_id": str(r.case_id),
            "submitter_id": r.submitter_id,
            "project_id": r.project_id,
            "primary_site": r.primary_site,
            "disease_type": r.disease_type,
        }
        for r in rows[:limit]
    ]
    next_after = rows[limit - 1].id if len(rows) > limit else None
    return MemberPage(page, next_after, v.size)


def member_patient_ids(
    session: OrmSession,
    cohort_id: int,
    principal: Principal,
    number: int | None = None,
    *,
    scope: Scope,
) -> list[int]:
    cohort = _visible_cohort(session, cohort_id, principal, scope)
    v = _version_row(session, cohort.id, number)
    return list(
        session.execute(
            select(_MEMBER.c.patient_id)
            .where(_MEMBER.c.cohort_version_id == v.id)
            .order_by(_MEMBER.c.patient_id)
        ).scalars()
    )


__all__ = [
    "SET_OPS",
    "CohortInfo",
    "Diff",
    "MemberPage",
    "Version",
    "create_from_filter",
    "create_from_ids",
    "delete",
    "diff",
    "get",
    "list_cohorts",
    "member_hash",
    "member_patient_ids",
    "members",
    "refresh",
    "set_operation",
    "set_shared",
    "version",
]
