"""The one access policy: what a :class:`Scope` may see, written once as SQL predicates.

Every read path (the cohort engine's counts, facets and fields, patient listings and pages, saved cohorts,
survival and similar patients, lineage, runs and exports) filters with these predicates, so "visible to this
scope" means the same thing everywhere:

- **A project is hidden** when it is controlled (``project.controlled``, an admin's mark) and the scope holds
  no grant for it. A hidden project's patients, and every record of theirs, are invisible.
- **A file is hidden** when its own ``access`` is ``controlled`` and the scope holds no grant for the project
  of the patient it belongs to (GDC's rule: open files of any project are visible to everyone).
- **A cohort is hidden** when any of its versions holds a patient of a hidden project (a shared cohort made
  with a grant, or a grant revoked since, must not reveal those patients, their count or its existence).
- **A run is hidden** when it touched a hidden project (``run.projects``), when it was started by another API
  principal (runs of exports are their principal's own; admins see all of them, under the same project
  rule), and, for runs recorded before their projects were (``projects`` NULL), whenever the scope hides any
  project at all.
- **An export is hidden** when its cohort is, and from other principals than its own (admins excepted).

``Scope.everything()`` (the local operator, with direct database access) sees everything; it is always
passed explicitly, never implied by a missing scope.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    FromClause,
    Select,
    and_,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from oncograph.access.scope import Scope
from oncograph.db.models import Base

_PATIENT = Base.metadata.tables["patient"]
_PROJECT = Base.metadata.tables["project"]
_MEMBER = Base.metadata.tables["cohort_member"]
_VERSION = Base.metadata.tables["cohort_version"]
_RUN = Base.metadata.tables["run"]


def _granted(scope: Scope) -> list[str]:
    return sorted(scope.granted_projects)


def hidden_project(scope: Scope, project: FromClause = _PROJECT) -> ColumnElement[bool]:
    """The ``project`` row is controlled and the scope holds no grant for it."""
    if scope.unrestricted:
        return false()
    hidden: ColumnElement[bool] = project.c.controlled.is_(True)
    if scope.granted_projects:
        hidden = and_(hidden, project.c.project_id.not_in(_granted(scope)))
    return hidden


def hidden_project_ids(scope: Scope) -> Select[Any]:
    """The GDC project ids (text) the scope may not see."""
    return select(_PROJECT.c.project_id).where(hidden_project(scope))


def patient_project_visible(scope: Scope, patient: FromClause = _PATIENT) -> ColumnElement[bool]:
    """The patient's project is not hidden (retired patients included)."""
    if scope.unrestricted:
        return true()
    pr = _PROJECT.alias("acl_pr")
    return not_(select(pr.c.id).where(pr.c.id == patient.c.project_id, hidden_project(scope, pr)).exists())


def visible_patient(scope: Scope, patient: FromClause = _PATIENT) -> ColumnElement[bool]:
    """A live patient whose project is not hidden."""
    return and_(patient.c.retired_release_id.is_(None), patient_project_visible(scope, patient))


def granted_patients(scope: Scope) -> Select[Any]:
    """Ids of patients whose project the scope holds a grant for."""
    return (
        select(_PATIENT.c.id)
        .join(_PROJECT, _PROJECT.c.id == _PATIENT.c.project_id)
        .where(_PROJECT.c.project_id.in_(_granted(scope)))
    )


def open_or_granted(
    scope: Scope, is_open: ColumnElement[bool], patient_id: ColumnElement[Any]
) -> ColumnElement[bool]:
    """A record that is open (``is_open``), or belongs to a patient whose project the scope holds a grant for."""
    if scope.unrestricted:
        return true()
    if not scope.granted_projects:
        return is_open
    return or_(is_open, patient_id.in_(granted_patients(scope)))


def controlled_file(file: FromClause) -> ColumnElement[bool]:
    """The file's own ``access`` is ``controlled`` (visible only with a grant for its patient's project)."""
    return and_(file.c.access.is_not(None), file.c.access == "controlled")


def visible_file(scope: Scope, file: FromClause, patient_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """A live file that is not controlled, or whose patient's project the scope holds a grant for."""
    open_file = not_(controlled_file(file))
    return and_(file.c.retired_release_id.is_(None), open_or_granted(scope, open_file, patient_id))


def cohort_hides_members(session: Session, cohort_id: int, scope: Scope) -> bool:
    """Whether any version of the cohort holds a patient of a project the scope may not see."""
    if scope.unrestricted:
        return False
    return bool(session.execute(select(_has_hidden_member(scope, literal(cohort_id)))).scalar_one())


def _has_hidden_member(scope: Scope, cohort_id: ColumnElement[Any]) -> ColumnElement[bool]:
    return (
        select(literal(1))
        .select_from(
            _VERSION.join(_MEMBER, _MEMBER.c.cohort_version_id == _VERSION.c.id)
            .join(_PATIENT, _PATIENT.c.id == _MEMBER.c.patient_id)
            .join(_PROJECT, _PROJECT.c.id == _PATIENT.c.project_id)
        )
        .where(_VERSION.c.cohort_id == cohort_id, hidden_project(scope))
        .exists()
    )


def visible_run(
    scope: Scope, *, principal_id: int | None, is_admin: bool, run: FromClause = _RUN
) -> ColumnElement[bool]:
    """A run the scope may see: one it (or the local operator) started, any run for admins, and only when
    none of its projects is hidden (an unknown project list counts as hidden unless the scope hides none)."""
    if scope.unrestricted:
        return true()
    hidden = hidden_project_ids(scope)
    nothing_hidden = not_(hidden.exists())
    projects_ok = or_(
        and_(run.c.projects.is_(None), nothing_hidden),
        and_(
            run.c.projects.is_not(None),
            not_(run.c.projects.op("&&", return_type=Boolean)(func.array(hidden.scalar_subquery()))),
        ),
    )
    if is_admin:
        return projects_ok
    started_by: ColumnElement[bool] = run.c.principal_id.is_(None)
    if principal_id is not None:
        started_by = or_(started_by, run.c.principal_id == principal_id)
    return and_(started_by, projects_ok)


def visible_export(
    scope: Scope, *, principal_id: int | None, is_admin: bool, export: FromClause
) -> ColumnElement[bool]:
    """An export the scope may see: its own (any for admins), of a cohort none of whose versions holds a
    patient of a hidden project."""
    if scope.unrestricted:
        return true()
    own: ColumnElement[bool] = true() if is_admin else export.c.principal_id == principal_id
    return and_(own, not_(_has_hidden_member(scope, export.c.cohort_id)))


__all__ = [
    "cohort_hides_members",
    "granted_patients",
    "hidden_project",
    "hidden_project_ids",
    "open_or_granted",
    "patient_project_visible",
    "visible_export",
    "visible_file",
    "visible_patient",
    "visible_run",
]
