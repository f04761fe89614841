"""``GET /patients`` (a filtered, sorted, keyset-paged listing) and ``GET /patients/{id}`` (one whole graph)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import Connection

from oncograph.cohorts import patient_detail, patients
from oncograph.cohorts.filters import FilterError, Problem
from oncograph_api.deps import Caller, CallerDep, ConnectionDep
from oncograph_api.errors import located, parameter, problem_responses
from oncograph_api.paging import OffsetQuery, SizeQuery, page_size
from oncograph_api.schemas import (
    EXAMPLE_FILTER,
    UNSTORABLE_TEXT,
    PatientDetail,
    PatientPage,
    PatientSummary,
    unstorable_text,
)

router = APIRouter(tags=["patients"])

"""The deepest ``from`` (GDC's offset paging); deeper, page with the cursor (which costs the same at any depth)."""
DEFAULT_LIMIT = 100

SORT_DESCRIPTION = (
    "Sort field, `-` prefix for descending: "
    + ", ".join(f"`{name}`" for name in patients.SORTS)
    + ". Patients without the value come last; ties are broken by a stable internal order."
)


def decode_filters(raw: str | None) -> Any:
    """The ``filters`` query parameter (JSON text) as an object."""
    if raw is None or not raw.strip():
        return None
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FilterError([Problem("query.filters", f"not valid JSON: {exc.msg} at {exc.pos}")]) from None
    where = unstorable_text(decoded)
    if where is not None:
        raise FilterError([Problem(f"query.filters{'.' + where if where else ''}", UNSTORABLE_TEXT)])
    return decoded


@router.get(
    "/patients",
    summary="List patients",
    description="The current patients you may see that match a GDC filter, one page at a time. Pages are "
    "keyset-paged: pass `next_cursor` as `cursor` with the same `filters` and `sort` to get the next page "
    "(it stays exact however deep you page, and no patient appears twice or is skipped).",
    responses=problem_responses(401, 422),
)
def list_patients(
    caller: CallerDep,
    conn: ConnectionDep,
    filters: Annotated[
        str | None,
        Query(
            description="A GDC filter as JSON text (URL-encoded); empty: every patient.",
            examples=[json.dumps(EXAMPLE_FILTER)],
        ),
    ] = None,
    sort: Annotated[
        str,
        Query(
            description=SORT_DESCRIPTION,
            examples=["-age_at_diagnosis"],
            json_schema_extra={"enum": [f"{d}{name}" for name in patients.SORTS for d in ("", "-")]},
        ),
    ] = "submitter_id",
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=patients.MAX_LIMIT, description=f"Page size (default {DEFAULT_LIMIT}).")
    ] = None,
    size: SizeQuery = None,
    offset: OffsetQuery = None,
) -> PatientPage:
    size_of_page = page_size(limit, size, default=DEFAULT_LIMIT, largest=patients.MAX_LIMIT)
    decoded = decode_filters(filters)
    with parameter("query.sort"):
        patients.parse_sort(sort)
    with located("query"), parameter("query.cursor"):
        if offset:
            cursor, past_end = _skip(conn, caller, decoded, sort, offset, cursor)
            if past_end:
                page = patients.list_patients(conn, caller.scope, filters=decoded, sort=sort, limit=1)
                return PatientPage(
                    data=[], total=page.total, sort=page.sort, limit=size_of_page, next_cursor=None
                )
        page = patients.list_patients(
            conn, caller.scope, filters=decoded, sort=sort, cursor=cursor, limit=size_of_page
        )
    return PatientPage(
        data=[PatientSummary.model_validate(p) for p in page.patients],
        total=page.total,
        sort=page.sort,
        limit=size_of_page,
        next_cursor=page.next_cursor,
    )


def _skip(
    conn: Connection, caller: Caller, filters: Any, sort: str, offset: int, cursor: str | None
) -> tuple[str | None, bool]:
    """The cursor after the first ``offset`` patients from ``cursor`` (or the start), walked in the largest
    pages, and whether the listing ends before it."""
    remaining = offset
    while remaining > 0:
        step = min(remaining, patients.MAX_LIMIT)
        page = patients.list_patients(
            conn, caller.scope, filters=filters, sort=sort, cursor=cursor, limit=step
        )
        remaining -= len(page.patients)
        cursor = page.next_cursor
        if cursor is None:
            return None, True
    return cursor, False


@router.get(
    "/patients/{patient_id}",
    summary="One patient's whole graph",
    description="Everything oncograph holds about one patient, each record with its lineage (source "
    "document, release, run, first/last seen, retired): project, demographic, diagnoses with treatments and "
    "pathology details, follow-ups, exposures, family histories, samples down to aliquots and slides, the "
    "files you may see, linked IDC imaging (studies with their series), linked PDC proteomics, identity "
    "links and embeddings (without vectors). A patient you may not see answers 404, like one that does not "
    "exist.",
    responses=problem_responses(401, 404, 422),
)
def get_patient(
    caller: CallerDep,
    conn: ConnectionDep,
    patient_id: Annotated[
        str,
        Path(description="GDC case UUID or submitter id (barcode).", examples=["TCGA-BH-A0EA"]),
    ],
    include_retired: Annotated[
        bool, Query(description="Also show records that their source no longer has.")
    ] = False,
) -> PatientDetail:
    detail = patient_detail.patient_detail(conn, patient_id, caller.scope, include_retired=include_retired)
    return PatientDetail.model_validate(detail)
