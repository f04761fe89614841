"""Harvests with identity linking: the one orchestration that ``oncograph ingest gdc|pdc|idc`` and the
Prefect flows ``harvest_gdc|harvest_pdc|harvest_idc`` both call.

Each function loads one source (:mod:`oncograph.ingest`), then links identities across GDC, IDC and PDC
(:mod:`oncograph.linking`, which also refreshes the per-patient modalities). It sits above both so that neither
imports the other. A flow passes only what is its own: a page writer that is a Prefect task with retries, and
its flow-run id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from oncograph.ingest.harvest import GdcSource, Harvest, PageWriter, harvest_gdc
from oncograph.ingest.idc_import import IdcImport, import_idc
from oncograph.ingest.pdc_import import PdcCounts, PdcIngest, ingest_pdc
from oncograph.ingest.progress import Progress
from oncograph.ingest.service import IngestCounts
from oncograph.linking import run_linking
from oncograph.sources.pdc.client import PdcClient

Links = dict[str, dict[str, int]]


@dataclass(frozen=True, slots=True)
class GdcHarvest:
    """What :func:`harvest_gdc_and_link` did."""

    harvest: Harvest
    counts: IngestCounts
    links_created: Links

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.harvest.run.id,
            "release": self.harvest.release,
            "entities": self.counts.entities(),
            "links": self.counts.links,
            "quarantined": sum(self.counts.quarantined.values()),
            "problems": [str(p) for p in self.counts.problems[:50]],
            "links_created": self.links_created,
        }


def _link(factory: sessionmaker[Session], progress: Progress | None) -> Links:
    if progress is not None:
        progress("identity links", 0, 1)
    _, links = run_linking(factory)
    if progress is not None:
        progress("identity links", 1, 1)
    return links


def harvest_gdc_and_link(
    factory: sessionmaker[Session],
    client: GdcSource,
    projects: Sequence[str],
    *,
    page_size: int | None = None,
    progress: Progress | None = None,
    write: PageWriter | None = None,
    prefect_flow_run_id: str | None = None,
) -> GdcHarvest:
    """Harvest GDC ``projects`` (:func:`oncograph.ingest.harvest.harvest_gdc`), then link identities."""
    harvest, counts = harvest_gdc(
        factory,
        client,
        projects,
        page_size=page_size,
        progress=progress,
        write=write,
        prefect_flow_run_id=prefect_flow_run_id,
    )
    return GdcHarvest(harvest, counts, _link(factory, progress))


def ingest_pdc_and_link(
    factory: sessionmaker[Session],
    client: PdcClient,
    *,
    studies: Sequence[str] | None = None,
    file_types: Sequence[str] = (),
    cases: Sequence[str] = (),
    page_size: int | None = None,
    progress: Progress | None = None,
) -> tuple[PdcIngest, PdcCounts, Links]:
    """Import PDC studies (:func:`oncograph.ingest.pdc_import.ingest_pdc`), then link identities."""
    handle, counts = ingest_pdc(
        factory,
        client,
        studies=studies,
        file_types=file_types,
        cases=cases,
        page_size=page_size,
        progress=progress,
    )
    return handle, counts, _link(factory, progress)


def import_idc_and_link(
    factory: sessionmaker[Session],
    *,
    collections: Sequence[str] | None = None,
    index_path: Path | None = None,
    prefect_flow_run_id: str | None = None,
    progress: Progress | None = None,
) -> tuple[IdcImport, Links]:
    """Load IDC's series index (:func:`oncograph.ingest.idc_import.import_idc`), then link identities."""
    result = import_idc(
        factory,
        collections=collections,
        index_path=index_path,
        prefect_flow_run_id=prefect_flow_run_id,
        progress=progress,
    )
    return result, _link(factory, progress)
