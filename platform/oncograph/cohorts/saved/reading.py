"""Reading saved cohorts: visibility (owner, shared, admin, and :mod:`oncograph.access.policy`), versions,
listings, diffs, member pages; sharing and soft deletion."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Table, func, select, text
from sqlalchemy.orm import Session as OrmSession

from oncograph.access import Scope
from oncograph.access.policy import cohort_hides_members
from oncograph.cohorts.fields import PATIENT, PROJECT
from oncograph.cohorts.saved.records import CohortInfo, Diff, MemberPage, Version
from oncograph.db.models import Cohort, CohortMember, CohortVersion, Principal
from oncograph.errors import NotFoundError, PermissionDeniedError

_MEMBER: Table = CohortMember.__table__  # type: ignore[assignment]


def visible_cohort(session: OrmSession, cohort_id: int, principal: Principal, scope: Scope) -> Cohort:
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


def own_cohort(session: OrmSession, cohort_id: int, principal: Principal, scope: Scope) -> Cohort:
    cohort = visible_cohort(session, cohort_id, principal, scope)
    if cohort.owner_id != principal.id and principal.role != "admin":
        raise PermissionDeniedError(f"cohort {cohort_id} belongs to someone else", hint="ask its owner")
    return cohort


def version_row(session: OrmSession, cohort_id: int, version: int | None) -> CohortVersion:
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


def to_version(row: CohortVersion) -> Version:
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


def latest(session: OrmSession, cohort: Cohort) -> Version:
    return to_version(version_row(session, cohort.id, None))


def info(session: OrmSession, cohort: Cohort) -> CohortInfo:
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
        latest=latest(session, cohort),
        versions=int(versions),
    )


def get(session: OrmSession, cohort_id: int, principal: Principal, scope: Scope) -> CohortInfo:
    return info(session, visible_cohort(session, cohort_id, principal, scope))


def version(
    session: OrmSession,
    cohort_id: int,
    principal: Principal,
    number: int | None = None,
    *,
    scope: Scope,
) -> Version:
    cohort = visible_cohort(session, cohort_id, principal, scope)
    return to_version(version_row(session, cohort.id, number))


def list_cohorts(session: OrmSession, principal: Principal, scope: Scope) -> list[CohortInfo]:
    q = select(Cohort).where(Cohort.deleted_at.is_(None))
    if principal.role != "admin":
        q = q.where((Cohort.owner_id == principal.id) | Cohort.shared.is_(True))
    cohorts = session.execute(q.order_by(Cohort.id)).scalars().all()
    return [info(session, c) for c in cohorts if not cohort_hides_members(session, c.id, scope)]


def delete(session: OrmSession, cohort_id: int, principal: Principal, scope: Scope) -> None:
    cohort = own_cohort(session, cohort_id, principal, scope)
    cohort.deleted_at = dt.datetime.now(dt.UTC)
    session.flush()


def set_shared(
    session: OrmSession, cohort_id: int, principal: Principal, shared: bool, scope: Scope
) -> CohortInfo:
    cohort = own_cohort(session, cohort_id, principal, scope)
    cohort.shared = shared
    session.flush()
    return info(session, cohort)


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
    cohort = visible_cohort(session, cohort_id, principal, scope)
    va = version_row(session, cohort.id, a)
    vb = version_row(session, cohort.id, b)
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
    cohort = visible_cohort(session, cohort_id, principal, scope)
    v = version_row(session, cohort.id, version_number)
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
    cohort = visible_cohort(session, cohort_id, principal, scope)
    v = version_row(session, cohort.id, number)
    return list(
        session.execute(
            select(_MEMBER.c.patient_id)
            .where(_MEMBER.c.cohort_version_id == v.id)
            .order_by(_MEMBER.c.patient_id)
        ).scalars()
    )
