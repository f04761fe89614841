"""Export jobs: queue an export of a frozen cohort version, and run one attempt of it under a lease.

An export is a job (docs/adr/0005-export-jobs.md). :func:`create_export` records it ``queued`` with the
access scope it was asked under; a worker (:mod:`oncograph.export.worker`, or :func:`run_export` for one given
export) claims it under a lease, heartbeats while it runs, writes the dataset into a staging area in one
database snapshot (:mod:`oncograph.export.dataset`) and publishes it exactly once
(:mod:`oncograph.export.publish`). A worker that dies stops heartbeating; once its lease expires the next
worker marks that attempt's run ``abandoned`` and runs the export again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.access import Scope, scope_for
from oncograph.access.policy import cohort_hides_members
from oncograph.cohorts import saved
from oncograph.db.models import Cohort, CohortMember, CohortVersion, Export, Patient, Principal, Project
from oncograph.errors import ConflictError, NotFoundError, OncographError, PermissionDeniedError
from oncograph.export.dataset import write_dataset
from oncograph.export.options import ExportOptions, Progress
from oncograph.export.publish import LeaseLostError, adopt_published, publish
from oncograph.export.storage import Destination, Staging, remove_stale_staging
from oncograph.lineage.runs import RunHandle, finish_run, start_run

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0
"""How long a claim lasts without a heartbeat; a worker renews it every third of that."""
MAX_ATTEMPTS = 3
"""Attempts whose worker died before a job is ``abandoned`` (an attempt that fails with an error is final)."""


@dataclass
class ExportResult:
    export_id: int
    destination: str
    manifest: dict[str, Any]
    """The published manifest (its ``files`` list every file with size and sha256)."""


def new_worker_id() -> str:
    """``host:pid:token``: names the holder of a lease in the export record."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def create_export(
    session: Session,
    *,
    cohort_id: int,
    principal: Principal,
    destination: str | Callable[[int], str],
    options: ExportOptions,
    scope: Scope,
    version: int | None = None,
    endpoint_url: str | None = None,
) -> Export:
    """Record a queued export of a cohort version the principal can see under ``scope`` (curator or admin).

    The destination is checked now, so a bad one is an error here and not a failed job: it must be a valid
    folder or ``s3://`` URL that can be written, be free (no export recorded or published there) unless
    ``options.overwrite``, and hold nothing but an earlier export's own files (see
    :func:`check_destination`). The worker checks again when it runs the export.

    Args:
        destination: a folder, ``file://`` URL or ``s3://bucket/prefix``; or a function of the new export's
            id that returns one (the API's default name ``export-<id>``).
        endpoint_url: the S3 endpoint to check an ``s3://`` destination against (default: the settings').

    Raises:
        PermissionDeniedError: the principal is not a curator, or the cohort holds patients the scope may
            not see.
        NotFoundError: no such cohort (or version) for this principal and scope.
        ValidationError: the destination is not a folder, ``file://`` URL or ``s3://bucket/prefix``, or it
            is a file (or under one).
        ConflictError: the destination holds an export and ``overwrite`` is off, holds files that are not an
            oncograph export's, or holds an export together with files its manifest does not list.
        ConfigurationError: the destination cannot be written (permissions, credentials, missing bucket).
    """
    if principal.role not in ("curator", "admin"):
        raise PermissionDeniedError("exports need the curator role", hint="ask an admin for the curator role")
    v = saved.version(session, cohort_id, principal, version, scope=scope)
    _check_visible(session, cohort_id, scope)
    export_id: int | None = None
    if callable(destination):
        export_id = int(
            session.execute(text("SELECT nextval(pg_get_serial_sequence('export', 'id'))")).scalar_one()
        )
        destination = destination(export_id)
    target = Destination(destination)
    if target.is_s3:
        target.endpoint_url = endpoint_url if endpoint_url is not None else _settings_endpoint()
    check_destination(session, target, options)
    row = Export(
        cohort_id=cohort_id,
        cohort_version=v.version,
        principal_id=principal.id,
        destination=target.url,
        options=options.to_record(),
        scope=scope.to_json(),
        status="queued",
        progress={"stage": "queued", "done": 0, "total": 0},
    )
    if export_id is not None:
        row.id = export_id
    session.add(row)
    session.flush()
    return row


def _settings_endpoint() -> str | None:
    from oncograph.settings import get_settings

    return get_settings().s3_endpoint_url


def check_destination(session: Session, destination: Destination, options: ExportOptions) -> None:
    """Refuse a destination an export could not publish to (changes nothing): one that already holds an
    export (recorded or published) unless ``overwrite``, one that holds anything but an earlier export's own
    files, a file, or one that cannot be written."""
    if not options.overwrite:
        older = session.execute(
            select(Export.id).where(Export.destination == destination.url, Export.status == "succeeded")
        ).first()
        if older is not None:
            raise ConflictError(
                f"{destination.url} already holds an export (export {older[0]})",
                hint="choose another destination or pass overwrite",
            )
    Staging(destination, overwrite=options.overwrite).check_target(create=False)


def _check_visible(session: Session, cohort_id: int, scope: Scope) -> None:
    if cohort_hides_members(session, cohort_id, scope):
        raise PermissionDeniedError(
            f"cohort {cohort_id} holds patients of controlled projects you have no grant for",
            hint="ask an admin for the grant, or export a cohort made under your own grants",
        )


def recorded_scope(session: Session, row: Export, principal: Principal) -> Scope:
    """The scope an export runs under: the one it was queued under, less any grant revoked since."""
    raw = row.scope or {}
    if raw.get("unrestricted"):
        return Scope.everything(str(raw.get("principal") or principal.name))
    now = scope_for(session, principal)
    return Scope(
        principal=principal.name,
        role=principal.role,
        granted_projects=now.granted_projects & frozenset(raw.get("granted_projects", ())),
        unrestricted=False,
    )


def take(
    session: Session,
    row: Export,
    owner: str,
    *,
    lease_seconds: float = LEASE_SECONDS,
    prefect_flow_run_id: str | None = None,
) -> RunHandle:
    """Claim the locked ``row`` for ``owner``: a new attempt with its own run; the previous attempt's run, if
    still ``running``, is marked ``abandoned`` (its worker died)."""
    if row.run_id is not None:
        session.execute(
            text(
                "UPDATE run SET status = 'abandoned', finished_at = now(), "
                "error = coalesce(error, :e) WHERE id = :id AND status = 'running'"
            ),
            {"id": row.run_id, "e": f"the worker {row.lease_owner} stopped heartbeating (killed or crashed)"},
        )
    principal = session.get(Principal, row.principal_id)
    assert principal is not None
    version_id = session.scalar(
        select(CohortVersion.id).where(
            CohortVersion.cohort_id == row.cohort_id, CohortVersion.version == row.cohort_version
        )
    )
    projects = session.scalars(
        select(Project.project_id)
        .distinct()
        .select_from(CohortMember)
        .join(Patient, Patient.id == CohortMember.patient_id)
        .join(Project, Project.id == Patient.project_id)
        .where(CohortMember.cohort_version_id == version_id)
        .order_by(Project.project_id)
    ).all()
    run = start_run(
        session,
        transform="export_cohort",
        parameters={
            "export_id": row.id,
            "cohort_id": row.cohort_id,
            "version": row.cohort_version,
            "destination": row.destination,
            "options": row.options,
            "attempt": row.attempts + 1,
            "worker": owner,
        },
        prefect_flow_run_id=prefect_flow_run_id,
        principal_id=row.principal_id,  # the export's owner, the local operator too: never everyone's
        projects=list(projects),
    )
    session.execute(
        text(
            "UPDATE export SET status = 'running', error = NULL, run_id = :run, attempts = attempts + 1, "
            "lease_owner = :owner, lease_expires_at = now() + make_interval(secs => :lease), "
            "heartbeat_at = now(), started_at = now(), finished_at = NULL WHERE id = :id"
        ),
        {"run": run.id, "owner": owner, "lease": lease_seconds, "id": row.id},
    )
    session.expire(row)
    return run


class Heartbeat:
    """Renews an attempt's lease every ``lease_seconds / 3`` on a thread, and with every progress report.
    When the lease is found taken by another worker, :attr:`lost` is set and the next report raises."""

    def __init__(
        self, factory: sessionmaker[Session], export_id: int, owner: str, lease_seconds: float
    ) -> None:
        self.factory = factory
        self.export_id = export_id
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"export-{export_id}-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self.beat()
            except Exception:  # a database hiccup: the next beat (or the lease) decides
                log.warning("export %s: heartbeat failed", self.export_id, exc_info=True)

    def beat(self, progress: dict[str, Any] | None = None) -> None:
        sets = "heartbeat_at = now(), lease_expires_at = now() + make_interval(secs => :lease)"
        if progress is not None:
            sets += ", progress = CAST(:p AS jsonb)"
        with self.factory() as s, s.begin():
            done = s.execute(
                text(
                    f"UPDATE export SET {sets} WHERE id = :id AND lease_owner = :owner AND status = 'running'"
                ),
                {
                    "id": self.export_id,
                    "owner": self.owner,
                    "lease": self.lease_seconds,
                    "p": _json(progress),
                },
            )
        if done.rowcount == 0:  # type: ignore[attr-defined]
            self.lost = True

    def report(self, stage: str, done: int, total: int) -> None:
        if self.lost:
            raise LeaseLostError(f"export {self.export_id}: another worker took it over")
        self.beat({"stage": stage, "done": done, "total": total})
        if self.lost:
            raise LeaseLostError(f"export {self.export_id}: another worker took it over")


def _json(value: Any) -> str | None:
    import json

    return None if value is None else json.dumps(value)


def run_export(
    factory: sessionmaker[Session],
    export_id: int,
    *,
    progress: Progress | None = None,
    endpoint_url: str | None = None,
    prefect_flow_run_id: str | None = None,
    owner: str | None = None,
    lease_seconds: float = LEASE_SECONDS,
) -> ExportResult:
    """Claim export ``export_id`` (queued, failed, or running under an expired lease) and run it to the end.

    Raises:
        NotFoundError: no such export.
        ConflictError: it succeeded already, or another worker holds it now.
        OncographError: the export failed (recorded on the export and its run); nothing was published.
    """
    owner = owner or new_worker_id()
    with factory() as session, session.begin():
        row = session.execute(
            select(Export).where(Export.id == export_id).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"no export {export_id}")
        if row.status == "running":
            expires = row.lease_expires_at
            now = session.execute(select(func.now())).scalar_one()
            if expires is not None and expires > now:
                raise ConflictError(
                    f"export {export_id} is running on worker {row.lease_owner}",
                    hint="wait for it: GET /exports/{id} or the export record shows its progress",
                )
        elif row.status not in ("queued", "failed"):
            raise ConflictError(f"export {export_id} is {row.status}", hint="create a new export instead")
        run = take(session, row, owner, lease_seconds=lease_seconds, prefect_flow_run_id=prefect_flow_run_id)
    return run_claimed(
        factory,
        export_id,
        owner,
        run,
        progress=progress,
        endpoint_url=endpoint_url,
        lease_seconds=lease_seconds,
    )


def run_claimed(
    factory: sessionmaker[Session],
    export_id: int,
    owner: str,
    run: RunHandle,
    *,
    progress: Progress | None = None,
    endpoint_url: str | None = None,
    lease_seconds: float = LEASE_SECONDS,
) -> ExportResult:
    """Run one attempt of an export ``owner`` has claimed (:func:`take`); on failure nothing is published and
    the record says why."""
    staging: Staging | None = None
    with Heartbeat(factory, export_id, owner, lease_seconds) as heartbeat:

        def report(stage: str, done: int, total: int) -> None:
            heartbeat.report(stage, done, total)
            if progress:
                progress(stage, done, total)

        try:
            with factory() as session:
                # one snapshot for every read of this export: this transaction's, shared with the vector
                # stream's connection through pg_export_snapshot()
                conn = session.connection(
                    execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
                )
                row = session.get(Export, export_id)
                assert row is not None
                principal = session.get(Principal, row.principal_id)
                cohort = session.get(Cohort, row.cohort_id)
                assert principal is not None and cohort is not None
                scope = recorded_scope(session, row, principal)
                v = saved.version(session, row.cohort_id, principal, row.cohort_version, scope=scope)
                _check_visible(session, row.cohort_id, scope)
                options = ExportOptions.from_json(row.options)
                destination = Destination(row.destination, endpoint_url=endpoint_url)
                staging = Staging(destination, overwrite=options.overwrite)
                manifest = adopt_published(factory, export_id, owner, run, staging)
                if manifest is None:
                    info = {
                        "cohort": {
                            "id": cohort.id,
                            "name": cohort.name,
                            "kind": cohort.kind,
                            "definition": cohort.definition,
                            "version": v.version,
                            "size": v.size,
                            "member_hash": v.member_hash,
                            "created_at": v.created_at.isoformat(),
                        },
                        "releases": v.releases,
                        "principal": {"name": principal.name, "role": principal.role, **scope.to_json()},
                    }
                    remove_stale_staging(destination)
                    staging.check_target()
                    snapshot = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
                    body = write_dataset(conn, snapshot, staging, v.version_id, scope, options, info, report)
                    manifest = {"export": {"id": export_id}, **body}
                    adopted = False
                else:
                    adopted = True
            if not adopted:
                publish(factory, export_id, owner, run, staging, manifest)
        except BaseException as exc:
            if staging is not None:
                staging.abort()
            _record_failure(factory, export_id, owner, run, exc)
            raise
    if progress:
        progress("published", 1, 1)
    return ExportResult(export_id, destination.url, manifest)


def _record_failure(
    factory: sessionmaker[Session], export_id: int, owner: str, run: RunHandle, exc: BaseException
) -> None:
    """The attempt's end on an error (``failed``) or an interrupt (back to ``queued`` for the next worker),
    unless another worker holds the job now (then it already marked this attempt's run ``abandoned``)."""
    message = str(exc) if isinstance(exc, OncographError) else f"{type(exc).__name__}: {exc}"
    try:
        with factory() as s, s.begin():
            row = s.execute(
                select(Export).where(Export.id == export_id).with_for_update()
            ).scalar_one_or_none()
            if row is None or row.lease_owner != owner or row.status != "running":
                return
            row.lease_owner = None
            row.lease_expires_at = None
            if isinstance(exc, Exception):
                row.status = "failed"
                row.error = message
                row.finished_at = dt.datetime.now(dt.UTC)
                finish_run(s, run, status="failed", counts={}, error=message)
            else:  # KeyboardInterrupt, SystemExit: the job is not at fault, another worker may run it
                row.status = "queued"
                finish_run(s, run, status="abandoned", counts={}, error=f"interrupted ({type(exc).__name__})")
    except Exception:
        log.exception("export %s: could not record the end of attempt of run %s", export_id, run.id)


__all__ = [
    "LEASE_SECONDS",
    "MAX_ATTEMPTS",
    "ExportOptions",
    "ExportResult",
    "Heartbeat",
    "Progress",
    "check_destination",
    "create_export",
    "new_worker_id",
    "recorded_scope",
    "run_claimed",
    "run_export",
    "take",
]
