"""Request and response payloads of the REST API: one pydantic model per payload, every field described.

Input models forbid unknown keys (a misspelt key is an error, not silently ignored) and values of another JSON
type (``"size": "5"`` is an error, not 5). Counts that small-count suppression may hide are ``int | str``: the
number, or the string ``"<N>"`` when it lies between 1 and N - 1 (``ONCOGRAPH_MIN_CELL_COUNT`` = N; 0 turns
suppression off).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from oncograph.cohorts.saved import SetOp
from oncograph.cohorts.survival import SurvivalResult

SuppressedCount = Annotated[
    int | str,
    Field(
        description='A patient count, or "<N>" when small-count suppression hides a count from 1 to N - 1.',
        examples=[1036, "<11"],
    ),
]

EXAMPLE_FILTER: dict[str, Any] = {
    "op": "and",
    "content": [
        {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-BRCA"]}},
        {"op": ">=", "content": {"field": "diagnoses.age_at_diagnosis", "value": 18250}},
    ],
}
FilterBody = Annotated[
    dict[str, Any] | None,
    Field(
        description="A GDC filter (the GDC API's grammar, so a filter copied from the portal works); null or "
        "{} means every visible patient. GET /fields lists the fields.",
        examples=[EXAMPLE_FILTER],
    ),
]


PG_INT_MAX = 2**31 - 1
"""The largest PostgreSQL ``integer`` (cohort version numbers)."""
PG_BIGINT_MAX = 2**63 - 1
"""The largest PostgreSQL ``bigint`` (row ids): a larger id in a request is invalid, not a server error."""
JSON_INT_MAX = 2**53 - 1
"""The largest integer that every JSON reader holds exactly (a double): the bound of ids in JSON bodies."""

UNSTORABLE_TEXT = "text must not contain NUL (U+0000) characters or unpaired surrogates"


def unstorable_text(value: Any, path: str = "") -> str | None:
    """Where (``path`` extended into ``value``) the first string that PostgreSQL cannot hold is: one with a NUL
    character or an unpaired surrogate (JSON can escape both), in ``value`` or the lists and dicts in it; None
    when every string is storable."""
    if isinstance(value, str):
        if "\x00" in value:
            return path
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found = unstorable_text(key, where)
            if found is None:
                found = unstorable_text(item, where)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = unstorable_text(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = Annotated[int, BeforeValidator(_integral)]
"""An integer of a strict input model as JSON Schema reads one: 3 or 3.0, not "3", 3.5 or true."""


class _Input(BaseModel):
    # Strict: a value of the wrong JSON type is an error (`"shared": 0` is not read as false); and NaN or Infinity
    # (which Python's JSON reader takes) are no numbers.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        where = unstorable_text(data)
        if where is not None:
            raise ValueError(f"{UNSTORABLE_TEXT} (at {where or 'the body'})")
        return data


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """An output whose records carry the source's own columns besides the documented ones."""

    model_config = ConfigDict(extra="allow")


# -- problems -----------------------------------------------------------------------------------------------


class ProblemError(_Output):
    loc: str = Field(description="Where in the request: `query.limit`, `body.filters.content[0].op`.")
    msg: str = Field(description="What is wrong there.")


class Problem(_Output):
    """An RFC 9457 problem document (media type application/problem+json): every error has this shape."""

    type: str = Field(
        description="A URI naming the kind of problem.", examples=["urn:oncograph:problem:not-found"]
    )
    title: str = Field(description="A short summary of the kind of problem.", examples=["Not found"])
    status: int = Field(description="The HTTP status code.", examples=[404])
    detail: str = Field(description="What went wrong this time.", examples=["no cohort 42"])
    instance: str = Field(description="The path of the request.", examples=["/cohorts/42"])
    hint: str | None = Field(default=None, description="What to do next, when known.")
    errors: list[ProblemError] | None = Field(
        default=None, description="Every problem of a request that failed validation, each with its location."
    )


# -- service ------------------------------------------------------------------------------------------------


class Health(_Output):
    status: Literal["ok"] = Field(description="`ok` when the API and its database answer.")
    database: Literal["ok"] = Field(description="`ok` when `SELECT 1` succeeded.")
    version: str = Field(description="The oncograph version serving the API.", examples=["0.1.0"])


class FieldInfo(_Output):
    field: str = Field(
        description="The GDC field path, usable in filters and facets.", examples=["diagnoses.stage"]
    )
    type: Literal["string", "integer", "number", "boolean"] = Field(description="The value type.")
    facet: Literal["terms", "histogram"] = Field(description="The facet kind POST /facets computes for it.")
    nested: bool = Field(
        description="A patient may have several values (one per diagnosis, sample, file...)."
    )
    description: str = Field(description="What the field holds.")
    values: list[str] | None = Field(
        default=None, description="The known values, for enumerations oncograph defines."
    )
    unit: str | None = Field(
        default=None, description="The unit of a numeric field: days, years, calendar year or bytes."
    )


class FieldList(_Output):
    data: list[FieldInfo] = Field(description="Every field of the registry, in registry order.")
    count: int = Field(description="Number of fields.")


class ProjectPublic(_Output):
    project_id: str = Field(description="GDC project id.", examples=["TCGA-BRCA"])
    name: str | None = Field(description="Project name.")
    program: str | None = Field(description="Program name.", examples=["TCGA"])
    primary_site: list[str] | None = Field(description="Primary sites of the project.")
    disease_type: list[str] | None = Field(description="Disease types of the project.")
    controlled: bool = Field(description="Controlled: its data is visible only with a grant (you hold one).")
    patients: SuppressedCount


class ProjectList(_Output):
    data: list[ProjectPublic] = Field(description="The projects you may see, by project id.")
    count: int = Field(description="Number of projects.")


# -- patients -----------------------------------------------------------------------------------------------


class PatientSummary(_Output):
    case_id: str = Field(description="GDC case UUID.", examples=["1f601832-eee3-48fb-acf5-80c4a454f26e"])
    submitter_id: str | None = Field(description="Case barcode.", examples=["TCGA-BH-A0EA"])
    project_id: str | None = Field(description="GDC project id.", examples=["TCGA-BRCA"])
    primary_site: str | None = Field(description="Primary site of the case.")
    disease_type: str | None = Field(description="Disease type of the case.")
    sex: str | None = Field(description="Normalised sex (sex_at_birth, or gender before 2025).")
    vital_status: str | None = Field(description="Demographic vital status.")
    age_at_index: int | None = Field(description="Age at the index date, in years.")
    age_at_diagnosis: int | None = Field(description="Age at the first diagnosis, in days.")


class PatientPage(_Output):
    data: list[PatientSummary] = Field(description="One page of patients in the requested order.")
    total: int = Field(description="Visible patients matching the filter, on all pages.")
    sort: str = Field(description="The order used (`-` prefix: descending).", examples=["submitter_id"])
    limit: int = Field(description="The page size used.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters and sort) for the next page; null on the last page."
    )


class Lineage(_Open):
    """Where a record's values came from. Graph records: the source document version, its release and run,
    the first and last release the record was seen in and the release that retired it (null: current).
    Identity links and embeddings: the run that made them."""

    source_document_id: int | None = Field(default=None, description="The source document version.")
    source: str | None = Field(default=None, description="The source of the document.", examples=["gdc_api"])
    release: str | None = Field(default=None, description="The release the document version was fetched in.")
    run_id: int | None = Field(default=None, description="The run that fetched the document or made the row.")
    first_seen: str | None = Field(default=None, description="First release the record was seen in.")
    last_seen: str | None = Field(default=None, description="Last release the record was seen in.")
    retired: str | None = Field(
        default=None, description="The release that no longer had it; null while current."
    )


class GraphRecord(_Open):
    """One record of the graph: the source's own columns (GDC dictionary names) plus its ``lineage``."""

    lineage: Lineage = Field(description="Where the values came from.")


class PatientDetail(_Output):
    """The whole graph of one patient. Nested records (treatments in diagnoses, portions in samples, series in
    imaging studies...) are GraphRecords too."""

    patient: GraphRecord = Field(description="The GDC case.")
    project: GraphRecord | None = Field(description="Its project (with `program`).")
    demographic: GraphRecord | None = Field(description="Its demographic.")
    diagnoses: list[GraphRecord] = Field(
        description="Diagnoses, each with `treatments` and `pathology_details`."
    )
    treatments_without_diagnosis: list[GraphRecord] = Field(description="Treatments not tied to a diagnosis.")
    follow_ups: list[GraphRecord] = Field(description="Follow-ups, by days_to_follow_up.")
    exposures: list[GraphRecord] = Field(description="Exposures.")
    family_histories: list[GraphRecord] = Field(description="Family histories.")
    samples: list[GraphRecord] = Field(
        description="Samples, each with `portions`; portions with `analytes` (with `aliquots`) and `slides`."
    )
    files: list[GraphRecord] = Field(
        description="Files you may see (controlled files need a grant), each with `sample_ids`."
    )
    imaging: list[GraphRecord] = Field(
        description="Linked IDC patients, each with `studies`; a study with `series_count`, `modalities`, `series`."
    )
    proteomics: list[GraphRecord] = Field(
        description="Linked PDC cases, each with `studies`; a study with `files` counted by category and type."
    )
    identity_links: list[GraphRecord] = Field(
        description="Links to other commons: commons, namespace, external_id, method, confidence, evidence."
    )
    embeddings: list[GraphRecord] = Field(
        description="Embeddings (model, model_version, modality, object_kind, object_id, dim; not the vectors)."
    )


# -- facets -------------------------------------------------------------------------------------------------


class FacetsRequest(_Input):
    filters: FilterBody = None
    facets: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Fields to facet (GET /fields); categorical fields give terms, numeric ones a histogram.",
        examples=[["diagnoses.stage", "demographic.age_at_index"]],
    )
    size: JsonInt = Field(default=50, ge=1, le=1000, description="Terms returned per categorical facet.")
    bins: JsonInt = Field(default=10, ge=1, le=200, description="About how many bins a histogram gets.")
    intervals: dict[str, Annotated[float, Field(gt=0)]] | None = Field(
        default=None,
        description="A fixed bin width per numeric field (overrides `bins`).",
        examples=[{"diagnoses.age_at_diagnosis": 3652.5}],
    )
    modality_matrix: bool = Field(default=False, description="Also count patients per modality combination.")


class TermsBucket(_Output):
    key: Any = Field(description="The value.", examples=["Stage IIA"])
    count: SuppressedCount


class TermsFacetPublic(_Output):
    field: str = Field(description="The field.")
    type: Literal["terms"] = Field(description="A categorical facet.")
    buckets: list[TermsBucket] = Field(
        description="Patients per value, most first (a patient counts once per value)."
    )
    missing: SuppressedCount
    other_values: int = Field(description="Distinct values beyond `size` not returned.")


class HistogramBucket(_Output):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: float = Field(alias="from", description="Lower bound, inclusive.")
    to: float = Field(description="Upper bound, exclusive.")
    count: SuppressedCount


class HistogramFacetPublic(_Output):
    field: str = Field(description="The field.")
    type: Literal["histogram"] = Field(description="A numeric facet.")
    interval: float | None = Field(description="The bin width.")
    buckets: list[HistogramBucket] = Field(description="Patients per bin.")
    missing: SuppressedCount
    stats: dict[str, float | str | None] = Field(
        description="min, max, mean and values (number of values); with suppression on, min/max/mean are null "
        "when fewer than N patients have a value."
    )


class ModalityCombination(_Output):
    modalities: list[str] = Field(description="One exact combination (empty: none).")
    count: SuppressedCount


class ModalityMatrixPublic(_Output):
    total: SuppressedCount
    modalities: dict[str, SuppressedCount] = Field(description="Patients having each modality.")
    combinations: list[ModalityCombination] = Field(description="Patients per exact combination, most first.")


class FacetsResponse(_Output):
    total: SuppressedCount
    facets: list[Annotated[TermsFacetPublic | HistogramFacetPublic, Field(discriminator="type")]] = Field(
        description="One facet per requested field, in request order."
    )
    modality_matrix: ModalityMatrixPublic | None = Field(default=None, description="When asked for.")


# -- cohorts ------------------------------------------------------------------------------------------------


class CohortCreate(_Input):
    """Give `filters` (a cohort of the patients matching it now) or `ids` (a fixed list), not both."""

    name: str = Field(
        min_length=1, max_length=200, description="A name for people.", examples=["BRCA over 50"]
    )
    description: str | None = Field(default=None, max_length=10_000, description="What the cohort is for.")
    filters: FilterBody = None
    ids: list[str] | None = Field(
        default=None,
        max_length=200_000,
        description="GDC case UUIDs or submitter ids (barcodes).",
        examples=[["TCGA-BH-A0EA", "TCGA-AN-A046"]],
    )
    shared: bool = Field(
        default=False, description="Visible to every user (default: only to you and admins)."
    )

    @model_validator(mode="after")
    def _one_definition(self) -> CohortCreate:
        if (self.filters is None) == (self.ids is None):
            raise ValueError("give either 'filters' or 'ids' (exactly one)")
        return self


SET_OP_ALIASES: dict[str, SetOp] = {"intersect": "intersection", "subtract": "difference"}
"""The CLI's older words for set operations; the documented vocabulary is union, intersection, difference."""


def canonical_set_op(op: str) -> SetOp:
    """``union``, ``intersection`` or ``difference`` for any accepted spelling."""
    if op in SET_OP_ALIASES:
        return SET_OP_ALIASES[op]
    if op in ("union", "intersection", "difference"):
        return op  # type: ignore[return-value]  # narrowed by the test above
    raise ValueError(f"unknown set operation {op!r}")


class SetOperationRequest(_Input):
    op: Literal["union", "intersection", "difference", "intersect", "subtract"] = Field(
        description="`union`, `intersection`, or `difference` (the first cohort minus all others); "
        "`intersect` and `subtract` (the CLI's older words) mean intersection and difference.",
        examples=["intersection"],
    )
    # the bounds before the validator: after it, pydantic leaves them out of the JSON schema
    cohorts: list[Annotated[int, Field(ge=1, le=JSON_INT_MAX), BeforeValidator(_integral)]] = Field(
        min_length=2, max_length=100, description="Cohort ids.", examples=[[1, 2, 3]]
    )
    name: str = Field(min_length=1, max_length=200, description="Name of the new cohort.")
    description: str | None = Field(default=None, max_length=10_000, description="What the cohort is for.")
    shared: bool = Field(default=False, description="Visible to every user.")


class ShareRequest(_Input):
    shared: bool = Field(default=True, description="true: visible to every user; false: private again.")


class VersionPublic(_Output):
    version: int = Field(description="Version number, from 1.")
    size: int = Field(description="Members.")
    member_hash: str = Field(description="SHA-256 of the sorted member case UUIDs, one per line.")
    releases: list[dict[str, Any]] = Field(description="Source releases current when it was computed.")
    scope: dict[str, Any] = Field(description="The access scope it was computed under.")
    details: dict[str, Any] = Field(description="E.g. `unresolved` ids of an id list.")
    created_at: dt.datetime = Field(description="When it was computed.")


class CohortPublic(_Output):
    id: int = Field(description="Cohort id.")
    name: str = Field(description="Name.")
    description: str | None = Field(description="Description.")
    owner: str = Field(description="The principal that made it.")
    kind: Literal["filter", "ids", "set"] = Field(description="How it is defined.")
    definition: dict[str, Any] = Field(description="The filter, the id list or the set operation.")
    shared: bool = Field(description="Visible to every user.")
    created_at: dt.datetime = Field(description="When it was made.")
    deleted: bool = Field(description="Soft-deleted.")
    versions: int = Field(description="Number of versions.")
    latest: VersionPublic = Field(description="The latest version.")
    size: int = Field(description="Members of the latest version (your cohorts are never suppressed).")
    member_hash: str = Field(description="member_hash of the latest version.")
    releases: list[dict[str, Any]] = Field(description="releases of the latest version.")


class CohortList(_Output):
    data: list[CohortPublic] = Field(description="Cohorts you may see: yours, shared ones (admins: all).")
    count: int = Field(description="Number of cohorts.")


class DiffPublic(_Output):
    cohort_id: int = Field(description="Cohort id.")
    from_version: int = Field(description="The older version.")
    to_version: int = Field(description="The newer version.")
    added: list[str] = Field(description="Case UUIDs in `to_version` only.")
    removed: list[str] = Field(description="Case UUIDs in `from_version` only.")
    added_count: int = Field(description="len(added).")
    removed_count: int = Field(description="len(removed).")
    unchanged: int = Field(description="Members of both.")


class RefreshResponse(_Output):
    cohort: CohortPublic = Field(description="The cohort after the refresh.")
    diff: DiffPublic = Field(description="Against the version that was latest before.")


class Member(_Output):
    case_id: str = Field(description="GDC case UUID.")
    submitter_id: str | None = Field(description="Case barcode.")
    project_id: str | None = Field(description="GDC project id.")
    primary_site: str | None = Field(description="Primary site.")
    disease_type: str | None = Field(description="Disease type.")


class MemberPage(_Output):
    data: list[Member] = Field(description="Members in a stable order.")
    total: int = Field(description="Members of the version.")
    version: int = Field(description="The version listed.")
    next_after: int | None = Field(description="Pass as `after` for the next page; null on the last page.")


class SurvivalResponse(_Output):
    cohort_id: int = Field(description="Cohort id.")
    version: int = Field(description="The cohort version whose members were used.")
    group_by: str | None = Field(description="The field that split the members; null: one group `all`.")
    members: int = Field(description="Members used (those you may see).")
    ungrouped: int = Field(description="Members without a value of `group_by` (in group `(missing)`).")
    omitted_groups: int = Field(description="Values beyond `max_groups` that got no group.")
    result: SurvivalResult = Field(description="Kaplan–Meier curves per group, log-rank test, and the rules.")


class Neighbour(_Output):
    case_id: str = Field(description="GDC case UUID.")
    submitter_id: str | None = Field(description="Case barcode.")
    project_id: str | None = Field(description="GDC project id.")
    distance: float = Field(
        description="Cosine distance to the query patient (smallest over its embeddings)."
    )
    similarity: float = Field(description="1 - distance.")
    nearest_object: str = Field(description="The object whose embedding was nearest.")


class SimilarResponse(_Output):
    cohort_id: int = Field(description="Cohort id.")
    patient: str = Field(description="The query patient, as given.")
    model: str = Field(description="The embedding model.")
    data: list[Neighbour] = Field(description="Nearest members first (the query patient excluded).")


# -- provenance ---------------------------------------------------------------------------------------------


class RunPublic(_Output):
    id: int = Field(description="Run id.")
    transform: str = Field(description="What ran.", examples=["harvest_gdc"])
    code_version: str = Field(description="oncograph version that ran it.")
    status: str = Field(description="running, succeeded, failed or abandoned.")
    parameters: dict[str, Any] = Field(description="Its parameters.")
    counts: dict[str, Any] = Field(description="What it counted (inserted, updated, ...).")
    error: str | None = Field(description="Why it failed.")
    started_at: dt.datetime = Field(description="Start.")
    finished_at: dt.datetime | None = Field(description="End; null while running.")
    prefect_flow_run_id: str | None = Field(description="The Prefect flow run, when a flow ran it.")
    source_release: str | None = Field(description="The source release it harvested.")


class RunPage(_Output):
    data: list[RunPublic] = Field(description="Runs, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for older runs; null on the last page.")


class LineagePublic(_Output):
    id: str = Field(description="The id asked for.")
    records: list[dict[str, Any]] = Field(
        description="Graph rows of any kind with that id: kind, key, source document, first/last seen release."
    )
    documents: list[dict[str, Any]] = Field(
        description="Every stored version of their source documents (`current`: the one the row is built from), "
        "with release and run."
    )
