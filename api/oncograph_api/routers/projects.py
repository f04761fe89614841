"""``GET /projects``: the projects the caller may see, with their numbers of patients."""

from __future__ import annotations

from fastapi import APIRouter

from oncograph.cohorts.patients import project_counts
from oncograph_api.deps import AnyCallerDep, ConnectionDep
from oncograph_api.errors import problem_responses
from oncograph_api.schemas import ProjectList, ProjectPublic

router = APIRouter(tags=["patients"])


@router.get(
    "/projects",
    summary="List projects with patient counts",
    description="Every project you may see and its number of current patients. Controlled projects appear "
    'only with a grant. With small-count suppression on, counts from 1 to N - 1 read "<N>".',
    responses=problem_responses(401),
)
def list_projects(caller: AnyCallerDep, conn: ConnectionDep) -> ProjectList:
    suppress = caller.suppression
    rows = project_counts(conn, caller.scope)
    data = [ProjectPublic.model_validate({**r, "patients": suppress.count(int(r["patients"]))}) for r in rows]
    return ProjectList(data=data, count=len(data))
