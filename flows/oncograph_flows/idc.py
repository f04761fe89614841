"""Prefect flow ``harvest_idc``: the same orchestration as ``oncograph ingest idc``
(:func:`oncograph.harvesting.import_idc_and_link`): IDC's series index (idc-index-data), then identity links."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from oncograph.db import get_engine, session_factory
from oncograph.harvesting import import_idc_and_link


@task(name="import_idc", retries=1, retry_delay_seconds=30, cache_policy=NO_CACHE)
def import_idc_task(collections: list[str] | None, flow_run_id: str | None) -> dict[str, Any]:
    """The whole load is one transaction; a retry starts over (nothing half-written to clean up)."""
    result, links = import_idc_and_link(
        session_factory(get_engine()), collections=collections, prefect_flow_run_id=flow_run_id
    )
    return {**result.as_dict(), "links_created": links}


@flow(name="harvest_idc", validate_parameters=True)
def harvest_idc_flow(collections: list[str] | None = None) -> dict[str, Any]:
    """Load ``collections`` (default: the whole index) and refresh identity links."""
    flow_run_id = flow_run.get_id()
    result = import_idc_task(collections, flow_run_id)
    return {**result, "prefect_flow_run_id": flow_run_id}
