"""Saved cohorts, their versions, members and analyses."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from oncograph.cohorts.saved import SetOp
from oncograph.cohorts.survival import SurvivalResult
from oncograph_api.schemas.base import JSON_INT_MAX, FilterBody, JsonInt, _Input, _integral, _Output
from oncograph_api.schemas.patients import CaseIdentity


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


class Member(CaseIdentity):
    """A member of a cohort version."""


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


class FilterSurvivalRequest(_Input):
    filters: FilterBody = None
    group_by: str | None = Field(
        default=None, max_length=200, description="A categorical field to split patients by.",
        examples=["diagnoses.ajcc_pathologic_stage"],
    )  # fmt: skip
    max_groups: JsonInt = Field(default=10, ge=1, le=50, description="At most this many value groups.")
    alpha: float = Field(default=0.05, gt=0, lt=1, description="1 - confidence level of the bands.")


class FilterSurvivalResponse(_Output):
    group_by: str | None = Field(description="The field that split the patients; null: one group `all`.")
    members: int = Field(description="Patients matching the filter (those you may see).")
    ungrouped: int = Field(description="Patients without a value of `group_by` (in group `(missing)`).")
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


class PatientSimilarResponse(_Output):
    patient: str = Field(description="The query patient, as given.")
    model: str = Field(description="The embedding model.")
    data: list[Neighbour] = Field(description="Nearest patients first (the query patient excluded).")
