"""Scheduled ingestion as code: one Prefect deployment per harvest, with its cron schedule and parameters.

``oncograph schedule serve`` serves them against a Prefect server (``prefect server start`` or
``PREFECT_API_URL``); cron schedules only fire while a server and the serving process run.
``oncograph schedule list`` shows them without a server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prefect.deployments.runner import RunnerDeployment
from prefect.flows import Flow

from oncograph_flows.harvest import harvest_gdc_flow
from oncograph_flows.idc import harvest_idc_flow
from oncograph_flows.pdc import harvest_pdc_flow


@dataclass(frozen=True, slots=True)
class ScheduledHarvest:
    """A harvest flow, when it runs (cron, UTC) and with which parameters."""

    name: str
    flow: Callable[[], Flow[Any, Any]]
    cron: str
    parameters: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def deployment(self) -> RunnerDeployment:
        deployment = self.flow().to_deployment(
            name=self.name,
            cron=self.cron,
            parameters=self.parameters,
            description=self.description,
            tags=["oncograph", "ingest"],
            concurrency_limit=1,
        )
        assert isinstance(deployment, RunnerDeployment)  # the sync form, outside an event loop
        return deployment

    def next_runs(self, n: int = 3, *, after: dt.datetime | None = None) -> list[str]:
        from prefect.server.schemas.schedules import CronSchedule

        dates: Any = CronSchedule(cron=self.cron, timezone="UTC").get_dates(n, start=after)
        if inspect.isawaitable(dates):  # Prefect's sync/async dual API answers a coroutine in some contexts
            dates = asyncio.run(_awaited(dates))
        return [d.isoformat() for d in dates]


async def _awaited(value: Any) -> Any:
    return await value


def _gdc() -> Flow[Any, Any]:
    return harvest_gdc_flow


def _idc() -> Flow[Any, Any]:
    return harvest_idc_flow


def _pdc() -> Flow[Any, Any]:
    return harvest_pdc_flow


#: TCGA projects harvested nightly by default (GDC releases land every few months; an unchanged release is a
#: no-op, so a nightly check costs one pass over the documents and writes nothing).
DEFAULT_GDC_PROJECTS = ["TCGA-LUAD", "TCGA-LUSC", "TCGA-BRCA", "TCGA-CHOL", "TCGA-PAAD", "TCGA-GBM"]

SCHEDULES: list[ScheduledHarvest] = [
    ScheduledHarvest(
        name="harvest-gdc-nightly",
        flow=_gdc,
        cron="0 3 * * *",
        parameters={"projects": DEFAULT_GDC_PROJECTS},
        description="GDC cases and files of the default projects from ONCOGRAPH_GDC_URL.",
    ),
    ScheduledHarvest(
        name="harvest-idc-weekly",
        flow=_idc,
        cron="0 4 * * 0",
        parameters={"collections": None},
        description="IDC's whole series index from the installed idc-index-data (a new IDC version arrives "
        "with a package upgrade; an unchanged version is a no-op), then identity links.",
    ),
    ScheduledHarvest(
        name="harvest-pdc-weekly",
        flow=_pdc,
        cron="0 5 * * 0",
        parameters={"studies": None},
        description="Every PDC study of the study catalog from ONCOGRAPH_PDC_URL, then identity links.",
    ),
]


def deployments() -> list[RunnerDeployment]:
    return [s.deployment() for s in SCHEDULES]
