"""The publish step of an export job, guarded so a retried job publishes exactly once.

Under a row lock on the export (``SELECT … FOR UPDATE``) the attempt checks it still holds the job's lease,
locks the records of exports already published at the same destination, renames (or, on S3, copies) the
staging area into place, marks those older records ``superseded`` and its own ``succeeded`` in the same
transaction. A worker killed after the rename but before the commit leaves a published manifest that names
its export id: the next attempt finds it (:func:`adopt_published`) and records the success without writing
anything again.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from oncograph.db.models import Export
from oncograph.errors import ConflictError
from oncograph.export.storage import Staging
from oncograph.lineage.runs import RunHandle, finish_run


class LeaseLostError(ConflictError):
    """Another worker took the job over (this attempt's lease expired): the attempt must stop."""


def _locked(session: Session, export_id: int, owner: str) -> Export:
    row = session.execute(select(Export).where(Export.id == export_id).with_for_update()).scalar_one()
    if row.status != "running" or row.lease_owner != owner:
        raise LeaseLostError(
            f"export {export_id} is no longer this worker's ({row.status}, held by {row.lease_owner})",
            hint="another worker took it over after this one stopped heartbeating",
        )
    return row


def _supersede_and_succeed(
    session: Session, row: Export, run: RunHandle, manifest: dict[str, Any], *, overwrite: bool
) -> None:
    older = (
        session.execute(
            select(Export)
            .where(Export.destination == row.destination, Export.status == "succeeded", Export.id != row.id)
            .with_for_update()
        )
        .scalars()
        .all()
    )
    if older and not overwrite:
        raise ConflictError(
            f"{row.destination} already holds an export (export {older[0].id})",
            hint="choose another destination or pass overwrite",
        )
    for old in older:
        old.status = "superseded"
        old.superseded_by_id = row.id
    session.flush()  # one published export per destination (a partial unique index)
    row.status = "succeeded"
    row.manifest = manifest
    row.error = None
    row.finished_at = dt.datetime.now(dt.UTC)
    row.progress = {"stage": "published", "done": 1, "total": 1}
    row.lease_owner = None
    row.lease_expires_at = None
    finish_run(session, run, status="succeeded", counts={"totals": manifest["row_counts"]})


def publish(
    factory: sessionmaker[Session],
    export_id: int,
    owner: str,
    run: RunHandle,
    staging: Staging,
    manifest: dict[str, Any],
) -> None:
    """Make the staged export visible and record it, once (see the module docstring)."""
    data = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()
    with factory() as session, session.begin():
        row = _locked(session, export_id, owner)
        older = session.execute(
            select(Export.id).where(
                Export.destination == row.destination, Export.status == "succeeded", Export.id != row.id
            )
        ).first()
        if older is not None and not staging.overwrite:
            raise ConflictError(
                f"{row.destination} already holds an export (export {older[0]})",
                hint="choose another destination or pass overwrite",
            )
        staging.publish(data)
        _supersede_and_succeed(session, row, run, manifest, overwrite=staging.overwrite)


def adopt_published(
    factory: sessionmaker[Session], export_id: int, owner: str, run: RunHandle, staging: Staging
) -> dict[str, Any] | None:
    """When an earlier attempt of this export already published (and died before recording it), record the
    success now and return its manifest; None when nothing of this export is published."""
    manifest = staging.published_manifest()
    if manifest is None or (manifest.get("export") or {}).get("id") != export_id:
        return None
    with factory() as session, session.begin():
        row = _locked(session, export_id, owner)
        _supersede_and_succeed(session, row, run, manifest, overwrite=True)
    return manifest
