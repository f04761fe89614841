"""Saved cohorts: create (from a filter, an id list or an uploaded id file), list, read, share, refresh, diff,
set operations, members, delete. Reading needs any role; changing needs curator (and ownership, or admin)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from oncograph.cohorts import saved
from oncograph.cohorts.patients import visible_case_ids
from oncograph.errors import ValidationError
from oncograph.sources.gdc.portal.id_lists import read_id_file
from oncograph_api.deps import Caller, CallerDep, ConnectionDep, CuratorDep, SessionDep
from oncograph_api.errors import ContentTooLarge, InvalidParameter, located, parameter, problem_responses
from oncograph_api.paging import OffsetQuery, SizeQuery, page_size
from oncograph_api.schemas import (
    PG_BIGINT_MAX,
    PG_INT_MAX,
    UNSTORABLE_TEXT,
    CohortCreate,
    CohortList,
    CohortPublic,
    DiffPublic,
    Member,
    MemberPage,
    RefreshResponse,
    SetOperationRequest,
    ShareRequest,
    canonical_set_op,
    unstorable_text,
)

router = APIRouter(prefix="/cohorts", tags=["cohorts"])

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_MEMBERS_PAGE = 10_000
"""The deepest ``from`` (GDC's offset paging) of a member listing; deeper, page with ``after``."""
CohortId = Annotated[int, Path(ge=1, le=PG_BIGINT_MAX, description="Cohort id.", examples=[1])]


def _public(info: saved.CohortInfo) -> CohortPublic:
    return CohortPublic.model_validate(info.to_json())


def _save(
    create: Callable[..., saved.CohortInfo],
    caller: Caller,
    session: Session,
    *,
    name: str,
    description: str | None,
    shared: bool,
) -> CohortPublic:
    """Save a new cohort owned by the caller and frozen in the caller's scope.

    Args:
        create: a constructor of :mod:`oncograph.cohorts.saved` with its definition bound
            (``partial(saved.create_from_ids, ids=...)``).
    """
    info = create(
        session, name=name, owner=caller.principal, scope=caller.scope, description=description, shared=shared
    )
    return _public(info)


@router.post(
    "",
    status_code=201,
    summary="Save a cohort",
    description="Save the patients you may see that match `filters` now, or a fixed list of `ids` (GDC case "
    "UUIDs or barcodes; ids matching no visible patient are listed in `latest.details.unresolved`). The "
    "cohort is frozen as version 1: members, member hash, the source releases and your access scope. Needs "
    "the curator role.",
    responses=problem_responses(401, 403, 422),
)
def create_cohort(body: CohortCreate, caller: CuratorDep, session: SessionDep) -> CohortPublic:
    if body.ids is not None:
        create, where = partial(saved.create_from_ids, ids=body.ids, source="api"), parameter("body.ids")
    else:
        create, where = partial(saved.create_from_filter, filters=body.filters), located("body")
    with where:
        return _save(
            create, caller, session, name=body.name, description=body.description, shared=body.shared
        )


@dataclass(frozen=True, slots=True)
class Upload:
    """An uploaded id file: the raw body, or the ``file`` part of a multipart form (and its other fields)."""

    content: bytes
    filename: str | None
    fields: dict[str, str]


async def read_upload(request: Request) -> Upload:
    """The request body, at most MAX_UPLOAD_BYTES; a multipart form is parsed with the standard library."""
    size = 0
    chunks = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise ContentTooLarge(MAX_UPLOAD_BYTES)
        chunks.append(chunk)
    body = b"".join(chunks)
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return Upload(body, None, {})
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts: list[Message] = list(message.iter_parts()) if message.is_multipart() else []
    fields: dict[str, str] = {}
    file_part: Message | None = None
    for part in parts:
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None or name == "file":
            if file_part is None or name == "file":
                file_part = part
        elif isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if file_part is None:
        raise ValidationError(
            "the multipart upload has no file part", hint="send the id file as the form field 'file'"
        )
    payload = file_part.get_payload(decode=True)
    return Upload(payload if isinstance(payload, bytes) else b"", file_part.get_filename(), fields)


_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "The id file."},
                    "name": {"type": "string", "description": "Cohort name (if not in the query)."},
                    "description": {"type": "string", "description": "Cohort description."},
                },
            }
        },
        "text/plain": {"schema": {"type": "string"}, "example": "TCGA-BH-A0EA\nTCGA-AN-A046\n"},
        "text/tab-separated-values": {
            "schema": {"type": "string"},
            "example": "case_id\tproject_id\n1f601832-eee3-48fb-acf5-80c4a454f26e\tTCGA-BRCA\n",
        },
        "text/csv": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "string"}, "example": '{"case_ids": ["TCGA-BH-A0EA"]}'},
    },
}


@router.post(
    "/upload",
    status_code=201,
    summary="Save a cohort from an id file",
    description="Save a fixed list of patients read from an uploaded file: one id per line, a TSV/CSV with a "
    "`case_id`, `id` or `submitter_id` column (a GDC portal cohort or cases-table export), or JSON (a list "
    'of ids, a list of objects with one of those keys, or `{"case_ids": [...]}`). Send the file as the '
    "request body, or as the `file` part of a multipart form. Needs the curator role.",
    responses=problem_responses(401, 403, 413, 422),
    openapi_extra={"requestBody": _UPLOAD_BODY},
)
def upload_cohort(
    caller: CuratorDep,
    session: SessionDep,
    upload: Annotated[Upload, Depends(read_upload)],
    name: Annotated[str | None, Query(max_length=200, description="Cohort name (or the form field).")] = None,
    description: Annotated[str | None, Query(max_length=10_000, description="Cohort description.")] = None,
    shared: Annotated[bool, Query(description="Visible to every user.")] = False,
) -> CohortPublic:
    name = name or upload.fields.get("name") or upload.filename
    if not name:
        raise ValidationError("the cohort needs a name", hint="pass ?name=... or a form field 'name'")
    with parameter("body"):
        ids = read_id_file(upload.content)
    description = description or upload.fields.get("description")
    if unstorable_text([name, description, ids]) is not None:
        raise InvalidParameter("body", UNSTORABLE_TEXT)
    source = f"upload:{upload.filename}" if upload.filename else "upload"
    with parameter("body"):
        create = partial(saved.create_from_ids, ids=ids, source=source)
        return _save(create, caller, session, name=name, description=description, shared=shared)


@router.post(
    "/set-operations",
    status_code=201,
    summary="Combine cohorts",
    description="A new cohort from the latest versions of two or more cohorts you may see: `union`, "
    "`intersection`, or `difference` (the first minus all others); the CLI's words `intersect` and "
    "`subtract` are accepted too. Needs the curator role.",
    responses=problem_responses(401, 403, 404, 422),
)
def set_operation(body: SetOperationRequest, caller: CuratorDep, session: SessionDep) -> CohortPublic:
    create = partial(saved.set_operation, op=canonical_set_op(body.op), cohort_ids=body.cohorts)
    return _save(create, caller, session, name=body.name, description=body.description, shared=body.shared)


@router.get(
    "",
    summary="List cohorts",
    description="Your cohorts and shared ones (admins see all), oldest first; deleted ones are left out.",
    responses=problem_responses(401),
)
def list_cohorts(caller: CallerDep, session: SessionDep) -> CohortList:
    data = [_public(c) for c in saved.list_cohorts(session, caller.principal, caller.scope)]
    return CohortList(data=data, count=len(data))


@router.get(
    "/{cohort_id}",
    summary="Read a cohort",
    description="The cohort's definition and its latest version. Another user's private cohort answers 404.",
    responses=problem_responses(401, 404, 422),
)
def get_cohort(cohort_id: CohortId, caller: CallerDep, session: SessionDep) -> CohortPublic:
    return _public(saved.get(session, cohort_id, caller.principal, caller.scope))


@router.delete(
    "/{cohort_id}",
    status_code=204,
    summary="Delete a cohort",
    description="Soft delete: the cohort disappears from listings and answers 404; its versions stay "
    "for provenance. Only its owner (or an admin) may delete it.",
    responses=problem_responses(401, 403, 404, 422),
)
def delete_cohort(cohort_id: CohortId, caller: CuratorDep, session: SessionDep) -> Response:
    saved.delete(session, cohort_id, caller.principal, caller.scope)
    return Response(status_code=204)


@router.post(
    "/{cohort_id}/share",
    summary="Share or unshare a cohort",
    description="`shared: true` makes the cohort visible to every user; `false` makes it private again. "
    "Only its owner (or an admin).",
    responses=problem_responses(401, 403, 404, 422),
)
def share_cohort(
    cohort_id: CohortId, caller: CuratorDep, session: SessionDep, body: ShareRequest | None = None
) -> CohortPublic:
    shared = body.shared if body is not None else True
    return _public(saved.set_shared(session, cohort_id, caller.principal, shared, caller.scope))


@router.post(
    "/{cohort_id}/refresh",
    summary="Recompute a cohort",
    description="Recompute the cohort against current data under your access scope (a set operation uses its "
    "operands' latest versions). A new version is made only when members or releases changed; the diff is "
    "against the previous latest version. Only its owner (or an admin).",
    responses=problem_responses(401, 403, 404, 422),
)
def refresh_cohort(
    cohort_id: CohortId, caller: CuratorDep, session: SessionDep, conn: ConnectionDep
) -> RefreshResponse:
    info, diff = saved.refresh(session, cohort_id, caller.principal, caller.scope)
    return RefreshResponse(cohort=_public(info), diff=_diff(conn, diff, caller))


def _diff(conn: Connection, diff: saved.Diff, caller: Caller) -> DiffPublic:
    """The diff without the case ids the caller may not see (a shared cohort made under more grants)."""
    body = diff.to_json()
    if not caller.scope.unrestricted and (diff.added or diff.removed):
        visible = visible_case_ids(conn, [*diff.added, *diff.removed], caller.scope)
        body["added"] = [c for c in diff.added if c in visible]
        body["removed"] = [c for c in diff.removed if c in visible]
        body["added_count"], body["removed_count"] = len(body["added"]), len(body["removed"])
    return DiffPublic.model_validate(body)


@router.get(
    "/{cohort_id}/diff",
    summary="Compare two versions",
    description="Members added and removed from version `from` to version `to` (default: the latest), as "
    "GDC case UUIDs.",
    responses=problem_responses(401, 404, 422),
)
def diff_cohort(
    cohort_id: CohortId,
    caller: CallerDep,
    session: SessionDep,
    conn: ConnectionDep,
    from_version: Annotated[int, Query(alias="from", ge=1, le=PG_INT_MAX, description="The older version.")],
    to_version: Annotated[
        int | None, Query(alias="to", ge=1, le=PG_INT_MAX, description="The newer version.")
    ] = None,
) -> DiffPublic:
    return _diff(
        conn,
        saved.diff(session, cohort_id, caller.principal, from_version, to_version, scope=caller.scope),
        caller,
    )


@router.get(
    "/{cohort_id}/members",
    summary="List members",
    description="A page of a version's members (default: the latest) in a stable order. Pass `next_after` "
    "as `after` for the next page (keyset paging: exact at any depth). The GDC API's paging words work too: "
    "`size` for `limit` (given both, the smaller is used), and `from` (skip this many members, counted "
    "from `after` when it is given).",
    responses=problem_responses(401, 404, 422),
)
def list_members(
    cohort_id: CohortId,
    caller: CallerDep,
    session: SessionDep,
    conn: ConnectionDep,
    after: Annotated[
        int | None, Query(ge=0, le=PG_BIGINT_MAX, description="`next_after` of the previous page.")
    ] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_MEMBERS_PAGE, description="Page size (default 100).")
    ] = None,
    version: Annotated[
        int | None, Query(ge=1, le=PG_INT_MAX, description="Version (default: the latest).")
    ] = None,
    size: SizeQuery = None,
    offset: OffsetQuery = None,
) -> MemberPage:
    size_of_page = page_size(limit, size, default=100, largest=MAX_MEMBERS_PAGE)
    remaining = offset or 0  # members skipped after `after` (or from the start)
    while remaining > 0:  # GDC offset paging, walked in the largest pages
        skipped = saved.members(
            session,
            cohort_id,
            caller.principal,
            version_number=version,
            after=after,
            limit=min(remaining, MAX_MEMBERS_PAGE),
            scope=caller.scope,
        )
        remaining -= len(skipped.members)
        after = skipped.next_after
        if after is None:
            number = saved.version(session, cohort_id, caller.principal, version, scope=caller.scope).version
            return MemberPage(data=[], total=skipped.total, version=number, next_after=None)
    page = saved.members(
        session,
        cohort_id,
        caller.principal,
        version_number=version,
        after=after,
        limit=size_of_page,
        scope=caller.scope,
    )
    number = saved.version(session, cohort_id, caller.principal, version, scope=caller.scope).version
    rows = page.members
    if rows and not caller.scope.unrestricted:
        visible = visible_case_ids(conn, [m["case_id"] for m in rows], caller.scope)
        rows = [m for m in rows if m["case_id"] in visible]
    return MemberPage(
        data=[Member.model_validate(m) for m in rows],
        total=page.total,
        version=number,
        next_after=page.next_after,
    )
