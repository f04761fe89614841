"""Prefect flow ``harvest_gdc``: the same steps as ``oncograph ingest gdc``, one task per page with retries.

It runs with Prefect's ephemeral API (no server needed) and records its flow-run id on the oncograph run.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from oncograph.db import get_engine, session_factory
from oncograph.domain import SourceRecord
from oncograph.ingest.harvest import close_harvest, harvest_lock, harvest_pages, open_harvest
from oncograph.ingest.service import IngestCounts, ingest_batch
from oncograph.lineage.locks import abandon_stale_runs
from oncograph.linking import run_linking
from oncograph.settings import get_settings
from oncograph.sources.gdc.client import GdcClient


@task(name="ingest_page", retries=3, retry_delay_seconds=[1, 5, 15], cache_policy=NO_CACHE)
def ingest_page(records: list[SourceRecord], release_id: int, run_id: int) -> IngestCounts:
    """One page in one transaction; a retry re-runs it whole (idempotent upserts make that safe)."""
    factory = session_factory(get_engine())
    return ingest_batch(factory, records, release_id=release_id, run_id=run_id)


@flow(name="harvest_gdc", validate_parameters=True)
def harvest_gdc_flow(
    projects: list[str], gdc_url: str | None = None, page_size: int | None = None
) -> dict[str, Any]:
    """Harvest GDC ``projects`` from ``gdc_url`` (default: ONCOGRAPH_GDC_URL) into the graph."""
    settings = get_settings()
    factory = session_factory(get_engine())
    flow_run_id = flow_run.get_id()
    with (
        GdcClient.from_settings(settings, base_url=gdc_url or settings.gdc_url) as client,
        harvest_lock(factory),
    ):
        abandon_stale_runs(factory.kw["bind"], "harvest_gdc")
        harvest = open_harvest(factory, client, projects, prefect_flow_run_id=flow_run_id)
        total = IngestCounts()
        try:
            for _endpoint, records, _page in harvest_pages(client, projects, page_size=page_size):
                total.add(ingest_page(records, harvest.release_id, harvest.run.id))
        except BaseException as exc:
            close_harvest(factory, harvest, total, projects=projects, error=f"{type(exc).__name__}: {exc}")
            raise
        close_harvest(factory, harvest, total, projects=projects)
    _, links = run_linking(factory)
    return {
        "run_id": harvest.run.id,
        "release": harvest.release,
        "prefect_flow_run_id": flow_run_id,
        "entities": total.entities(),
        "links": total.links,
        "problems": [str(p) for p in total.problems[:50]],
        "links_created": links,
    }
