"""Prefect flows of export jobs (docs/adr/0005-export-jobs.md): thin adapters over ``oncograph.export``.

- ``export_cohort`` runs one export: ``export_id`` may be an export already queued (by the API or the CLI);
  otherwise one is queued for the cohort's latest (or given) version, owned by ``principal``. The Prefect
  flow-run id lands on the export's run.
- ``process_export_queue`` is a worker pass: it claims and runs queued exports (and those whose worker died)
  until none is left, for a deployment on a schedule or a Prefect worker pool.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from oncograph.access import Scope
from oncograph.access.principals import ensure_local_principal, get_principal, scope_for
from oncograph.db import get_engine, session_factory
from oncograph.export.job import create_export, run_export
from oncograph.export.options import ExportOptions
from oncograph.export.worker import work
from oncograph.settings import get_settings


@flow(name="export_cohort", validate_parameters=True)
def export_cohort(
    cohort_id: int,
    destination: str,
    options: dict[str, Any] | None = None,
    version: int | None = None,
    principal: str | None = None,
    export_id: int | None = None,
) -> dict[str, Any]:
    """Export ``cohort_id`` to ``destination`` (a folder, file:///path or s3://bucket/prefix) with ``options``
    (split_by, seed, ratios, overwrite, compression). ``principal`` (default: the local operator) decides
    what controlled data is included."""
    factory = session_factory(get_engine())
    if export_id is None:
        with factory() as session, session.begin():
            if principal is None:
                who = ensure_local_principal(session)
                scope = Scope.everything(who.name)
            else:
                who = get_principal(session, principal)
                scope = scope_for(session, who)
            row = create_export(
                session,
                cohort_id=cohort_id,
                principal=who,
                destination=destination,
                options=ExportOptions.from_json(options or {}),
                version=version,
                scope=scope,
            )
            export_id = row.id
    logger = get_run_logger()

    def progress(stage: str, done: int, total: int) -> None:
        logger.info("export %s: %s (%s/%s)", export_id, stage, done, total)

    result = run_export(
        factory,
        export_id,
        progress=progress,
        endpoint_url=get_settings().s3_endpoint_url,
        prefect_flow_run_id=flow_run.get_id(),
    )
    return {
        "export_id": result.export_id,
        "destination": result.destination,
        "prefect_flow_run_id": flow_run.get_id(),
        "row_counts": result.manifest["row_counts"],
        "splits": result.manifest["splits"],
    }


@flow(name="process_export_queue", validate_parameters=True)
def process_export_queue() -> dict[str, Any]:
    """Claim and run queued exports until none is left; returns how many attempts ran."""
    factory = session_factory(get_engine())
    ran = work(
        factory,
        once=True,
        endpoint_url=get_settings().s3_endpoint_url,
        prefect_flow_run_id=flow_run.get_id(),
    )
    get_run_logger().info("export queue: %s export attempt(s) run", ran)
    return {"exports_run": ran}
