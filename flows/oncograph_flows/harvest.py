"""Prefect flow ``harvest_gdc``: the same orchestration as ``oncograph ingest gdc``
(:func:`oncograph.harvesting.harvest_gdc_and_link`), with each page written by a task with retries.

It runs with Prefect's ephemeral API (no server needed) and records its flow-run id on the oncograph run.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from oncograph.db import get_engine, session_factory
from oncograph.harvesting import harvest_gdc_and_link
from oncograph.ingest.service import IngestCounts, PreparedBatch, ingest_batch
from oncograph.settings import get_settings
from oncograph.sources.gdc.client import GdcClient


@task(name="ingest_page", retries=3, retry_delay_seconds=[1, 5, 15], cache_policy=NO_CACHE)
def ingest_page(batch: PreparedBatch, release_id: int, run_id: int) -> IngestCounts:
    """One page in one transaction; a retry re-runs it whole (idempotent upserts make that safe)."""
    factory = session_factory(get_engine())
    return ingest_batch(factory, batch, release_id=release_id, run_id=run_id)


def _write_page(batch: PreparedBatch, release_id: int, run_id: int) -> IngestCounts:
    return ingest_page(batch, release_id, run_id)


@flow(name="harvest_gdc", validate_parameters=True)
def harvest_gdc_flow(
    projects: list[str], gdc_url: str | None = None, page_size: int | None = None
) -> dict[str, Any]:
    """Harvest GDC ``projects`` from ``gdc_url`` (default: ONCOGRAPH_GDC_URL) into the graph, then link."""
    settings = get_settings()
    flow_run_id = flow_run.get_id()
    with GdcClient.from_settings(settings, base_url=gdc_url or settings.gdc_url) as client:
        result = harvest_gdc_and_link(
            session_factory(get_engine()),
            client,
            projects,
            page_size=page_size,
            write=_write_page,
            prefect_flow_run_id=flow_run_id,
        )
    return {**result.as_dict(), "prefect_flow_run_id": flow_run_id}
