"""Use cases over a saved cohort's members: its visible members and survival (optionally grouped by a field);
similar patients are :mod:`oncograph.embeddings.similar`.

The API, the CLI and the coming UI call these (routes stay thin). Every read is under an explicit
:class:`~oncograph.access.Scope`: a cohort the scope may not see does not exist, and members the scope may not
see are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from oncograph.access import Scope
from oncograph.cohorts import query, saved
from oncograph.cohorts.patients import group_by_field, visible_patient_ids
from oncograph.cohorts.survival import SurvivalResult, kaplan_meier
from oncograph.db.models import Principal

MISSING_GROUP = "(missing)"
"""The survival group of members without a value of the ``group_by`` field."""


def visible_members(
    session: Session, cohort_id: int, principal: Principal, number: int | None, *, scope: Scope
) -> tuple[int, list[int]]:
    """The version number (default: the latest) and the patient row ids of its members the scope may see."""
    version = saved.version(session, cohort_id, principal, number, scope=scope).version
    ids = saved.member_patient_ids(session, cohort_id, principal, version, scope=scope)
    return version, visible_patient_ids(session.connection(), ids, scope)


@dataclass(frozen=True, slots=True)
class CohortSurvival:
    cohort_id: int
    version: int
    group_by: str | None
    members: int
    ungrouped: int
    omitted_groups: int
    result: SurvivalResult


def cohort_survival(
    session: Session,
    cohort_id: int,
    principal: Principal,
    *,
    scope: Scope,
    group_by: str | None = None,
    max_groups: int = 10,
    alpha: float = 0.05,
    version: int | None = None,
) -> CohortSurvival:
    """Kaplan–Meier survival of a cohort version's visible members, in one group ``all`` or split by the values
    of a categorical field (a member is in the group of every value it has; members without one form
    :data:`MISSING_GROUP`; values beyond ``max_groups``, by size, get no group).

    Raises:
        NotFoundError: no such cohort or version for this principal and scope.
        FilterError: ``group_by`` is not a categorical field (located at ``group_by``).
    """
    number, members = visible_members(session, cohort_id, principal, version, scope=scope)
    found = members_survival(
        session.connection(), members, scope, group_by=group_by, max_groups=max_groups, alpha=alpha
    )
    return CohortSurvival(cohort_id=cohort_id, version=number, **found)


def members_survival(
    conn: Connection,
    members: list[int],
    scope: Scope,
    *,
    group_by: str | None = None,
    max_groups: int = 10,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Survival of the given (visible) patients, grouped as :func:`cohort_survival` says: the fields of
    :class:`CohortSurvival` other than the cohort's id and version."""
    omitted = 0
    ungrouped: list[int] = []
    if group_by:
        by_value, ungrouped = group_by_field(conn, members, group_by, scope)
        kept = dict(list(by_value.items())[:max_groups])
        omitted = len(by_value) - len(kept)
        groups = {**kept, **({MISSING_GROUP: ungrouped} if ungrouped else {})}
    else:
        groups = {"all": members}
    return {
        "group_by": group_by or None,
        "members": len(members),
        "ungrouped": len(ungrouped),
        "omitted_groups": omitted,
        "result": kaplan_meier(conn, groups, alpha=alpha),
    }


def filter_survival(
    conn: Connection,
    filters: Any,
    scope: Scope,
    *,
    group_by: str | None = None,
    max_groups: int = 10,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Survival of the current patients the scope may see that match ``filters`` (a GDC filter), before any
    cohort is saved: what the cohort builder plots as filters change.

    Raises:
        FilterError: a bad filter, or ``group_by`` not a categorical field.
    """
    members = query.member_ids(conn, filters, scope)
    return members_survival(conn, members, scope, group_by=group_by, max_groups=max_groups, alpha=alpha)


__all__ = [
    "MISSING_GROUP",
    "CohortSurvival",
    "cohort_survival",
    "filter_survival",
    "members_survival",
    "visible_members",
]
