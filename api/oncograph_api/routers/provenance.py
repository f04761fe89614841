"""Provenance: ``GET /runs`` (newest first), ``GET /runs/{id}`` and ``GET /lineage/{entity_id}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from oncograph.access.policy import visible_run
from oncograph.cohorts.provenance import visible_lineage
from oncograph.db.models import Run, SourceRelease
from oncograph.errors import NotFoundError
from oncograph_api.deps import Caller, CallerDep, SessionDep
from oncograph_api.errors import InvalidParameter, problem_responses
from oncograph_api.schemas import PG_BIGINT_MAX, LineagePublic, RunPage, RunPublic

router = APIRouter(tags=["provenance"])


def _run(run: Run, release: str | None) -> RunPublic:
    return RunPublic(
        id=run.id,
        transform=run.transform,
        code_version=run.code_version,
        status=run.status,
        parameters=run.parameters,
        counts=run.counts,
        error=run.error,
        started_at=run.started_at,
        finished_at=run.finished_at,
        prefect_flow_run_id=str(run.prefect_flow_run_id) if run.prefect_flow_run_id else None,
        source_release=release,
    )


def _runs_query(caller: Caller) -> Any:
    """Runs the caller may see (:func:`oncograph.access.policy.visible_run`), with their release."""
    visible = visible_run(
        caller.scope, principal_id=caller.principal.id, is_admin=caller.role == "admin", run=Run.__table__
    )
    return (
        select(Run, SourceRelease.release)
        .outerjoin(SourceRelease, SourceRelease.id == Run.source_release_id)
        .where(visible)
    )


@router.get(
    "/runs",
    summary="List runs",
    description="Executions of transforms (harvests, imports, linking, exports), newest first, with their "
    "parameters, status and counts. Pass `next_cursor` as `cursor` for older runs. You see the operator's runs "
    "and your own (admins: everyone's), and none that touched a controlled project you have no grant for.",
    responses=problem_responses(401, 422),
)
def list_runs(
    caller: CallerDep,
    session: SessionDep,
    cursor: Annotated[
        str | None,
        Query(description="`next_cursor` of the previous page.", json_schema_extra={"pattern": "^[0-9]+$"}),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
    transform: Annotated[str | None, Query(description="Only runs of this transform.")] = None,
) -> RunPage:
    q = _runs_query(caller)
    if cursor is not None:
        if not (cursor.isascii() and cursor.isdigit()):
            raise InvalidParameter("query.cursor", "the cursor is not one this listing returned")
        # runs older than the cursor: one beyond the largest id (a bigint) is before every run
        q = q.where(Run.id < min(int(cursor), PG_BIGINT_MAX))
    if transform:
        q = q.where(Run.transform == transform)
    rows = session.execute(q.order_by(Run.id.desc()).limit(limit + 1)).all()
    data = [_run(run, release) for run, release in rows[:limit]]
    return RunPage(data=data, next_cursor=str(data[-1].id) if len(rows) > limit else None)


@router.get(
    "/runs/{run_id}",
    summary="Read a run",
    description="One run: what ran, with which parameters and code version, when, and what it counted.",
    responses=problem_responses(401, 404, 422),
)
def get_run(
    run_id: Annotated[int, Path(ge=1, le=PG_BIGINT_MAX, description="Run id.")],
    caller: CallerDep,
    session: SessionDep,
) -> RunPublic:
    row = session.execute(_runs_query(caller).where(Run.id == run_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"no run {run_id}", hint="GET /runs lists the runs")
    return _run(row[0], row[1])


@router.get(
    "/lineage/{entity_id}",
    summary="Where a record came from",
    description="Every graph row that an id names (a GDC UUID of any kind, a submitter id or a project id) with "
    "the source document version it was built from, its first and last seen releases, and every stored "
    "version of those documents with their release and run. Records you may not see are left out; an id "
    "with none you may see answers 404.",
    responses=problem_responses(401, 404),
)
def lineage(
    entity_id: Annotated[str, Path(description="An id.", examples=["TCGA-BH-A0EA"])],
    caller: CallerDep,
    session: SessionDep,
) -> LineagePublic:
    return LineagePublic.model_validate(visible_lineage(session, entity_id, caller.scope))
