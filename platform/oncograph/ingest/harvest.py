"""Harvest GDC projects through the API (or a GDC-compatible server) into the graph.

:func:`harvest_gdc` is the one orchestration of a harvest (``oncograph.harvesting`` adds identity linking, for
``oncograph ingest gdc`` and the Prefect flow ``harvest_gdc`` alike): the harvest lock, :func:`open_harvest`
(release + run), :func:`prepared_pages` (pages of records: projects, then cases, then files so file links
resolve), one transaction per page, :func:`close_harvest` (retire what the release no longer has). The flow
only passes its own page writer (a Prefect task with retries) and its flow-run id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from sqlalchemy.orm import Session, sessionmaker

from oncograph.db.engine import transaction
from oncograph.db.read_ahead import one_ahead
from oncograph.domain import SourceRecord
from oncograph.ingest.progress import Progress
from oncograph.ingest.retire import retire_unseen_gdc
from oncograph.ingest.service import IngestCounts, PreparedBatch, ingest_batch, prepare_batch
from oncograph.lineage.locks import abandon_stale_runs, source_lock
from oncograph.lineage.runs import RunHandle, ensure_release, finish_run, set_run_release, start_run

log = logging.getLogger(__name__)

Endpoint = Literal["projects", "cases", "files"]

#: Every nested group the graph stores, as GDC ``expand`` names.
CASE_EXPAND: Final = (
    "project",
    "project.program",
    "demographic",
    "diagnoses",
    "diagnoses.treatments",
    "diagnoses.pathology_details",
    "follow_ups",
    "exposures",
    "family_histories",
    "samples",
    "samples.portions",
    "samples.portions.analytes",
    "samples.portions.analytes.aliquots",
    "samples.portions.slides",
)
FILE_FIELDS: Final = (
    "file_id",
    "file_name",
    "submitter_id",
    "md5sum",
    "file_size",
    "data_category",
    "data_type",
    "experimental_strategy",
    "data_format",
    "platform",
    "access",
    "acl",
    "state",
    "version",
    "data_release",
    "analysis.workflow_type",
    "cases.case_id",
    "cases.submitter_id",
    "cases.samples.sample_id",
    "cases.samples.submitter_id",
)
_ENTITY: Final[dict[Endpoint, Literal["project", "case", "file"]]] = {
    "projects": "project",
    "cases": "case",
    "files": "file",
}
_PROJECT_FIELD: Final[dict[Endpoint, str]] = {
    "projects": "project_id",
    "cases": "project.project_id",
    "files": "cases.project.project_id",
}


class GdcSource(Protocol):
    """What the harvest needs of a GDC client (``oncograph.sources.gdc.client.GdcClient``)."""

    base_url: str

    def release_label(self) -> str: ...

    def iter_pages(
        self,
        endpoint: Endpoint,
        *,
        filters: dict[str, Any] | None,
        fields: list[str] | None = None,
        expand: list[str] | None = None,
        sort: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[Any]: ...


@dataclass(frozen=True, slots=True)
class Harvest:
    run: RunHandle
    release_id: int
    release: str


def project_filter(endpoint: Endpoint, projects: Sequence[str]) -> dict[str, Any]:
    return {"op": "in", "content": {"field": _PROJECT_FIELD[endpoint], "value": list(projects)}}


def open_harvest(
    factory: sessionmaker[Session],
    client: GdcSource,
    projects: Sequence[str],
    *,
    prefect_flow_run_id: str | None = None,
) -> Harvest:
    """Record the source release the server reports (``/status``) and start a run."""
    release = client.release_label()
    with transaction(factory) as s:
        release_id = ensure_release(s, source="gdc", release=release, details={"url": client.base_url})
        run = start_run(
            s,
            transform="harvest_gdc",
            parameters={"projects": list(projects), "gdc_url": client.base_url},
            prefect_flow_run_id=prefect_flow_run_id,
        )
        set_run_release(s, run, release_id)
    log.info("harvest run %s of %s from %s (%s)", run.id, projects, client.base_url, release)
    return Harvest(run, release_id, release)


def harvest_pages(
    client: GdcSource, projects: Sequence[str], *, page_size: int | None = None
) -> Iterator[tuple[Endpoint, list[SourceRecord], Any]]:
    """Pages of records in write order: projects, cases (full graph expand), files (with case/sample links)."""
    plan: list[tuple[Endpoint, dict[str, Any]]] = [
        ("projects", {"expand": ["program"], "sort": "project_id:asc"}),
        ("cases", {"expand": list(CASE_EXPAND), "sort": "case_id:asc"}),
        ("files", {"fields": list(FILE_FIELDS), "sort": "file_id:asc"}),
    ]
    for endpoint, params in plan:
        for page in client.iter_pages(
            endpoint, filters=project_filter(endpoint, projects), page_size=page_size, **params
        ):
            records = records_from_hits(endpoint, page.hits, base_url=client.base_url, start=page.from_)
            yield endpoint, records, page


def records_from_hits(
    endpoint: Endpoint, hits: Sequence[Any], *, base_url: str, start: int = 0
) -> list[SourceRecord]:
    """Wrap API hits as source records; a hit that is not a JSON object becomes a record with a problem
    (quarantined with its raw value) instead of failing the page."""
    entity = _ENTITY[endpoint]
    out = []
    for offset, hit in enumerate(hits):
        if not isinstance(hit, dict):
            where = f"{base_url}/{endpoint} > hit {start + offset}"
            problem = f"expected a JSON object, got {type(hit).__name__}: {str(hit)[:80]!r}"
            out.append(SourceRecord("gdc_api", entity, None, {}, hit, where, problems=(problem,)))
            continue
        key = hit.get(f"{entity}_id") or hit.get("id")
        entity_id = str(key).lower() if key and entity != "project" else (str(key) if key else None)
        out.append(
            SourceRecord("gdc_api", entity, entity_id, hit, hit, f"{base_url}/{endpoint} > {entity} {key}")
        )
    return out


def prepared_pages(
    client: GdcSource, projects: Sequence[str], *, page_size: int | None = None
) -> Iterator[tuple[Endpoint, PreparedBatch, Any]]:
    """:func:`harvest_pages`, mapped, reading one page ahead on a worker thread.

    While the database writes page n (the driver releases the GIL while it waits), the worker fetches,
    decodes and maps page n + 1, so the client's CPU work overlaps PostgreSQL's.
    """
    pages = harvest_pages(client, projects, page_size=page_size)
    yield from one_ahead(pages, lambda page: (page[0], prepare_batch(page[1]), page[2]))


def close_harvest(
    factory: sessionmaker[Session],
    harvest: Harvest,
    counts: IngestCounts,
    *,
    projects: Sequence[str],
    error: str | None = None,
) -> dict[str, int]:
    """Finish the run. A complete harvest also retires what the release no longer has; returns those counts."""
    with transaction(factory) as s:
        retired = {} if error else retire_unseen_gdc(s, projects=projects, release_id=harvest.release_id)
        counts.retired = retired
        finish_run(
            s,
            harvest.run,
            status="failed" if error else "succeeded",
            counts={"release": harvest.release, "totals": counts.as_dict()},
            error=error,
        )
    return retired


def harvest_lock(factory: sessionmaker[Session]) -> AbstractContextManager[None]:
    """The GDC harvest lock, on the factory's engine (or its connection, inside tests)."""
    bind = factory.kw["bind"]
    return source_lock(bind, "gdc")


PageWriter = Callable[[PreparedBatch, int, int], IngestCounts]
"""Writes one page in one transaction: ``(batch, release_id, run_id) -> counts``."""


def page_total(page: Any) -> int | None:
    """The hit count a GDC page's pagination announces, or None."""
    pagination = getattr(page, "pagination", None)
    total = pagination.get("total") if isinstance(pagination, dict) else getattr(pagination, "total", None)
    return int(total) if total is not None else None


def harvest_gdc(
    factory: sessionmaker[Session],
    client: GdcSource,
    projects: Sequence[str],
    *,
    page_size: int | None = None,
    progress: Progress | None = None,
    write: PageWriter | None = None,
    prefect_flow_run_id: str | None = None,
) -> tuple[Harvest, IngestCounts]:
    """Harvest ``projects``: one transaction per page; the run records the outcome.

    Args:
        factory: sessions on the graph database.
        client: the GDC API client (or anything with its paging).
        projects: GDC project ids.
        page_size: hits per request (default: the client's).
        progress: called with ``(endpoint, hits done, hits announced)`` after each page.
        write: writes a page (default: :func:`ingest_batch` in-process; the Prefect flow passes a task).
        prefect_flow_run_id: recorded on the run when a flow runs this.
    """
    writer = write or (lambda batch, rel, run: ingest_batch(factory, batch, release_id=rel, run_id=run))
    with harvest_lock(factory):
        abandon_stale_runs(factory.kw["bind"], "harvest_gdc")
        harvest = open_harvest(factory, client, projects, prefect_flow_run_id=prefect_flow_run_id)
        total = IngestCounts()
        done: dict[str, int] = {}
        try:
            for endpoint, batch, page in prepared_pages(client, projects, page_size=page_size):
                total.add(writer(batch, harvest.release_id, harvest.run.id))
                done[endpoint] = done.get(endpoint, 0) + len(batch.records)
                if progress is not None:
                    progress(endpoint, done[endpoint], page_total(page))
        except BaseException as exc:
            close_harvest(factory, harvest, total, projects=projects, error=f"{type(exc).__name__}: {exc}")
            raise
        close_harvest(factory, harvest, total, projects=projects)
    return harvest, total
