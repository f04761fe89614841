"""Facet counts and the modality matrix."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from oncograph_api.schemas.base import FilterBody, JsonInt, SuppressedCount, _Input, _Output


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
    other_values: SuppressedCount = Field(description="Distinct values beyond `size` not returned.")


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
