"""``GET /fields``: the registry of fields that filters, facets and survival groups use."""

from __future__ import annotations

from fastapi import APIRouter

from oncograph.cohorts.fields import FIELDS
from oncograph_api.deps import AnyCallerDep
from oncograph_api.errors import problem_responses
from oncograph_api.schemas import FieldInfo, FieldList

router = APIRouter(tags=["cohort building"])


@router.get(
    "/fields",
    summary="List the filterable fields",
    description="Every field of the registry: GDC `cases` field paths (a filter copied from the GDC portal "
    "works) plus oncograph's own cross-commons fields (`modalities`, `idc.*`, `links.commons`, "
    "`embeddings.*`). `nested` fields may have several values per patient (GDC list semantics apply).",
    responses=problem_responses(401),
)
def list_fields(caller: AnyCallerDep) -> FieldList:
    data = [FieldInfo.model_validate(f.describe()) for f in FIELDS.values()]
    return FieldList(data=data, count=len(data))
