"""Request and response payloads of the REST API: one pydantic model per payload, every field described.

Input models forbid unknown keys (a misspelt key is an error, not silently ignored) and values of another JSON
type (``"size": "5"`` is an error, not 5). Counts that small-count suppression may hide are ``int | str``: the
number, or the string ``"<N>"`` when it lies between 1 and N - 1 (``ONCOGRAPH_MIN_CELL_COUNT`` = N; 0 turns
suppression off). Only principals with aggregate-only access get suppressed counts
(:mod:`oncograph.access.suppression`). One module per resource; import from this package.
"""

from oncograph_api.schemas.base import (
    EXAMPLE_FILTER,
    JSON_INT_MAX,
    PG_BIGINT_MAX,
    PG_INT_MAX,
    UNSTORABLE_TEXT,
    FilterBody,
    JsonInt,
    SuppressedCount,
    unstorable_text,
)
from oncograph_api.schemas.cohorts import (
    SET_OP_ALIASES,
    CohortCreate,
    CohortList,
    CohortPublic,
    DiffPublic,
    FilterSurvivalRequest,
    FilterSurvivalResponse,
    Member,
    MemberPage,
    Neighbour,
    PatientSimilarResponse,
    RefreshResponse,
    SetOperationRequest,
    ShareRequest,
    SimilarResponse,
    SurvivalResponse,
    VersionPublic,
    canonical_set_op,
)
from oncograph_api.schemas.facets import (
    FacetsRequest,
    FacetsResponse,
    HistogramBucket,
    HistogramFacetPublic,
    ModalityCombination,
    ModalityMatrixPublic,
    TermsBucket,
    TermsFacetPublic,
)
from oncograph_api.schemas.patients import (
    CaseIdentity,
    GraphRecord,
    Lineage,
    PatientDetail,
    PatientPage,
    PatientSummary,
)
from oncograph_api.schemas.problems import Problem, ProblemError
from oncograph_api.schemas.provenance import LineagePublic, RunPage, RunPublic
from oncograph_api.schemas.service import FieldInfo, FieldList, Health, ProjectList, ProjectPublic

__all__ = [
    "EXAMPLE_FILTER",
    "JSON_INT_MAX",
    "PG_BIGINT_MAX",
    "PG_INT_MAX",
    "SET_OP_ALIASES",
    "UNSTORABLE_TEXT",
    "CaseIdentity",
    "CohortCreate",
    "CohortList",
    "CohortPublic",
    "DiffPublic",
    "FacetsRequest",
    "FacetsResponse",
    "FieldInfo",
    "FieldList",
    "FilterBody",
    "FilterSurvivalRequest",
    "FilterSurvivalResponse",
    "GraphRecord",
    "Health",
    "HistogramBucket",
    "HistogramFacetPublic",
    "JsonInt",
    "Lineage",
    "LineagePublic",
    "Member",
    "MemberPage",
    "ModalityCombination",
    "ModalityMatrixPublic",
    "Neighbour",
    "PatientDetail",
    "PatientPage",
    "PatientSimilarResponse",
    "PatientSummary",
    "Problem",
    "ProblemError",
    "ProjectList",
    "ProjectPublic",
    "RefreshResponse",
    "RunPage",
    "RunPublic",
    "SetOperationRequest",
    "ShareRequest",
    "SimilarResponse",
    "SuppressedCount",
    "SurvivalResponse",
    "TermsBucket",
    "TermsFacetPublic",
    "VersionPublic",
    "canonical_set_op",
    "unstorable_text",
]
