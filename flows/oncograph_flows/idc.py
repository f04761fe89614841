"""Prefect flow ``harvest_idc``: IDC's series index (idc-index-data) into the graph, then identity links."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from oncograph.db import get_engine, session_factory
from oncograph.ingest.idc_import import import_idc
from oncograph.linking import run_linking


@task(name="import_idc", retries=1, retry_delay_seconds=30, cache_policy=NO_CACHE)
def import_idc_task(collections: list[str] | None, flow_run_id: str | None) -> dict[str, Any]:
    """The whole load is one transaction; a retry starts over (nothing half-written to clean up)."""
    result = import_idc(
        session_factory(get_engine()), collections=collections, prefect_flow_run_id=flow_run_id
    )
    return result.as_dict()


@flow(name="harvest_idc", validate_parameters=True)
def harvest_idc_flow(collections: list[str] | None = None) -> dict[str, Any]:
    """Load ``collections`` (default: the whole index) and refresh identity links."""
    flow_run_id = flow_run.get_id()
    result = import_idc_task(collections, flow_run_id)
    _, links = run_linking(session_factory(get_engine()))
    return {**result, "prefect_flow_run_id": flow_run_id, "links_created": links}
