"""Prefect flow ``harvest_pdc``: the same orchestration as ``oncograph ingest pdc``
(:func:`oncograph.harvesting.ingest_pdc_and_link`): PDC studies, cases and files, then identity links."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from oncograph.db import get_engine, session_factory
from oncograph.harvesting import ingest_pdc_and_link
from oncograph.settings import get_settings
from oncograph.sources.pdc import PdcClient


@task(name="import_pdc", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def import_pdc(
    pdc_url: str, studies: list[str] | None, file_types: list[str], cases: list[str]
) -> dict[str, Any]:
    """One study per transaction; a retry re-runs the import (idempotent), skipping nothing it needs."""
    factory = session_factory(get_engine())
    with PdcClient(pdc_url) as client:
        handle, counts, links = ingest_pdc_and_link(
            factory, client, studies=studies, file_types=file_types, cases=cases
        )
    return {"run_id": handle.run.id, "release": handle.release, **counts.as_dict(), "links_created": links}


@flow(name="harvest_pdc", validate_parameters=True)
def harvest_pdc_flow(
    studies: list[str] | None = None,
    file_types: list[str] | None = None,
    cases: list[str] | None = None,
    pdc_url: str | None = None,
) -> dict[str, Any]:
    """Import PDC ``studies`` (default: the whole study catalog) from ``pdc_url`` (ONCOGRAPH_PDC_URL), then
    refresh identity links."""
    url = pdc_url or get_settings().pdc_url
    result = import_pdc(url, studies, file_types or [], cases or [])
    return {**result, "prefect_flow_run_id": flow_run.get_id()}
