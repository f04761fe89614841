"""``GET /cohorts/{id}/similar``: the cohort members nearest to a patient by embedding."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from oncograph.embeddings.similar import similar_in_cohort
from oncograph_api.deps import CallerDep, SessionDep
from oncograph_api.errors import parameter, problem_responses
from oncograph_api.routers.cohorts import CohortId
from oncograph_api.schemas import Neighbour, SimilarResponse

router = APIRouter(prefix="/cohorts", tags=["cohort analysis"])


@router.get(
    "/{cohort_id}/similar",
    summary="Similar patients in a cohort",
    description="The `k` members of the cohort's latest version (those you may see) nearest to `patient` by "
    "cosine distance between embeddings of `model` (pgvector). The query patient's vector is the mean of its "
    "embeddings of the model; a member's distance is that of its nearest embedding. The query patient need "
    "not be a member, and is never its own neighbour. 404 when the model has no embeddings or the patient "
    "has none of it.",
    responses=problem_responses(401, 404, 422),
)
def similar(
    cohort_id: CohortId,
    caller: CallerDep,
    session: SessionDep,
    patient: Annotated[str, Query(description="GDC case UUID or barcode.", examples=["TCGA-BH-A0EA"])],
    model: Annotated[
        str,
        Query(
            max_length=200,
            description="Embedding model.",
            examples=["uni"],
            # the names oncograph.embeddings.similar accepts
            json_schema_extra={"pattern": "^[A-Za-z0-9._:/@+-]{1,200}$"},
        ),
    ],
    k: Annotated[int, Query(ge=1, le=1000, description="How many neighbours.")] = 10,
) -> SimilarResponse:
    with parameter("query.model"):
        found = similar_in_cohort(
            session, cohort_id, caller.principal, scope=caller.scope, patient=patient, model=model, k=k
        )
    return SimilarResponse(
        cohort_id=cohort_id,
        patient=patient,
        model=model,
        data=[Neighbour.model_validate(n.to_json()) for n in found],
    )
