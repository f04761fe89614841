"""``GET /cohorts/{id}/similar`` and ``GET /patients/{id}/similar``: the patients nearest to a patient by
embedding, among a cohort's members or among every patient the caller may see."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from oncograph.embeddings.similar import similar_in_cohort, similar_to_patient
from oncograph_api.deps import CallerDep, SessionDep
from oncograph_api.errors import parameter, problem_responses
from oncograph_api.routers.cohorts import CohortId
from oncograph_api.schemas import Neighbour, PatientSimilarResponse, SimilarResponse

router = APIRouter(tags=["cohort analysis"])

ModelQuery = Annotated[
    str,
    Query(
        max_length=200,
        description="Embedding model.",
        examples=["minilm-l6"],
        # the names oncograph.embeddings.similar accepts
        json_schema_extra={"pattern": "^[A-Za-z0-9._:/@+-]{1,200}$"},
    ),
]
KQuery = Annotated[int, Query(ge=1, le=1000, description="How many neighbours.")]


@router.get(
    "/cohorts/{cohort_id}/similar",
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
    model: ModelQuery,
    k: KQuery = 10,
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


@router.get(
    "/patients/{patient_id}/similar",
    summary="Similar patients",
    description="The `k` live patients you may see nearest to the patient (GDC case UUID or barcode) by cosine "
    "distance between embeddings of `model`, across the whole graph; the query patient's vector is the mean "
    "of its embeddings of the model, and it is never its own neighbour. 404 when you may not see the "
    "patient, or it has no embedding of the model.",
    responses=problem_responses(401, 404, 422),
)
def patient_similar(
    patient_id: Annotated[str, Path(max_length=200, description="GDC case UUID or barcode.")],
    caller: CallerDep,
    session: SessionDep,
    model: ModelQuery,
    k: KQuery = 10,
) -> PatientSimilarResponse:
    with parameter("query.model"):
        found = similar_to_patient(session, scope=caller.scope, patient=patient_id, model=model, k=k)
    return PatientSimilarResponse(
        patient=patient_id, model=model, data=[Neighbour.model_validate(n.to_json()) for n in found]
    )
