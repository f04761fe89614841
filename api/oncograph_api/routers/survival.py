"""``GET /cohorts/{id}/survival`` and ``POST /survival``: Kaplan–Meier overall survival of a cohort, or of a
filter before anything is saved, optionally split by a field."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from oncograph.cohorts import analysis
from oncograph.cohorts.analysis import MISSING_GROUP
from oncograph.cohorts.survival import SURVIVAL_RULES
from oncograph_api.deps import CallerDep, ConnectionDep, SessionDep
from oncograph_api.errors import located, problem_responses
from oncograph_api.routers.cohorts import CohortId
from oncograph_api.schemas import PG_INT_MAX, FilterSurvivalRequest, FilterSurvivalResponse, SurvivalResponse

router = APIRouter(tags=["cohort analysis"])

DESCRIPTION = f"""Kaplan–Meier overall survival of the members of a cohort version (default: the latest) that
you may see, with pointwise confidence bands and, for two or more non-empty groups, the log-rank test.

**Groups.** Without `group_by` all members form one group, `all`. With `group_by=FIELD` (a categorical
field of GET /fields, patient-level or nested) each member goes into the group of **every** value it has:
a patient with a Stage I and a Stage III diagnosis is in both groups (so groups of a nested field may
overlap, and the log-rank test then counts such a patient in each of its groups). Members without any value
form the group `{MISSING_GROUP}`. Groups are ordered by size; values beyond `max_groups` get no group and
are counted in `omitted_groups`. Numeric fields cannot split members (use a categorical one).

**Rules.** {SURVIVAL_RULES}

Survival curves are row-level results for members you can already list, so small-count suppression does not
apply to them."""


@router.get(
    "/cohorts/{cohort_id}/survival",
    summary="Kaplan–Meier survival",
    description=DESCRIPTION,
    responses=problem_responses(401, 404, 422),
)
def cohort_survival(
    cohort_id: CohortId,
    caller: CallerDep,
    session: SessionDep,
    group_by: Annotated[
        str | None,
        Query(description="A categorical field to split members by.", examples=["diagnoses.stage"]),
    ] = None,
    max_groups: Annotated[int, Query(ge=1, le=50, description="At most this many value groups.")] = 10,
    alpha: Annotated[float, Query(gt=0, lt=1, description="1 - confidence level of the bands.")] = 0.05,
    version: Annotated[
        int | None, Query(ge=1, le=PG_INT_MAX, description="Version (default: the latest).")
    ] = None,
) -> SurvivalResponse:
    with located("query"):
        found = analysis.cohort_survival(
            session,
            cohort_id,
            caller.principal,
            scope=caller.scope,
            group_by=group_by,
            max_groups=max_groups,
            alpha=alpha,
            version=version,
        )
    return SurvivalResponse(
        cohort_id=found.cohort_id,
        version=found.version,
        group_by=found.group_by,
        members=found.members,
        ungrouped=found.ungrouped,
        omitted_groups=found.omitted_groups,
        result=found.result,
    )


@router.post(
    "/survival",
    summary="Kaplan–Meier survival of a filter",
    description="The same curves as GET /cohorts/{id}/survival, for the current patients you may see that "
    "match `filters` (no cohort saved): what the cohort builder plots as its filters change. Groups and rules "
    "as there.",
    responses=problem_responses(401, 422),
)
def filter_survival(
    body: FilterSurvivalRequest, caller: CallerDep, conn: ConnectionDep
) -> FilterSurvivalResponse:
    with located("body"):
        found = analysis.filter_survival(
            conn,
            body.filters,
            caller.scope,
            group_by=body.group_by,
            max_groups=body.max_groups,
            alpha=body.alpha,
        )
    return FilterSurvivalResponse(**found)
