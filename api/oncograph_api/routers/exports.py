"""Dataset exports of cohorts: queue one (a job that a worker runs), follow its progress, read its manifest.

``POST`` only records a queued export; an export worker (``oncograph serve`` runs one on a thread,
``oncograph worker`` standalone, or the Prefect flow) claims and runs it, so an API restart loses nothing
(docs/adr/0005-export-jobs.md). Exports are written under the server's export root
(``ONCOGRAPH_EXPORT_ROOT``: a folder or an ``s3://bucket/prefix``; default ``$ONCOGRAPH_HOME/exports``), in
``<root>/<principal>/<name>``: a name belongs to its principal, so nobody can replace another's export, and
clients never choose server paths. The export runs under the caller's access scope (controlled data only with
a grant) and the manifest records the principal.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from sqlalchemy import select
from sqlalchemy.orm import Session

from oncograph.access.policy import visible_export
from oncograph.db.models import Export
from oncograph.errors import NotFoundError
from oncograph.export.job import create_export
from oncograph.export.options import SEED_MAX, ExportOptions
from oncograph.export.published import read_published_file
from oncograph.export.schema import DEFAULT_STRATIFY, STRATIFY_FIELDS
from oncograph_api.deps import ApiState, Caller, CallerDep, CuratorDep, SessionDep, StateDep
from oncograph_api.errors import parameter, problem_responses
from oncograph_api.routers.cohorts import CohortId
from oncograph_api.schemas import PG_BIGINT_MAX, PG_INT_MAX

router = APIRouter(tags=["exports"])
log = logging.getLogger("oncograph.api.exports")

ExportId = Annotated[int, Path(ge=1, le=PG_BIGINT_MAX, description="Export id.", examples=[1])]


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None,
        description="Folder name under your own folder of the server's export root (letters, digits, . _ -); "
        "default export-<id>.",
        examples=["brca-slides-v1"],
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
    )
    version: int | None = Field(None, ge=1, le=PG_INT_MAX, description="Cohort version (default: latest).")
    split_by: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STRATIFY),
        description=f"Stratify the patient-level split by these fields: {', '.join(STRATIFY_FIELDS)}.",
        max_length=len(STRATIFY_FIELDS),
    )
    seed: StrictInt = Field(
        0, ge=0, le=SEED_MAX, description="Split seed: the same seed gives the same split."
    )
    ratios: list[float] = Field(
        default_factory=lambda: [0.7, 0.15, 0.15],
        min_length=3,
        max_length=3,
        description="train, val, test fractions (non-negative, summing to 1).",
    )
    overwrite: StrictBool = Field(
        False,
        description="Replace your earlier export of the same name (its record becomes superseded); refused "
        "(409) when its folder also holds files the export's manifest does not list.",
    )
    tiles: StrictBool = Field(
        False,
        description="Also ship per-tile slide features for multiple-instance learning: each slide embedding's "
        "HDF5 feature file under tiles/<model>/ (verified against its recorded sha256; a missing or changed "
        "file fails the export) and a tile-level Parquet dataset tiles/<model>/features.parquet/.",
        examples=[True],
    )


class ExportStatus(BaseModel):
    id: int
    cohort_id: int
    cohort_version: int
    destination: str
    status: str = Field(
        description="queued, running, succeeded, failed, abandoned (its workers died) or superseded "
        "(replaced by a later export of the same name)."
    )
    attempts: int = Field(0, description="How many times a worker started it.")
    progress: dict[str, Any] = Field(description='{"stage", "done", "total"} while it runs.')
    error: str | None
    options: dict[str, Any]
    created_at: dt.datetime
    finished_at: dt.datetime | None
    manifest: dict[str, Any] | None = Field(
        None, description="The published manifest (files with sha256, row counts, provenance) once succeeded."
    )


class ExportList(BaseModel):
    data: list[ExportStatus]
    count: int


def _status(row: Export, *, manifest: bool = True) -> ExportStatus:
    return ExportStatus(
        id=row.id,
        cohort_id=row.cohort_id,
        cohort_version=row.cohort_version,
        destination=row.destination,
        status=row.status,
        attempts=row.attempts,
        progress=dict(row.progress or {}),
        error=row.error,
        options=dict(row.options or {}),
        created_at=row.created_at,
        finished_at=row.finished_at,
        manifest=row.manifest if manifest else None,
    )


def _visible(caller: Caller) -> Any:
    return visible_export(
        caller.scope,
        principal_id=caller.principal.id,
        is_admin=caller.role == "admin",
        export=Export.__table__,
    )


def _own_export(session: Session, export_id: int, caller: Caller) -> Export:
    """The export, if the caller may see it: its own (any for admins), of a cohort it may see."""
    row = session.execute(select(Export).where(Export.id == export_id, _visible(caller))).scalar_one_or_none()
    if row is None or (row.principal_id != caller.principal.id and caller.role != "admin"):
        raise NotFoundError(f"no export {export_id}", hint="GET /exports lists your exports")
    return row


@router.post(
    "/cohorts/{cohort_id}/exports",
    status_code=202,
    summary="Export a cohort version as an ML-ready dataset",
    description="Queues an export (Parquet tables, Croissant, gdc-client and s5cmd manifests, "
    "patient-level splits) of a cohort version you can see, under your access scope; an export worker runs it. "
    "Poll GET /exports/{id} for status and progress; the destination appears complete or not at all. "
    "The destination is checked at once: a name that already holds your export (without overwrite), or whose "
    "folder holds files the export does not own, is a 409. Needs the curator role.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def start_export(
    cohort_id: CohortId,
    body: ExportRequest,
    caller: CuratorDep,
    session: SessionDep,
    state: StateDep,
) -> ExportStatus:
    root = _export_root(state)
    with parameter("body"):
        options = ExportOptions(
            split_by=tuple(body.split_by),
            seed=body.seed,
            ratios=(body.ratios[0], body.ratios[1], body.ratios[2]),
            overwrite=body.overwrite,
            tiles=body.tiles,
        )
    # a name belongs to its principal: <root>/<principal>/<name> (principal names are path-safe)
    folder = f"{root}/{caller.principal.name}"
    name = body.name
    # the destination is checked here (409: the name holds an export and no overwrite, or files that are not
    # the export's; 422: not a folder), so a bad one is an answer now and never a failed job
    row = create_export(
        session,
        cohort_id=cohort_id,
        principal=caller.principal,
        destination=(lambda export_id: f"{folder}/{name or f'export-{export_id}'}"),
        options=options,
        version=body.version,
        scope=caller.scope,
        endpoint_url=state.settings.s3_endpoint_url,
    )
    # the request's transaction commits when this function returns; a worker then claims the queued job
    return _status(row)


def _export_root(state: ApiState) -> str:
    configured = state.settings.export_root
    if configured:
        return str(configured).rstrip("/")
    return str(state.settings.home_dir / "exports")


@router.get(
    "/exports",
    summary="Your exports",
    description="Exports you started (all exports for admins) of cohorts you may see, newest first, without "
    "manifests.",
    responses=problem_responses(401),
)
def list_exports(caller: CallerDep, session: SessionDep) -> ExportList:
    q = select(Export).where(_visible(caller)).order_by(Export.id.desc()).limit(1000)
    if caller.role != "admin":
        q = q.where(Export.principal_id == caller.principal.id)
    rows = [_status(r, manifest=False) for r in session.execute(q).scalars()]
    return ExportList(data=rows, count=len(rows))


@router.get(
    "/exports/{export_id}",
    summary="Export status",
    description="Status, progress and, once succeeded, the manifest of an export you started.",
    responses=problem_responses(401, 404, 422),
)
def get_export(export_id: ExportId, caller: CallerDep, session: SessionDep) -> ExportStatus:
    return _status(_own_export(session, export_id, caller))


@router.get(
    "/exports/{export_id}/manifest",
    summary="Download the manifest",
    description="The published manifest.json of a succeeded export (404 until it has succeeded).",
    responses=problem_responses(401, 404, 422),
)
def export_manifest(export_id: ExportId, caller: CallerDep, session: SessionDep) -> dict[str, Any]:
    row = _own_export(session, export_id, caller)
    if row.status != "succeeded" or row.manifest is None:
        raise NotFoundError(f"export {export_id} is {row.status}; its manifest exists once it succeeded")
    return dict(row.manifest)


@router.get(
    "/exports/{export_id}/files/{name}",
    summary="Download a small file of an export",
    description="One of the small files of a succeeded export you started: `manifest.json`, `croissant.json`, "
    "`gdc_manifest.txt` (gdc-client) or `idc_manifest.s5cmd` (s5cmd), read from the export's destination and "
    "checked against the sha256 in its manifest (409 when the published file was changed since). The Parquet "
    "and feature files are read from the destination itself.",
    responses=problem_responses(401, 404, 409, 422),
)
def export_file(
    export_id: ExportId,
    name: Annotated[str, Path(max_length=100, description="The file's name.", examples=["croissant.json"])],
    caller: CallerDep,
    session: SessionDep,
    state: StateDep,
) -> Response:
    row = _own_export(session, export_id, caller)
    if row.status != "succeeded" or row.manifest is None:
        raise NotFoundError(f"export {export_id} is {row.status}; its files exist once it succeeded")
    data, media = read_published_file(
        row.destination, dict(row.manifest), name, endpoint_url=state.settings.s3_endpoint_url
    )
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})
