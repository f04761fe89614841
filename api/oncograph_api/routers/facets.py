"""``POST /facets``: cohort size, facet counts and the modality matrix of a filter, before saving anything."""

from __future__ import annotations

from fastapi import APIRouter

from oncograph.access.suppression import AGGREGATE_ROLE
from oncograph.cohorts import query
from oncograph_api.deps import AnyCallerDep, ConnectionDep
from oncograph_api.errors import located, problem_responses
from oncograph_api.schemas import FacetsRequest, FacetsResponse

router = APIRouter(tags=["cohort building"])


@router.post(
    "/facets",
    summary="Count patients per value",
    description="The number of current patients you may see that match `filters`, and for each field in "
    "`facets` the patients per value (categorical fields) or per bin (numeric fields). Counts are patients, "
    "not records: a patient with two diagnoses of the same stage counts once there, and once in each stage it "
    "has. `modality_matrix: true` adds patients per data modality and per exact combination. Keys with "
    'aggregate-only access get small counts suppressed (1 to N - 1 read "<N>"), nothing but the total for a '
    "cohort under N patients, no histogram min/max, and may not use identifier fields (403).",
    responses=problem_responses(401, 403, 422),
)
def facets(body: FacetsRequest, caller: AnyCallerDep, conn: ConnectionDep) -> FacetsResponse:
    suppress = caller.suppression
    with located("body"):
        if caller.role == AGGREGATE_ROLE:
            query.refuse_identifiers(body.filters, body.facets)
        total, found = query.facets(
            conn,
            body.filters,
            body.facets,
            caller.scope,
            size=body.size,
            bins=body.bins,
            intervals=body.intervals,
        )
        matrix = query.modality_matrix(conn, body.filters, caller.scope) if body.modality_matrix else None
    return FacetsResponse.model_validate(
        {
            "total": suppress.count(total),
            "facets": [suppress.facet(f.to_json(), total=total) for f in found],
            "modality_matrix": suppress.matrix(matrix.to_json()) if matrix is not None else None,
        }
    )
